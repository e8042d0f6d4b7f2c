"""Serving a node until SIGINT or SIGTERM, then stopping it gracefully.

`run_until_signal` is what ``masterless run`` does after the factory ran, and what a program
that builds its own `ActorSystem` calls to get the same behaviour: the control actor answers
``masterless status`` and ``masterless ping``, and a signal closes the system, so every actor's
``on_stop`` runs and peers see the connection end with a goodbye (reason ``"closed"``) instead
of a heartbeat timeout (``"lost"``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors._system import ActorSystem

__all__ = ["STOP_SIGNALS", "SignalStop", "run_until_signal"]

logger = logging.getLogger(__name__)

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a node by default."""


class SignalStop:
    """While entered, the given signals set an event instead of killing the process.

    Use inside a running event loop. On platforms whose loop cannot watch signals
    (``add_signal_handler`` raises ``NotImplementedError``), ``signal.signal`` is used and the
    event is set through ``call_soon_threadsafe``. Leaving restores the previous handlers.

    Args:
        signals: The signals to catch.
    """

    def __init__(self, signals: Iterable[int] = STOP_SIGNALS) -> None:
        self._signals = tuple(signal.Signals(s) for s in signals)
        self._event = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._previous: dict[signal.Signals, object] = {}
        self._via_loop: list[signal.Signals] = []
        self.received: signal.Signals | None = None
        """The first signal caught, or None."""

    def __enter__(self) -> SignalStop:
        loop = asyncio.get_running_loop()
        self._loop = loop
        for signum in self._signals:
            try:
                loop.add_signal_handler(signum, self._caught, signum)
                self._via_loop.append(signum)
            except (NotImplementedError, RuntimeError):
                self._previous[signum] = signal.signal(signum, self._caught_in_handler)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._loop is not None
        for signum in self._via_loop:
            self._loop.remove_signal_handler(signum)
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._via_loop.clear()
        self._previous.clear()

    @property
    def is_set(self) -> bool:
        """True once a signal arrived (or `set` was called)."""
        return self._event.is_set()

    def set(self) -> None:
        """Stop as if a signal had arrived (for a program's own reasons)."""
        self._event.set()

    async def wait(self) -> signal.Signals | None:
        """Wait for the first signal.

        Returns:
            The signal, or None when `set` was called instead.
        """
        await self._event.wait()
        return self.received

    def _caught(self, signum: signal.Signals) -> None:
        if self._event.is_set():
            logger.warning("%s again: already stopping", signum.name)
            return
        logger.info("%s received: stopping", signum.name)
        self.received = signum
        self._event.set()

    def _caught_in_handler(self, signum: int, frame: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._caught, signal.Signals(signum))


async def run_until_signal(
    system: ActorSystem, *, signals: Iterable[int] = STOP_SIGNALS
) -> signal.Signals | None:
    """Serve ``system`` until one of ``signals`` arrives, then close it gracefully.

    Starts the system if it is not started yet (its control actor answers ``masterless status``
    and ``masterless ping``), waits for SIGINT or SIGTERM, and
    closes the system: every actor's ``on_stop`` runs, pending asks fail with
    `SystemClosedError`, and each peer sees the connection close with a goodbye. The system is
    closed also when the wait is cancelled.

    Example:
        ```python
        system = ActorSystem("node-a", port=9000, cookie=cookie)
        await system.start()
        system.spawn("worker", Worker())
        await run_until_signal(system)      # returns after SIGTERM, the system closed
        ```

    Args:
        system: The actor system to serve.
        signals: The signals that stop it.

    Returns:
        The signal that stopped it.

    Raises:
        SystemClosedError: The system was already closed.
        NodeError: The system was not started and could not start.
    """
    with SignalStop(signals) as stop:
        try:
            await system.start()
            logger.info("%s serving at %s until %s", system.id, system.info(), _names(signals))
            return await stop.wait()
        finally:
            await system.close()


def _names(signals: Iterable[int]) -> str:
    return " or ".join(signal.Signals(s).name for s in signals)
