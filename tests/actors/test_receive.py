"""The receive path without a Node: packets fed straight into a `Receiver`.

The cells are fakes that record what reaches them, the pending-ask table and the dead-letter
office are the real ones, and answers to a peer's asks go to a recording send function.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from actor_helpers import Ping, Pong

from actors._deadletters import DeadLetter, DeadLetterOffice
from actors._envelope import (
    ERROR,
    ERROR_DEAD_LETTER,
    ERROR_REMOTE,
    REPLY,
    Delivery,
    RemoteReply,
    Tell,
    ask_packet,
    decode,
    error_packet,
    reply_packet,
    tell_packet,
)
from actors._message import Message
from actors._pending import PendingAsks
from actors._receive import Admission, Receiver
from actors.errors import AskError, DeadLetterError, NodeDownError, RemoteError


class FakeCell:
    """An inbox that takes every delivery into its queue (never runs one inline)."""

    def __init__(self, name: str, inline: bool = False) -> None:
        self.name = name
        self.inline = inline
        self.queued: list[Delivery] = []
        self.ran: list[Delivery] = []
        self.runs: list[list[Any]] = []

    def run_now(self, delivery: Delivery) -> bool:
        if self.inline:
            self.ran.append(delivery)
        return self.inline

    def run_tells(
        self,
        peer_id: str,
        packets: list[Any],
        index: int,
        first: Tell,
        cls: type[Message],
        admission: Admission,
    ) -> int:
        if not self.inline:
            return index
        handled = []
        envelope: Any = first
        while True:
            message = admission.admit(peer_id, envelope, cls, None)
            if message is not None:
                handled.append(message)
            index += 1
            if index == len(packets):
                break
            envelope = decode(packets[index])
            if type(envelope) is not Tell or envelope.target != self.name:
                break
        self.runs.append(handled)
        return index

    def put(self, delivery: Delivery) -> bool:
        self.queued.append(delivery)
        return True  # unbounded

    mailbox_size = None


class Harness:
    def __init__(self) -> None:
        self.cells: dict[str, FakeCell] = {}
        self.pending = PendingAsks()
        self.letters: list[DeadLetter] = []
        self.office = DeadLetterOffice("here", self.letters.append)
        self.sent: list[tuple[str, Any]] = []
        self.receiver = Receiver("here", self.cells, self.pending, self.office, self.send)

    def send(self, peer: str, packet: Any) -> bool:
        self.sent.append((peer, packet))
        return True


@pytest.fixture
def harness() -> Harness:
    return Harness()


def test_tells_reach_the_cell_with_the_authenticated_sender(harness: Harness) -> None:
    cell = harness.cells["rec"] = FakeCell("rec")
    harness.receiver.on_packets("peer", [tell_packet("rec", Ping(seq=1), "liar", "s")])
    [delivery] = cell.queued
    # The sender node is the transport's peer id, not what the packet claims.
    assert delivery == Delivery(Ping(seq=1), "peer", "s", None)


def test_a_run_of_tells_goes_to_run_tells_and_the_rest_one_by_one(harness: Harness) -> None:
    cell = harness.cells["rec"] = FakeCell("rec", inline=True)
    other = harness.cells["other"] = FakeCell("other")
    packets = [
        tell_packet("rec", Ping(seq=0), "a", None),
        tell_packet("rec", Ping(seq=1), "a", None),
        tell_packet("other", Ping(seq=2), "a", None),
        tell_packet("rec", Ping(seq=3), "a", None),
    ]
    harness.receiver.on_packets("peer", packets)
    assert cell.runs == [[Ping(seq=0), Ping(seq=1)], [Ping(seq=3)]]
    assert [d.message for d in other.queued] == [Ping(seq=2)]
    assert harness.letters == []


def test_an_ask_carries_a_remote_reply_capability(harness: Harness) -> None:
    cell = harness.cells["rec"] = FakeCell("rec")
    harness.receiver.on_packets("peer", [ask_packet("rec", Ping(seq=4), "peer", "s", 31)])
    [delivery] = cell.queued
    assert isinstance(delivery.reply_to, RemoteReply)
    assert (delivery.reply_to.node_id, delivery.reply_to.correlation_id) == ("peer", 31)
    delivery.reply_to.reply(Pong(seq=4))
    assert harness.sent == [("peer", reply_packet(Pong(seq=4), "here", 31))]


def test_undeliverable_requests_are_dead_letters_and_asks_are_answered(
    harness: Harness,
) -> None:
    harness.cells["rec"] = FakeCell("rec")
    bad_payload = ask_packet("rec", Ping(seq=1), "peer", None, 2)
    bad_payload[3] = {"seq": "nope"}
    packets = [
        tell_packet("nobody", Ping(seq=1), "peer", None),
        ask_packet("nobody", Ping(seq=1), "peer", None, 1),
        bad_payload,
        [0, "rec", "no.such.tag", {}, "peer", None, None],
        [True, "rec", "test.Ping", {"seq": 1}, "peer", None, None],
        "garbage",
    ]
    harness.receiver.on_packets("peer", packets)
    assert [letter.reason for letter in harness.letters] == [
        "unknown_actor",
        "unknown_actor",
        "invalid_payload",
        "unknown_tag",
        "malformed_envelope",
        "malformed_envelope",
    ]
    assert all(letter.sender_node == "peer" for letter in harness.letters)
    assert harness.office.by_reason() == {
        "unknown_actor": 2,
        "invalid_payload": 1,
        "unknown_tag": 1,
        "malformed_envelope": 2,
    }
    # Only the two asks are answered, each with its own reason.
    answers = [(peer, decode(packet)) for peer, packet in harness.sent]
    assert [(peer, a.error_tag, a.name, a.correlation_id) for peer, a in answers] == [  # type: ignore[union-attr]
        ("peer", ERROR_DEAD_LETTER, "unknown_actor", 1),
        ("peer", ERROR_DEAD_LETTER, "invalid_payload", 2),
    ]


async def test_answers_resolve_only_the_ask_they_belong_to(harness: Harness) -> None:
    loop = asyncio.get_running_loop()
    pending = harness.pending
    ok_id, ok = pending.open(loop, "peer", "rec")
    none_id, none = pending.open(loop, "peer", "rec")
    err_id, err = pending.open(loop, "peer", "rec")
    dead_id, dead = pending.open(loop, "peer", "rec")
    other_id, other = pending.open(loop, "elsewhere", "rec")
    harness.receiver.on_packets(
        "peer",
        [
            reply_packet(Pong(seq=1), "peer", ok_id),
            reply_packet(None, "peer", none_id),
            error_packet(ERROR_REMOTE, "ValueError", "kaput", "peer", err_id),
            error_packet(ERROR_DEAD_LETTER, "no_handler", "none", "peer", dead_id),
            reply_packet(Pong(seq=2), "peer", other_id),  # from the wrong peer: ignored
            reply_packet(Pong(seq=3), "peer", 999),  # nobody waits: dropped
        ],
    )
    assert ok.result() == Pong(seq=1)
    assert none.result() is None
    assert isinstance(err.exception(), RemoteError)
    dead_error = dead.exception()
    assert isinstance(dead_error, DeadLetterError) and dead_error.reason == "no_handler"
    assert not other.done()
    assert harness.letters == []
    for correlation_id in (ok_id, none_id, err_id, dead_id, other_id):
        pending.close(correlation_id)
    assert len(pending) == 0


async def test_malformed_answers_fail_the_waiting_ask(harness: Harness) -> None:
    loop = asyncio.get_running_loop()
    bad_error_id, bad_error = harness.pending.open(loop, "peer", "rec")
    bad_reply_id, bad_reply = harness.pending.open(loop, "peer", "rec")
    unknown_id, unknown = harness.pending.open(loop, "peer", "rec")
    harness.receiver.on_packets(
        "peer",
        [
            [ERROR, None, ERROR_REMOTE, "not a pair", "peer", None, bad_error_id],
            [REPLY, None, 42, {}, "peer", None, bad_reply_id],
            [REPLY, None, "no.such.tag", {}, "peer", None, unknown_id],
            [REPLY, None, None, None, "peer", None, "not an id"],  # dropped: nobody to tell
        ],
    )
    assert type(bad_error.exception()) is AskError
    for future in (bad_reply, unknown):
        error = future.exception()
        assert isinstance(error, DeadLetterError) and error.reason == "invalid_reply"
    assert [letter.reason for letter in harness.letters] == ["invalid_reply", "invalid_reply"]


async def test_a_lost_peer_fails_its_asks_only(harness: Harness) -> None:
    loop = asyncio.get_running_loop()
    _, theirs = harness.pending.open(loop, "peer", "rec")
    _, others = harness.pending.open(loop, "elsewhere", "rec")
    harness.pending.fail_peer("peer", "lost", "here")
    error = theirs.exception()
    assert isinstance(error, NodeDownError) and error.node_id == "peer"
    assert not others.done()


def test_nothing_is_routed_once_closed(harness: Harness) -> None:
    cell = harness.cells["rec"] = FakeCell("rec")
    harness.receiver.closed = True
    harness.receiver.on_packets("peer", [tell_packet("rec", Ping(seq=1), "peer", None)])
    harness.receiver.on_packet("peer", "garbage")
    assert cell.queued == [] and harness.letters == []
