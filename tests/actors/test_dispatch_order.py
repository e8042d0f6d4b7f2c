"""Ordering and supervision when sync and async handlers mix (local and remote).

A remote tell to an idle actor with a synchronous handler is handled at once, in the
receive path; everything else goes through the mailbox. These tests pin that the order of
arrival and the supervision policies hold either way.
"""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import DeadLetterLog, Route, SystemFactory, wait_until, within

from actors import Actor, ActorSystem, Message, RemoteError, encode_message, handler


class Step(Message, tag="test.order.Step"):
    seq: int


class SlowStep(Message, tag="test.order.SlowStep"):
    seq: int


class Crash(Message, tag="test.order.Crash"):
    seq: int


class Mixed(Actor):
    """Records every message in handling order; SlowStep's handler suspends."""

    def __init__(self, log: list[tuple[int, int]], changed: asyncio.Event) -> None:
        self.log = log
        self.changed = changed
        self.mine: list[int] = []

    def _record(self, seq: int) -> None:
        self.log.append((id(self), seq))
        self.mine.append(seq)
        self.changed.set()

    @handler
    def on_step(self, msg: Step) -> None:
        self._record(msg.seq)

    @handler
    async def on_slow(self, msg: SlowStep) -> None:
        await asyncio.sleep(0)  # suspends, so later messages must wait their turn
        self._record(msg.seq)

    @handler
    def on_crash(self, msg: Crash) -> None:
        self._record(msg.seq)
        raise RuntimeError(f"crash at {msg.seq}")


async def test_arrival_order_holds_across_sync_and_async_handlers(route: Route) -> None:
    log: list[tuple[int, int]] = []
    changed = asyncio.Event()
    route.host.spawn("mixed", Mixed(log, changed))
    kinds = [Step, SlowStep, Step, Step, SlowStep, SlowStep, Step] * 30
    for seq, kind in enumerate(kinds):
        assert route.sender.tell(route.node_id, "mixed", kind(seq=seq))
    await wait_until(lambda: len(log) == len(kinds), changed)
    assert [seq for _, seq in log] == list(range(len(kinds)))


async def test_a_sync_handler_raising_on_a_tell_is_supervised_in_order(route: Route) -> None:
    log: list[tuple[int, int]] = []
    changed = asyncio.Event()
    instances: list[Mixed] = []

    def factory() -> Mixed:
        instances.append(Mixed(log, changed))
        return instances[-1]

    route.host.spawn("mixed", factory, supervision="restart")
    for message in (Step(seq=0), Crash(seq=1), Step(seq=2), Step(seq=3)):
        assert route.sender.tell(route.node_id, "mixed", message)
    await wait_until(lambda: len(log) == 4, changed)
    assert [seq for _, seq in log] == [0, 1, 2, 3]
    assert len(instances) == 2
    assert instances[0].mine == [0, 1]  # the crash was handled by the first instance
    assert instances[1].mine == [2, 3]  # and the restart happened before message 2


async def test_resume_after_a_raising_sync_tell_keeps_the_instance(route: Route) -> None:
    log: list[tuple[int, int]] = []
    changed = asyncio.Event()
    actor = Mixed(log, changed)
    route.host.spawn("mixed", actor)
    for message in (Crash(seq=0), Step(seq=1), Crash(seq=2), Step(seq=3)):
        assert route.sender.tell(route.node_id, "mixed", message)
    await wait_until(lambda: len(log) == 4, changed)
    assert actor.mine == [0, 1, 2, 3]
    assert await within(route.sender.ask(route.node_id, "mixed", Step(seq=4))) is None
    assert actor.mine == [0, 1, 2, 3, 4]


async def test_an_ask_to_a_raising_sync_handler_fails_and_supervision_restarts(
    route: Route,
) -> None:
    log: list[tuple[int, int]] = []
    changed = asyncio.Event()
    instances: list[Mixed] = []

    def factory() -> Mixed:
        instances.append(Mixed(log, changed))
        return instances[-1]

    route.host.spawn("mixed", factory, supervision="restart")
    with pytest.raises(RemoteError, match="crash at 1") as caught:
        await within(route.sender.ask(route.node_id, "mixed", Crash(seq=1)))
    assert caught.value.type_name == "RuntimeError"
    assert await within(route.sender.ask(route.node_id, "mixed", Step(seq=2))) is None
    assert [instance.mine for instance in instances] == [[1], [2]]


# --- a whole read's packets at once (Receiver.on_packets, ActorCell.run_tells) ----------
# The transport hands the actor layer every packet of one socket read as one list. Runs of tells
# to one idle actor are handled in a single call; these tests feed such lists directly, so that
# the batch is exactly the one written here.


