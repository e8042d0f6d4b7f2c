"""Ordering and supervision when sync and async handlers mix (local and remote).

A remote tell to an idle actor with a synchronous handler is handled at once, in the
receive path; everything else goes through the mailbox. These tests pin that the order of
arrival and the supervision policies hold either way.
"""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Route, wait_until, within

from actors import Actor, Message, RemoteError, handler


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
