"""Asks fail fast on nodes that are not up; is_up, drained and connect(timeout=)."""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Block, Ping, Pong, Recorder, Route, SystemFactory, connect, within

from actors import Actor, ActorSystem, Message, NodeDownError, NodeError, handler


async def test_ask_to_an_unknown_node_fails_at_once(make_system: SystemFactory) -> None:
    a = await make_system("alpha")
    assert a.is_up("alpha")
    assert not a.is_up("nowhere")
    with pytest.raises(NodeDownError) as caught:
        await within(a.ask("nowhere", "x", Ping(seq=1), timeout=None))
    assert caught.value.node_id == "nowhere"
    assert a.pending_asks == 0


async def test_ask_to_a_kept_node_being_redialled_fails_at_once(
    make_system: SystemFactory,
) -> None:
    a = await make_system("alpha")
    b = ActorSystem("beta")
    await b.start()
    await connect(a, b)  # a keeps b: it re-dials after the drop
    b.spawn("rec", Recorder())
    assert await within(a.ask("beta", "rec", Ping(seq=1))) == Pong(seq=1)
    down = asyncio.Event()
    a.on("node_down", lambda node_id, reason: down.set())
    await b.close()
    await within(down.wait())
    assert not a.is_up("beta")
    # Neither timeout=None nor a long timeout waits: the ask never enters the reconnect queue.
    for timeout in (None, 3600.0):
        with pytest.raises(NodeDownError, match="not connected"):
            await within(a.ask("beta", "rec", Ping(seq=2), timeout=timeout))
    assert a.pending_asks == 0
    # A tell to the kept peer is still queued for the reconnect, as the mesh promises.
    assert a.tell("beta", "rec", Ping(seq=3)) is True


async def test_in_flight_asks_fail_when_the_connection_drops(make_system: SystemFactory) -> None:
    a = await make_system("alpha")
    b = ActorSystem("beta")
    await b.start()
    await connect(a, b)
    release = asyncio.Event()
    b.spawn("rec", Recorder(release))
    asking = asyncio.ensure_future(a.ask("beta", "rec", Block(), timeout=None))
    await asyncio.sleep(0)  # one loop turn: the task runs up to waiting for its reply
    assert a.pending_asks == 1
    await b.node.close()
    with pytest.raises(NodeDownError, match="went down"):
        await within(asking)
    release.set()
    await b.close()


async def test_is_up_follows_the_connection(route: Route) -> None:
    assert route.sender.is_up(route.node_id)
    assert route.host.is_up(route.sender.id)
    await route.sender.drained(route.node_id)  # nothing buffered: returns at once
    await route.sender.close()
    assert not route.sender.is_up(route.sender.id)


async def test_connect_timeout_bounds_the_handshake(make_system: SystemFactory) -> None:
    a = await make_system("alpha")
    accepted: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accept and never answer the handshake

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(NodeError, match=r"timed out after 0\.2"):
            await within(a.connect(f"tcp://127.0.0.1:{port}", timeout=0.2))
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


class Blob(Message, tag="test.liveness.Blob"):
    data: bytes


class Sink(Actor):
    @handler
    def on_blob(self, msg: Blob) -> None:
        pass


async def test_drained_waits_for_the_mesh_backpressure(make_system: SystemFactory) -> None:
    a = ActorSystem("alpha", high_water=64 * 1024, low_water=16 * 1024)
    await a.start()
    try:
        b = await make_system("beta")
        await connect(a, b)
        b.spawn("sink", Sink())
        blob = Blob(data=b"x" * 8192)
        # Within one event-loop turn nothing is written yet: the buffer passes high water.
        results = [a.tell("beta", "sink", blob) for _ in range(64)]
        assert results[0] is True
        assert False in results, "the outgoing buffer never passed its high-water mark"
        await within(a.drained("beta"))
        assert a.tell("beta", "sink", blob) is True
        assert b.dead_letters == 0
    finally:
        await a.close()
