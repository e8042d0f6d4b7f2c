"""What a received payload may cost (issue 14): the size budget before validation, one
validation per message, bounded error texts, and encoding failures that all read as
`EncodeError`.

The receive path is fed packets directly (no Node): a real `ActorSystem`'s receiver for what
crosses real cells, a bare `Receiver` for what only needs the dead-letter office.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

import pytest
from actor_helpers import DEADLINE
from pydantic import model_validator

from actors import Actor, ActorSystem, ActorUsageError, EncodeError, Message, handler
from actors._deadletters import LOG_BURST, LOG_WINDOW, DeadLetter, DeadLetterOffice
from actors._envelope import (
    ASK,
    ERROR,
    ERROR_DEAD_LETTER,
    ERROR_REMOTE,
    RemoteReply,
    error_packet,
    tell_packet,
)
from actors._message import encode_message
from actors._pending import PendingAsks
from actors._receive import Receiver

DESCRIBED = 700  # a dead letter's detail or an answer's text stays under this many chars


class Counted(Message, tag="limits.Counted"):
    """Counts how often its validator runs (a before-validator is user code: it also makes the
    budget walk the payload instead of trusting its length)."""

    runs: ClassVar[int] = 0
    seq: int
    items: list[int] = []

    @model_validator(mode="before")
    @classmethod
    def count(cls, data: Any) -> Any:
        Counted.runs += 1
        return data


class Flat(Message, tag="limits.Flat"):
    seq: int
    name: str | None = None


class Tree(Message, tag="limits.Tree"):
    value: Any


class Keeper(Actor):
    def __init__(self) -> None:
        self.seen: list[int] = []
        self.changed = asyncio.Event()

    def _saw(self, seq: int) -> None:
        self.seen.append(seq)
        self.changed.set()
        self.changed = asyncio.Event()

    @handler
    def on_counted(self, msg: Counted) -> None:
        self._saw(msg.seq)

    @handler
    def on_flat(self, msg: Flat) -> None:
        self._saw(msg.seq)

    async def wait_seen(self, seq: int) -> None:
        async with asyncio.timeout(DEADLINE):
            while seq not in self.seen:
                await self.changed.wait()


async def idle_keeper(system: ActorSystem) -> Keeper:
    """A spawned Keeper that has handled one message, so its mailbox task now waits for mail
    (the receive path then runs tells to it inline, through run_tells)."""
    keeper = Keeper()
    system.spawn("keeper", keeper)
    system.tell("here", "keeper", Flat(seq=0))
    await keeper.wait_seen(0)
    return keeper


def nested(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


def raw_tell(target: str, tag: str, payload: Any) -> list[Any]:
    return [0, target, tag, payload, "peer", None, None]


class Office:
    """A bare Receiver (no Node) over ``actors``, with the dead letters and answers it made."""

    def __init__(self, max_items: int | None = 100, actors: dict[str, Any] | None = None) -> None:
        self.letters: list[DeadLetter] = []
        self.sent: list[Any] = []
        office = DeadLetterOffice("here", self.letters.append)
        self.receiver = Receiver(
            "here", actors or {}, PendingAsks(), office, self._send, max_payload_items=max_items
        )

    def _send(self, _peer: str, packet: Any) -> bool:
        self.sent.append(packet)
        return True


@pytest.fixture
async def system() -> Any:
    async with ActorSystem("here", max_payload_items=1000) as system:
        yield system


async def test_a_payload_over_the_budget_is_refused_before_its_validator_runs(
    system: ActorSystem,
) -> None:
    keeper = await idle_keeper(system)
    letters: list[DeadLetter] = []
    system.on("dead_letter", letters.append)
    Counted.runs = 0
    receive = system._receiver.on_packets
    receive(
        "peer",
        [
            raw_tell("keeper", "limits.Counted", {"seq": 1, "items": list(range(5000))}),
            raw_tell(
                "keeper",
                "limits.Counted",
                {"seq": 2, "extra": dict.fromkeys(map(str, range(2000)))},
            ),
            raw_tell("keeper", "limits.Counted", {"seq": 3, "items": [1, 2]}),
        ],
    )
    await keeper.wait_seen(3)
    assert keeper.seen == [0, 3]
    assert Counted.runs == 1  # only the payload within the budget was validated
    assert [letter.reason for letter in letters] == ["payload_too_large"] * 2
    assert "1000" in letters[0].detail and "max_payload_items" in letters[0].detail


async def test_an_invalid_payload_is_validated_once_on_every_path(system: ActorSystem) -> None:
    keeper = await idle_keeper(system)
    Counted.runs = 0
    bad = raw_tell("keeper", "limits.Counted", {"seq": "not a number"})
    system._receiver.on_packets("peer", [bad, raw_tell("keeper", "limits.Counted", {"seq": 9})])
    await keeper.wait_seen(9)
    assert Counted.runs == 2  # one per message: the run of tells reports the bad one itself
    Counted.runs = 0
    ask = [ASK, "keeper", "limits.Counted", {"seq": "not a number"}, "peer", None, 5]
    system._receiver.on_packets("peer", [ask])
    assert Counted.runs == 1
    assert system.stats().dead_letters_by_reason["invalid_payload"] == 2


def test_a_message_of_scalars_is_bounded_by_its_length_alone() -> None:
    office = Office(max_items=3)
    admit = office.receiver.admit
    # A long string is one value; a list where an int is due fails validation at once.
    assert admit("peer", _tell("k", "limits.Flat", {"seq": 1, "name": "x" * 10**6}), Flat, None)
    assert admit("peer", _tell("k", "limits.Flat", {"seq": list(range(10**5))}), Flat, None) is None
    assert admit("peer", _tell("k", "limits.Flat", dict.fromkeys("abcd", 1)), Flat, None) is None
    assert [letter.reason for letter in office.letters] == ["invalid_payload", "payload_too_large"]


def test_dead_letters_for_huge_or_deep_names_stay_small() -> None:
    office = Office()
    office.receiver.on_packets(
        "peer",
        [
            [ASK, "x" * 3_000_000, "limits.Flat", {"seq": 1}, "peer", None, 1],
            [ASK, "keeper", "t" * 3_000_000, {"seq": 1}, "peer", None, 2],
            [ASK, nested(990), "limits.Flat", {"seq": 1}, "peer", None, 3],
            nested(990),
        ],
    )
    assert [letter.reason for letter in office.letters] == [
        "unknown_actor",
        "unknown_actor",
        "malformed_envelope",
        "malformed_envelope",
    ]
    for letter in office.letters:
        assert len(letter.detail) < DESCRIBED, letter.detail[:100]
        assert letter.target is None or len(letter.target) < DESCRIBED
    assert "3000000" in office.letters[0].detail  # the size is said, not the value shown
    answered = [packet[6] for packet in office.sent]
    assert answered == [1, 2, 3]  # a malformed ask whose id reads is still answered
    assert all(len(str(packet)) < 2 * DESCRIBED for packet in office.sent)


def test_many_validation_errors_are_counted_not_listed() -> None:
    office = Office(max_items=None)
    office.receiver.admit(
        "peer",
        # 50 extra keys: 50 errors, more than a dead letter details one by one.
        _tell("keeper", "limits.Flat", {"seq": 1, **{f"k{i}": i for i in range(50)}}),
        Flat,
        None,
    )
    [letter] = office.letters
    assert letter.reason == "invalid_payload"
    assert "50 error(s)" in letter.detail and len(letter.detail) < DESCRIBED


def _tell(target: str, tag: str, payload: Any) -> Any:
    from actors._envelope import decode

    return decode(raw_tell(target, tag, payload))


def test_error_answers_are_cut_to_a_sendable_size() -> None:
    packet = error_packet(ERROR_REMOTE, "E" * 10_000, "x" * 10_000_000, "here", 7)
    name, text = packet[3]
    assert len(name) < DESCRIBED and len(text) < 2 * DESCRIBED
    assert "10000000 chars" in text
    sent: list[Any] = []
    RemoteReply(lambda _peer, p: sent.append(p), "here", "peer", 8).dead_letter(
        "unknown_actor", "y" * 5_000_000
    )
    assert sent[0][0] == ERROR and sent[0][2] == ERROR_DEAD_LETTER
    assert len(sent[0][3][1]) < 2 * DESCRIBED


@pytest.mark.parametrize("depth", [600, 5000])
def test_a_value_nested_too_deep_is_an_encode_error_naming_the_depth(depth: int) -> None:
    with pytest.raises(EncodeError, match="nested too deep"):
        encode_message(Tree(value=nested(depth)))


def test_an_unencodable_field_is_an_encode_error() -> None:
    with pytest.raises(EncodeError):
        tell_packet("x", Tree(value=object()), "here", None)


@pytest.mark.parametrize("budget", [0, -1, 1.5, "10", True])
def test_max_payload_items_must_be_a_positive_int_or_none(budget: Any) -> None:
    with pytest.raises(ActorUsageError, match="max_payload_items"):
        ActorSystem("x", max_payload_items=budget)


class Blob(Message, tag="limits.Blob"):
    data: bytes


@pytest.mark.parametrize("how", ["tell", "ask"])
async def test_a_message_too_large_or_too_deep_to_send_is_an_encode_error(how: str) -> None:
    async with ActorSystem("a") as a, ActorSystem("b") as b:
        uri = b.info()
        assert uri is not None
        await a.connect(uri)
        for message in (Blob(data=b"x" * (9 * 1024 * 1024)), Tree(value=nested(600))):
            with pytest.raises(EncodeError, match=r"max_frame_size|nested too deep"):
                if how == "tell":
                    a.tell("b", "anyone", message)
                else:
                    await a.ask("b", "anyone", message, timeout=DEADLINE)
        assert a.stats().pending_asks == 0


class Broken:
    """An inbox whose run_now fails the way a bug would: the receive path must contain it."""

    def __init__(self) -> None:
        self.queued: list[Any] = []

    def run_now(self, delivery: Any) -> bool:
        if delivery.message.seq == 1:
            raise RuntimeError("a bug, not the handler")
        return False

    def run_tells(self, *args: Any) -> int:
        return int(args[2])  # never inline: every tell goes through run_now / put

    def put(self, delivery: Any) -> bool:
        self.queued.append(delivery.message.seq)
        return True

    @property
    def mailbox_size(self) -> int | None:
        return None


def test_a_packet_whose_handling_fails_unforeseen_is_dead_lettered_alone() -> None:
    cell = Broken()
    office = Office(actors={"keeper": cell})
    office.receiver.on_packets(
        "peer", [raw_tell("keeper", "limits.Flat", {"seq": seq}) for seq in (0, 1, 2)]
    )
    assert cell.queued == [0, 2]
    [letter] = office.letters
    assert letter.reason == "malformed_envelope" and "RuntimeError" in letter.detail


def test_a_flood_of_dead_letters_is_counted_in_full_but_logged_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [100.0]
    letters: list[DeadLetter] = []
    office = DeadLetterOffice("here", letters.append, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="actors._deadletters")
    for _ in range(LOG_BURST + 30):
        office.record("unknown_actor", "nobody", "t", "peer", "no actor named 'nobody'")
    assert len(letters) == office.total == LOG_BURST + 30
    assert len(caplog.records) == LOG_BURST
    now[0] += LOG_WINDOW
    office.record("unknown_actor", "nobody", "t", "peer", "no actor named 'nobody'")
    summary, last = caplog.records[-2:]
    assert "30 more were not logged" in summary.getMessage()
    assert "dead letter on here" in last.getMessage()
    assert len(caplog.records) == LOG_BURST + 2