class Noted(Actor):
    """Records (seq, sender) per Step; on Step 1 it mails itself Step 100; a negative Step or a
    Crash raises."""

    def __init__(self, log: list[tuple[int, str | None]]) -> None:
        self.log = log
        self.mine: list[int] = []

    @handler
    def on_step(self, msg: Step) -> None:
        sender = self.context.sender
        self.log.append((msg.seq, None if sender is None else f"{sender.node_id}/{sender.name}"))
        self.mine.append(msg.seq)
        if msg.seq == 1 and self.context.name == "self-mailer":
            assert self.context.self_ref.tell(Step(seq=100))
        if msg.seq < 0:
            raise RuntimeError(f"negative step {msg.seq}")

    @handler
    def on_crash(self, msg: Crash) -> None:
        self.mine.append(msg.seq)
        raise RuntimeError(f"crash at {msg.seq}")


def tell_packet(target: str, message: Message, sender_name: object = None) -> list[object]:
    tag, payload = encode_message(message)
    return [0, target, tag, payload, "peer-x", sender_name, None]


async def idle(system: ActorSystem, name: str) -> None:
    """Return once ``name``'s mailbox task waits for mail (a local ask is a full round trip)."""
    await within(system.ask(system.id, name, GetLog()))


class GetLog(Message, tag="test.order.GetLog"):
    pass


class Logged(Noted):
    @handler
    def on_get_log(self, msg: GetLog) -> None:
        return None


async def test_a_read_of_tells_runs_in_order_around_bad_packets(
    make_system: SystemFactory,
) -> None:
    system = await make_system("solo")
    letters = DeadLetterLog(system)
    log: list[tuple[int, str | None]] = []
    other: list[tuple[int, str | None]] = []
    system.spawn("noted", Logged(log))
    system.spawn("other", Logged(other))
    await idle(system, "noted")
    await idle(system, "other")
    bad_payload = tell_packet("noted", Step(seq=2))
    bad_payload[3] = {"seq": "not a number"}
    packets = [
        tell_packet("noted", Step(seq=0), "a"),
        tell_packet("noted", Step(seq=1)),
        bad_payload,
        tell_packet("noted", Step(seq=3), 5),  # a sender name that is not a str is ignored
        tell_packet("other", Step(seq=10), "b"),
        tell_packet("noted", Step(seq=4), "c"),
        ["garbage"],
        tell_packet("noted", Step(seq=5), "d"),
    ]
    system._receiver.on_packets("peer-x", packets)
    # Handled in the call itself: every target was idle and every handler is synchronous.
    assert log == [(0, "peer-x/a"), (1, None), (3, None), (4, "peer-x/c"), (5, "peer-x/d")]
    assert other == [(10, "peer-x/b")]
    assert sorted(letter.reason for letter in await letters.wait_for(2)) == [
        "invalid_payload",
        "malformed_envelope",
    ]


async def test_a_handler_that_mails_itself_mid_read_keeps_arrival_order(
    make_system: SystemFactory,
) -> None:
    system = await make_system("solo")
    log: list[tuple[int, str | None]] = []
    actor = Logged(log)
    system.spawn("self-mailer", actor)
    await idle(system, "self-mailer")
    system._receiver.on_packets(
        "peer-x", [tell_packet("self-mailer", Step(seq=n)) for n in range(4)]
    )
    # Step 100 was mailed while Step 1 was handled, before Steps 2 and 3 were looked at.
    await within(system.ask(system.id, "self-mailer", GetLog()))
    assert actor.mine == [0, 1, 100, 2, 3]


async def test_a_crash_mid_read_is_supervised_before_the_rest_of_the_read(
    make_system: SystemFactory,
) -> None:
    system = await make_system("solo")
    instances: list[Logged] = []

    def factory() -> Logged:
        instances.append(Logged([]))
        return instances[-1]

    system.spawn("noted", factory, supervision="restart")
    await idle(system, "noted")
    packets = [
        tell_packet("noted", Step(seq=0)),
        tell_packet("noted", Crash(seq=1)),
        tell_packet("noted", Step(seq=2)),
        tell_packet("noted", Step(seq=3)),
    ]
    system._receiver.on_packets("peer-x", packets)
    await idle(system, "noted")
    # A handler raising in the middle of a run of one message type, the actor idle before it.
    system._receiver.on_packets("peer-x", [tell_packet("noted", Step(seq=n)) for n in (4, -5, 6)])
    await within(system.ask(system.id, "noted", GetLog()))
    assert [instance.mine for instance in instances] == [[0, 1], [2, 3, 4, -5], [6]]
