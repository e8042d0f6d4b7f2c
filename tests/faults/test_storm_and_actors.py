"""Case 5 (a connect storm of 20 nodes) and case 7 (bad input at the actor layer)."""

from __future__ import annotations

import asyncio
import itertools
import logging
from contextlib import AsyncExitStack
from typing import Any

import pytest
from fault_helpers import DEADLINE, EventLog, uri_of
from support import extra_sockets_closed

from actors import Actor, ActorSystem, DeadLetterError, Message, handler
from transport import Node

# -- case 5: everyone dials everyone at once --------------------------------------------------

STORM = 20


async def test_a_connect_storm_leaves_one_connection_and_one_connect_per_side_per_pair() -> None:
    async with AsyncExitStack() as stack:
        nodes = [
            await stack.enter_async_context(Node(f"n{index:02d}", heartbeat_interval=0.5))
            for index in range(STORM)
        ]
        logs = {node.id: EventLog(node) for node in nodes}
        dials = [
            (dialer, target) for dialer, target in itertools.permutations(nodes, 2)
        ]  # 380 dials, both directions of every pair
        got = await asyncio.wait_for(
            asyncio.gather(*(dialer.connect(uri_of(target)) for dialer, target in dials)),
            DEADLINE * 3,
        )
        assert got == [target.id for _, target in dials]

        everyone = {node.id for node in nodes}
        for node in nodes:
            others = everyone - {node.id}
            log = logs[node.id]
            await log.wait_for(lambda log=log, others=others: len(log.lifecycle) == len(others))
            # Exactly one connect per peer, and no disconnect: the duplicates never fired.
            assert sorted(log.lifecycle) == sorted(("connect", peer) for peer in others)
            assert sorted(node.peers) == sorted(others)
        # Every duplicate socket closes: one connection per pair remains on each side.
        await extra_sockets_closed(*nodes)
        assert all(len(node._links) == STORM - 1 for node in nodes)
        assert all(len(node._core.connections) == STORM - 1 for node in nodes)

        # Every surviving connection carries packets both ways.
        for node in nodes:
            assert node.send(sorted(everyone - {node.id}), node.id) == STORM - 1
        for node in nodes:
            log = logs[node.id]
            await log.wait_for(lambda log=log: len(log.messages()) == STORM - 1)
            assert sorted(log.messages()) == sorted(everyone - {node.id})


# -- case 7: hostile envelopes over a real connection -----------------------------------------


class Ping(Message, tag="faults.Ping"):
    seq: int


class Pong(Message, tag="faults.Pong"):
    seq: int


class Ignored(Message, tag="faults.Ignored"):
    """A message the echo actor has no handler for."""


class Echo(Actor):
    @handler
    async def on_ping(self, message: Ping) -> Pong:
        return Pong(seq=message.seq)


TELL, ASK, REPLY, ERROR = 0, 1, 2, 3
SERVER_MAX_FRAME = 64 * 1024
FLOOD = 500


async def test_bad_envelopes_are_dead_letters_answered_and_the_server_keeps_serving(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    async with (
        ActorSystem("server", max_frame_size=SERVER_MAX_FRAME, heartbeat_interval=0.1) as server,
        ActorSystem("good") as good,
        # The hostile peer speaks the transport correctly but not the actor protocol.
        Node("evil", max_frame_size=4 * SERVER_MAX_FRAME) as evil,
    ):
        server.spawn("echo", Echo())
        dead: list[Any] = []
        server.on("dead_letter", dead.append)
        evil_log = EventLog(evil)
        assert await good.connect(uri_of(server.node)) == "server"
        assert await evil.connect(uri_of(server.node)) == "server"
        assert await good.ask("server", "echo", Ping(seq=1)) == Pong(seq=1)

        correlation = itertools.count(1)

        def ask(target: Any, tag: Any, payload: Any) -> int:
            cid = next(correlation)
            assert evil.send("server", [ASK, target, tag, payload, "evil", None, cid])
            return cid

        unknown_actor = ask("nobody", "faults.Ping", {"seq": 1})
        unknown_tag = ask("echo", "faults.NoSuchTag", {"seq": 1})
        wrong_shape = ask("echo", "faults.Ping", {"seq": "not an int", "extra": 1})
        not_a_map = ask("echo", "faults.Ping", [1, 2, 3])
        no_handler = ask("echo", "faults.Ignored", {})
        for packet in ("not an envelope", [TELL], [99, "echo", None, None, None, None, None]):
            assert evil.send("server", packet)
        # A reply nobody asked for is dropped.
        assert evil.send("server", [REPLY, None, "faults.Pong", {"seq": 1}, "evil", None, 12345])

        def errors() -> dict[int, list[Any]]:
            return {
                packet[6]: packet[3]
                for packet in evil_log.messages("server")
                if packet[0] == ERROR and packet[2] == "DeadLetter"
            }

        await evil_log.wait_for(lambda: len(errors()) == 5)
        reasons = {cid: reason for cid, (reason, _) in errors().items()}
        assert reasons == {
            unknown_actor: "unknown_actor",
            unknown_tag: "unknown_tag",
            wrong_shape: "invalid_payload",
            not_a_map: "invalid_payload",
            no_handler: "no_handler",
        }
        stats = server.stats()
        assert stats.dead_letters_by_reason == {
            "unknown_actor": 1,
            "unknown_tag": 1,
            "invalid_payload": 2,
            "no_handler": 1,
            "malformed_envelope": 3,
        }
        assert len(dead) == 8
        assert "dead letter on server" in caplog.text

        # A flood of asks nobody handles: every one answered, the good peer still served.
        first = next(correlation)
        for cid in range(first, first + FLOOD):
            assert evil.send("server", [ASK, "echo", "faults.Ignored", {}, "evil", None, cid])
        answer = await good.ask("server", "echo", Ping(seq=2))
        assert answer == Pong(seq=2)
        await evil_log.wait_for(lambda: len(errors()) == 5 + FLOOD)
        assert server.stats().dead_letters_by_reason["no_handler"] == 1 + FLOOD

        # An oversized message: the server drops that connection only.
        assert evil.send("server", [TELL, "echo", "faults.Ping", "x" * (2 * SERVER_MAX_FRAME)])
        await evil_log.wait_event(("disconnect", "server", "lost"))
        assert "exceeds max_frame_size" in caplog.text
        assert server.peers == ["good"]
        assert await good.ask("server", "echo", Ping(seq=3)) == Pong(seq=3)
        with pytest.raises(DeadLetterError):
            await good.ask("server", "echo", Ignored())
        assert server.stats().actors == 1
        assert "evil" not in server.peers
