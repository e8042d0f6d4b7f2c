"""Dead letters: messages nobody could handle, counted, logged, reported and answered."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from actors._envelope import ReplyTo
from actors._limits import DESCRIBE_LIMIT, bounded_text

__all__ = ["DeadLetter", "DeadLetterOffice"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message nobody could handle, as passed to ``on("dead_letter", ...)`` handlers.

    Attributes:
        reason: ``"unknown_actor"``, ``"unknown_tag"``, ``"invalid_payload"``,
            ``"payload_too_large"``, ``"no_handler"``, ``"actor_stopped"``, ``"mailbox_full"``,
            ``"invalid_reply"`` or ``"malformed_envelope"``.
        target: The actor it was addressed to, if known.
        tag: The message's wire tag, if known.
        sender_node: The node it came from (None for local senders outside actors).
        detail: A human-readable explanation.
    """

    reason: str
    target: str | None
    tag: str | None
    sender_node: str | None
    detail: str


# A peer sending nothing but bad envelopes must not fill the disk: at most this many dead-letter
# warnings per window, then one line saying how many more were counted but not logged.
LOG_BURST = 20
LOG_WINDOW = 1.0


class DeadLetterOffice:
    """Counts dead letters by reason, logs them, answers an ask's with a `DeadLetterError`, and
    hands each to a listener (the system's ``dead_letter`` event).

    Every dead letter is counted, answered and reported to the listener; the log gets at most
    `LOG_BURST` warnings per `LOG_WINDOW` seconds, and the first dead letter after a window
    with more logs how many were left out.

    Args:
        node_id: This node's id, for log lines.
        listener: Called with each `DeadLetter`.
        clock: Seconds, monotonic (tests pass their own).
    """

    __slots__ = (
        "_clock",
        "_counts",
        "_listener",
        "_logged",
        "_node_id",
        "_suppressed",
        "_window_start",
    )

    def __init__(
        self,
        node_id: str,
        listener: Callable[[DeadLetter], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._node_id = node_id
        self._counts: Counter[str] = Counter()
        self._listener = listener
        self._clock = clock
        self._window_start = float("-inf")
        self._logged = 0
        self._suppressed = 0

    @property
    def total(self) -> int:
        """How many dead letters were counted."""
        return sum(self._counts.values())

    def by_reason(self) -> dict[str, int]:
        """The count split by `DeadLetter.reason`."""
        return dict(self._counts)

    def record(
        self,
        reason: str,
        target: str | None,
        tag: str | None,
        sender_node: str | None,
        detail: str,
        reply_to: ReplyTo | None = None,
        *,
        log: bool = True,
    ) -> None:
        """Count, log and report one dead letter; answer its ask through ``reply_to``.

        The target, tag and detail may come from a peer: each is cut to a few hundred
        characters (with its length said) before it is logged, reported or sent back.
        ``log=False`` leaves the log line to the caller (which sums many up in one).
        """
        self._counts[reason] += 1
        if target is not None and len(target) > DESCRIBE_LIMIT:
            target = bounded_text(target, DESCRIBE_LIMIT)
        if tag is not None and len(tag) > DESCRIBE_LIMIT:
            tag = bounded_text(tag, DESCRIBE_LIMIT)
        if len(detail) > 2 * DESCRIBE_LIMIT:
            detail = bounded_text(detail, 2 * DESCRIBE_LIMIT)
        if log and self._may_log():
            logger.warning(
                "dead letter on %s (%s): %s [target=%s tag=%s from=%s]",
                self._node_id,
                reason,
                detail,
                target,
                tag,
                sender_node,
            )
        if reply_to is not None:
            reply_to.dead_letter(reason, detail)
        if self._listener is not None:
            self._listener(DeadLetter(reason, target, tag, sender_node, detail))

    def _may_log(self) -> bool:
        now = self._clock()
        if now - self._window_start >= LOG_WINDOW:
            if self._suppressed:
                logger.warning(
                    "dead letters on %s: %d more were not logged (at most %d a second are; "
                    "stats() counts them all)",
                    self._node_id,
                    self._suppressed,
                    LOG_BURST,
                )
            self._window_start = now
            self._logged = self._suppressed = 0
        if self._logged < LOG_BURST:
            self._logged += 1
            return True
        self._suppressed += 1
        return False

    def mailbox_full(
        self,
        target: str,
        tag: str | None,
        sender_node: str | None,
        size: int | None,
        reply_to: ReplyTo | None,
    ) -> None:
        """Record a message refused by a full bounded mailbox.

        A flood against a full mailbox logs about log2(n) lines for n refusals, not n.
        """
        count = self._counts["mailbox_full"] + 1
        self.record(
            "mailbox_full",
            target,
            tag,
            sender_node,
            f"mailbox of {target!r} is full ({size} messages; {count} refused so far)",
            reply_to,
            log=count & (count - 1) == 0,
        )
