"""Timers: messages an actor schedules for itself (``context.schedule``).

Each actor's `Context` owns one `Timers`: every `Timer` it made, each an asyncio timer handle
that hands the message to the actor's own mailbox when it fires. When the actor stops (or is
restarted by its supervisor), `Timers.cancel_all` ends them all, so none fires afterwards.

A repeating timer keeps a fixed rate: each firing is scheduled ``every`` seconds after the
previous one was due, and ticks missed while the event loop was busy are skipped rather than
delivered in a burst.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from typing import Any, NamedTuple

from actors._message import Message
from actors.errors import ActorUsageError

__all__ = ["Timer", "TimerMark", "Timers"]

logger = logging.getLogger(__name__)


class Timer:
    """A scheduled message; returned by `Context.schedule`.

    Attributes:
        message: The message it delivers.
        every: Seconds between repeats, or None for a one-shot timer.
    """

    __slots__ = (
        "_cancelled",
        "_deadline",
        "_handle",
        "_owner",
        "_queued",
        "_serial",
        "every",
        "fired",
        "message",
    )

    def __init__(self, owner: Timers, serial: int, message: Message, every: float | None) -> None:
        self._owner = owner
        self._serial = serial
        self.message = message
        self.every = every
        self.fired = 0
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        self._cancelled = False
        self._queued = 0  # deliveries waiting in the mailbox

    @property
    def active(self) -> bool:
        """True until the timer is cancelled, its actor stops, or a one-shot timer fired."""
        return self._handle is not None

    def cancel(self) -> bool:
        """Stop the timer. Its messages still waiting in the mailbox are discarded too, so the
        actor receives none from it after this call (as with Akka's timers).

        Returns:
            True when the timer was active, False when it had already ended.
        """
        self._cancelled = True
        handle = self._handle
        if handle is None:
            return False
        handle.cancel()
        self._handle = None
        self._owner._active.discard(self)
        return True

    def _fire(self) -> None:
        self._handle = None
        self.fired += 1
        every = self.every
        if every is None:
            self._owner._active.discard(self)
        else:
            loop = asyncio.get_running_loop()
            now = loop.time()
            deadline = self._deadline + every
            if deadline <= now:  # the loop fell behind: skip the missed ticks
                deadline = now + every
            self._deadline = deadline
            self._handle = loop.call_at(deadline, self._fire)
        owner = self._owner
        if owner._deliver(self.message, -self._serial):
            self._queued += 1
            owner._queued[self._serial] = self

    def __repr__(self) -> str:
        kind = "one-shot" if self.every is None else f"every {self.every} s"
        state = "active" if self.active else "ended"
        return f"<Timer {type(self.message).__qualname__} {kind} {state} fired={self.fired}>"


class TimerMark(NamedTuple):
    """The reply capability of a timer's mailbox entry: it names the timer, and drops answers.

    A timer's message is a tell to the actor itself; the mark lets the mailbox ask `Timers.take`
    whether the timer still wants it handled, and lets a stop discard it without a dead letter.
    """

    mark: int

    def reply(self, result: Any) -> None:
        """Nobody waits for a timer's message: the result is dropped."""

    def fail(self, type_name: str, text: str) -> None:
        """Nobody waits for a timer's message: the failure is only logged by the mailbox."""

    def dead_letter(self, reason: str, detail: str) -> None:
        """Nobody waits for a timer's message: the dead letter is only counted."""


class Timers:
    """The timers of one actor.

    A fired timer's message goes to the mailbox under a mark, the timer's serial number made
    negative (asks use positive correlation ids, tells 0); when the mailbox reaches it,
    `take` says whether to handle it (its timer was not cancelled meanwhile).

    Args:
        deliver: Queues ``(message, mark)`` in the actor's mailbox; returns False when it was
            not queued (the actor is stopping, or its bounded mailbox is full).
    """

    __slots__ = ("_active", "_closed", "_deliver", "_queued", "_serials")

    def __init__(self, deliver: Callable[[Message, int], bool]) -> None:
        self._deliver = deliver
        self._active: set[Timer] = set()
        self._queued: dict[int, Timer] = {}
        self._serials = 0
        self._closed = False

    def schedule(self, delay: float, message: Message, every: float | None = None) -> Timer:
        """Deliver ``message`` to the actor after ``delay`` seconds, then every ``every``.

        Args:
            delay: Seconds until the first delivery (0 or more).
            message: The message.
            every: Seconds between later deliveries; None delivers once.

        Returns:
            The timer's handle.

        Raises:
            ActorUsageError: ``message`` is not a `Message`, ``delay`` is negative or not
                finite, or ``every`` is not positive (it is also a `TypeError` and a
                `ValueError`).
        """
        if not isinstance(message, Message):
            raise ActorUsageError(f"schedule() needs a Message, not {type(message).__qualname__}")
        if not (isinstance(delay, int | float) and math.isfinite(delay) and delay >= 0):
            raise ActorUsageError(f"schedule() delay must be finite seconds >= 0, not {delay!r}")
        if every is not None and not (
            isinstance(every, int | float) and math.isfinite(every) and every > 0
        ):
            raise ActorUsageError(f"schedule() every must be finite seconds > 0, not {every!r}")
        self._serials += 1
        timer = Timer(self, self._serials, message, every)
        if self._closed:
            # The actor has stopped (e.g. on_stop scheduled something): nothing will run it.
            logger.debug("timer for %s not started: its actor stopped", type(message).__qualname__)
            timer._cancelled = True
            return timer
        loop = asyncio.get_running_loop()
        timer._deadline = loop.time() + delay
        timer._handle = loop.call_at(timer._deadline, timer._fire)
        self._active.add(timer)
        return timer

    def take(self, mark: int) -> bool:
        """A timer message with this mark leaves the mailbox: handle it?

        Args:
            mark: The negative mark it was queued under.

        Returns:
            False when its timer was cancelled (or ended with the actor) meanwhile.
        """
        timer = self._queued.get(-mark)
        if timer is None:
            return False
        timer._queued -= 1
        if not timer._queued:
            del self._queued[-mark]
        return not timer._cancelled

    def cancel_all(self) -> int:
        """End every active timer (the actor stops or restarts).

        Returns:
            How many were active.
        """
        active = list(self._active)
        for timer in active:
            timer.cancel()
        for timer in self._queued.values():
            timer._cancelled = True
        if active:
            logger.debug("cancelled %d timer(s)", len(active))
        return len(active)

    def close(self) -> None:
        """The actor stopped for good: end every timer, and start none from now on."""
        self._closed = True
        self.cancel_all()

    @property
    def active(self) -> int:
        """How many timers are active."""
        return len(self._active)
