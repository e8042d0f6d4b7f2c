"""Timers: ``context.schedule(delay, msg)`` and ``schedule(delay, msg, every=s)``."""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Route, wait_until, within

from actors import Actor, ActorUsageError, Message, RemoteError, Timer, handler


class Tick(Message, tag="test.timers.Tick"):
    label: str


class Start(Message, tag="test.timers.Start"):
    delay: float
    every: float | None = None
    label: str = "tick"


class Cancel(Message, tag="test.timers.Cancel"):
    label: str


class Count(Message, tag="test.timers.Count"):
    label: str


class Ticker(Actor):
    """Starts timers on request and counts the ticks by label."""

    def __init__(self) -> None:
        self.ticks: dict[str, int] = {}
        self.senders: list[str | None] = []
        self.timers: dict[str, Timer] = {}
        self.changed = asyncio.Event()
        self.after_marker: int = 0

    @handler
    def on_start_timer(self, msg: Start) -> bool:
        timer = self.context.schedule(msg.delay, Tick(label=msg.label), every=msg.every)
        self.timers[msg.label] = timer
        return timer.active

    @handler
    def on_cancel(self, msg: Cancel) -> int:
        self.timers[msg.label].cancel()
        return self.ticks.get(msg.label, 0)

    @handler
    def on_count(self, msg: Count) -> int:
        return self.ticks.get(msg.label, 0)

    @handler
    def on_tick(self, msg: Tick) -> None:
        self.ticks[msg.label] = self.ticks.get(msg.label, 0) + 1
        sender = self.context.sender
        self.senders.append(None if sender is None else f"{sender.node_id}/{sender.name}")
        if msg.label != "marker" and "marker" in self.ticks:
            self.after_marker += 1
        self.changed.set()


async def ask(route: Route, message: Message) -> object:
    return await within(route.sender.ask(route.node_id, "ticker", message))


async def test_a_one_shot_timer_delivers_once_from_the_actor_itself(route: Route) -> None:
    ticker = Ticker()
    route.host.spawn("ticker", ticker)
    assert await ask(route, Start(delay=0.01)) is True
    await wait_until(lambda: ticker.ticks.get("tick") == 1, ticker.changed)
    assert ticker.senders == [f"{route.host.id}/ticker"]
    assert not ticker.timers["tick"].active
    assert ticker.timers["tick"].fired == 1
    # A later marker timer arrives after any second firing would have: there is none.
    await ask(route, Start(delay=0.05, label="marker"))
    await wait_until(lambda: "marker" in ticker.ticks, ticker.changed)
    assert ticker.ticks["tick"] == 1


async def test_a_repeating_timer_repeats_until_cancelled(route: Route) -> None:
    ticker = Ticker()
    route.host.spawn("ticker", ticker)
    await ask(route, Start(delay=0.0, every=0.01))
    await wait_until(lambda: ticker.ticks.get("tick", 0) >= 3, ticker.changed)
    at_cancel = await ask(route, Cancel(label="tick"))
    assert isinstance(at_cancel, int) and at_cancel >= 3
    assert not ticker.timers["tick"].active
    # Nothing from the cancelled timer is handled after cancel(), not even a tick that was
    # already waiting in the mailbox: by the time a later marker arrives, the count is as it was.
    await ask(route, Start(delay=0.05, label="marker"))
    await wait_until(lambda: "marker" in ticker.ticks, ticker.changed)
    assert ticker.ticks["tick"] == at_cancel
    assert ticker.after_marker == 0
    assert ticker.timers["tick"].cancel() is False  # already ended


async def test_timers_end_when_the_actor_stops_without_dead_letters(route: Route) -> None:
    ticker = Ticker()
    route.host.spawn("ticker", ticker)
    await ask(route, Start(delay=0.0, every=0.005))
    await ask(route, Start(delay=3600.0, label="later"))
    await wait_until(lambda: ticker.ticks.get("tick", 0) >= 2, ticker.changed)
    await route.host.stop("ticker")
    assert not ticker.timers["tick"].active
    assert not ticker.timers["later"].active
    fired = ticker.timers["tick"].fired
    # A second ticker's timer as the clock: many of the stopped timer's periods go by.
    clock = Ticker()
    route.host.spawn("ticker", clock)
    await ask(route, Start(delay=0.0, every=0.005))
    await wait_until(lambda: clock.ticks.get("tick", 0) >= 10, clock.changed)
    assert ticker.timers["tick"].fired == fired
    assert route.host.dead_letters == 0
    assert route.sender.dead_letters == 0


class Crash(Message, tag="test.timers.Crash"):
    pass


class Restarting(Ticker):
    @handler
    def on_crash(self, msg: Crash) -> int:
        raise RuntimeError("boom")


async def test_a_restart_ends_the_old_instances_timers(route: Route) -> None:
    instances: list[Restarting] = []

    def make() -> Restarting:
        instances.append(Restarting())
        return instances[-1]

    route.host.spawn("ticker", make, supervision="restart")
    await ask(route, Start(delay=0.0, every=0.005))
    first = instances[0]
    await wait_until(lambda: first.ticks.get("tick", 0) >= 1, first.changed)
    with pytest.raises(Exception, match="boom"):
        await ask(route, Crash())
    await ask(route, Count(label="tick"))  # handled by the fresh instance
    assert len(instances) == 2
    assert not first.timers["tick"].active
    # The fresh instance has no timer running: its tick count stays 0 behind a marker.
    await ask(route, Start(delay=0.05, label="marker"))
    fresh = instances[1]
    await wait_until(lambda: "marker" in fresh.ticks, fresh.changed)
    assert fresh.ticks.get("tick", 0) == fresh.after_marker == 0


async def test_schedule_refuses_bad_arguments(route: Route) -> None:
    ticker = Ticker()
    route.host.spawn("ticker", ticker)
    for bad in (Start(delay=-1.0), Start(delay=float("inf")), Start(delay=0, every=0.0)):
        with pytest.raises(RemoteError, match="ActorUsageError"):
            await ask(route, bad)
    context = ticker.context
    with pytest.raises(ActorUsageError, match="Message"):
        context.schedule(0.1, "not a message")  # type: ignore[arg-type]


class SchedulesOnStop(Ticker):
    def on_stop(self) -> None:
        self.timers["late"] = self.context.schedule(0.0, Tick(label="late"), every=0.01)


async def test_a_timer_scheduled_while_stopping_never_starts(route: Route) -> None:
    ticker = SchedulesOnStop()
    route.host.spawn("ticker", ticker)
    await ask(route, Count(label="x"))
    await route.host.stop("ticker")
    assert not ticker.timers["late"].active
    assert ticker.timers["late"].cancel() is False
    assert route.host.dead_letters == 0
