"""SignalStop and run_until_signal in-process, with SIGUSR1 standing in for SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import pytest

from actors import Actor, ActorSystem, SystemClosedError, run_until_signal
from actors._control import CONTROL_ACTOR, Ping, Pong
from actors._running import SignalStop

SIG = signal.SIGUSR1


class LogWaiter(logging.Handler):
    """Sets ``seen`` when actors._running logs a message containing ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.DEBUG)
        self.text = text
        self.seen = asyncio.Event()
        self.messages: list[str] = []
        self.logger = logging.getLogger("actors._running")

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        if self.text in self.messages[-1]:
            self.seen.set()

    def __enter__(self) -> LogWaiter:
        self.level = self.logger.level
        self.logger.setLevel(logging.INFO)
        self.logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level)


async def test_signal_stop_catches_a_signal_and_restores_the_handler() -> None:
    before = signal.getsignal(SIG)
    with LogWaiter("again") as log, SignalStop([SIG]) as stop:
        assert not stop.is_set
        os.kill(os.getpid(), SIG)
        assert await asyncio.wait_for(stop.wait(), timeout=10) is SIG
        os.kill(os.getpid(), SIG)  # a second one while stopping: logged, nothing else
        await asyncio.wait_for(log.seen.wait(), timeout=10)
    assert signal.getsignal(SIG) == before
    assert log.messages == ["SIGUSR1 received: stopping", "SIGUSR1 again: already stopping"]


async def test_set_stops_without_a_signal() -> None:
    with SignalStop([SIG]) as stop:
        stop.set()
        assert await asyncio.wait_for(stop.wait(), timeout=10) is None


class Stopping(Actor):
    def __init__(self, stopped: asyncio.Event) -> None:
        self.stopped = stopped

    def on_stop(self) -> None:
        self.stopped.set()


async def test_run_until_signal_closes_the_system_after_the_signal() -> None:
    stopped = asyncio.Event()
    system = ActorSystem("serving")
    await system.start()
    system.spawn("worker", Stopping(stopped))
    with LogWaiter("serving at") as log:
        serving = asyncio.create_task(run_until_signal(system, signals=[SIG]))
        await asyncio.wait_for(log.seen.wait(), timeout=10)
    assert await system.ask(system.id, CONTROL_ACTOR, Ping(seq=7)) == Pong(seq=7, node_id="serving")
    os.kill(os.getpid(), SIG)
    assert await asyncio.wait_for(serving, timeout=10) is SIG
    assert stopped.is_set() and system.closed
    with pytest.raises(SystemClosedError):
        system.spawn("late", Stopping(asyncio.Event()))


async def test_run_until_signal_closes_the_system_when_cancelled() -> None:
    system = ActorSystem("cancelled")
    with LogWaiter("serving at") as log:
        serving = asyncio.create_task(run_until_signal(system, signals=[SIG]))
        await asyncio.wait_for(log.seen.wait(), timeout=10)
    assert system.info() is not None
    serving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await serving
    assert system.closed


async def test_every_started_system_hosts_the_control_actor_out_of_sight() -> None:
    async with ActorSystem("plain") as system:
        assert system.actors == () and system.stats().actors == 0
        assert await system.ask("plain", CONTROL_ACTOR, Ping(seq=1)) == Pong(seq=1, node_id="plain")
        system.spawn("mine", Stopping(asyncio.Event()))
        assert system.actors == ("mine",) and system.stats().actors == 1
