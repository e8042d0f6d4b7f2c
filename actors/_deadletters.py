"""Dead letters: messages nobody could handle, counted, logged, reported and answered."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from actors._envelope import ReplyTo

__all__ = ["DeadLetter", "DeadLetterOffice"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message nobody could handle, as passed to ``on("dead_letter", ...)`` handlers.

    Attributes:
        reason: ``"unknown_actor"``, ``"unknown_tag"``, ``"invalid_payload"``,
            ``"no_handler"``, ``"actor_stopped"``, ``"invalid_reply"`` or
            ``"malformed_envelope"``.
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


class DeadLetterOffice:
    """Counts dead letters by reason, logs them, answers an ask's with a `DeadLetterError`, and
    hands each to a listener (the system's ``dead_letter`` event)."""

    __slots__ = ("_counts", "_listener", "_node_id")

    def __init__(self, node_id: str, listener: Callable[[DeadLetter], None] | None = None) -> None:
        self._node_id = node_id
        self._counts: Counter[str] = Counter()
        self._listener = listener

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
    ) -> None:
        """Count, log and report one dead letter; answer its ask through ``reply_to``."""
        self._counts[reason] += 1
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
