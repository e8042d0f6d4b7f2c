"""The receive path: packets from peers, decoded once, to mailboxes and to waiting asks.

`Receiver` needs no `transport.Node`: it is fed ``(peer_id, packets)`` by whoever owns the
connection (the system registers `Receiver.on_packets` for the node's ``packets`` event), and
reaches the rest of the system through what it is given: the actor table (cells as the small
`Inbox` protocol), the pending-ask table, the dead-letter office and a send function for
answers. Tests feed it packets directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from pydantic import ValidationError

from actors._deadletters import DeadLetterOffice
from actors._envelope import (
    ASK,
    ERROR,
    REPLY,
    Ask,
    Delivery,
    Envelope,
    Failure,
    Malformed,
    RemoteReply,
    Reply,
    ReplyTo,
    Tell,
    WatchNotice,
    decode,
)
from actors._limits import (
    DEFAULT_MAX_PAYLOAD_ITEMS,
    DESCRIBE_LIMIT,
    bounded_text,
    count_items,
    describe,
    scalar_classes,
    within_budget,
)
from actors._message import _REGISTRY as _message_classes
from actors._message import Message
from actors._pending import PendingAsk, PendingAsks
from actors._values import decode_reply
from actors.errors import AskError, DeadLetterError

__all__ = ["Admission", "Inbox", "Receiver"]

logger = logging.getLogger(__name__)

_new = tuple.__new__


class Admission(Protocol):
    """How a payload from the wire becomes a message, once (`Receiver` is one): the size
    budget, and what to do with one that is refused or does not validate."""

    max_items: int | None

    def admit(
        self, peer_id: str, envelope: Tell | Ask, cls: type[Message], reply_to: ReplyTo | None
    ) -> Message | None:
        """Check the size and validate; None when the message became a dead letter."""

    def refuse(
        self,
        peer_id: str,
        envelope: Tell | Ask,
        cls: type[Message],
        reply_to: ReplyTo | None,
        exc: Exception,
    ) -> None:
        """Dead-letter a payload whose validation raised ``exc``."""


# Past this many validation errors, a dead letter gives their count, not the first one:
# ``ValidationError.errors()`` builds every error (about 12 µs each), whatever is read of it.
_DETAILED_ERRORS = 20


class Inbox(Protocol):
    """What the receive path needs from an actor's cell."""

    def run_now(self, delivery: Delivery) -> bool:
        """Handle the delivery at once if that keeps the mailbox's guarantees."""

    def run_tells(
        self,
        peer_id: str,
        packets: list[Any],
        index: int,
        first: Tell,
        cls: type[Message],
        admission: Admission,
    ) -> int:
        """Handle a run of tells starting at ``packets[index]``; return the next index."""

    def put(self, delivery: Delivery) -> bool:
        """Queue the delivery; False when a bounded mailbox is full."""

    @property
    def mailbox_size(self) -> int | None:
        """The mailbox bound, or None."""


class Receiver:
    """Routes decoded envelopes from peers: requests to cells, answers to pending asks.

    Args:
        node_id: This node's id (written into answers, and into log lines).
        actors: The live actor table, by name.
        pending: The pending-ask table answers resolve.
        dead_letters: Where undeliverable messages are counted and reported.
        send: Sends a packet to a peer (``Node.send``), for answers to a peer's asks.
        on_watch: Takes the death-watch notices from peers (see `actors._watch`); without
            it they are dropped.
        max_payload_items: The most container entries a received payload may hold
            (`actors._limits.within_budget`); a bigger one is a ``"payload_too_large"`` dead
            letter, refused before validation. None accepts any payload.

    Every packet of a read is handled or dead-lettered on its own: whatever one holds, the
    packets after it are still taken, and nothing a peer sent is ever logged or answered
    beyond a few hundred characters (`actors._limits.describe`).
    """

    __slots__ = (
        "_actors",
        "_dead_letters",
        "_node_id",
        "_on_watch",
        "_pending",
        "_send",
        "closed",
        "max_items",
    )

    def __init__(
        self,
        node_id: str,
        actors: Mapping[str, Inbox],
        pending: PendingAsks,
        dead_letters: DeadLetterOffice,
        send: Callable[[str, Any], Any],
        on_watch: Callable[[str, WatchNotice], None] | None = None,
        max_payload_items: int | None = DEFAULT_MAX_PAYLOAD_ITEMS,
    ) -> None:
        self._node_id = node_id
        self._on_watch = on_watch
        self.max_items = max_payload_items
        """The most container entries a received payload may hold (None: no bound)."""
        self._actors = actors
        self._pending = pending
        self._dead_letters = dead_letters
        self._send = send
        self.closed = False
        """Set when the system closes: later packets are ignored."""

    def on_packets(self, peer_id: str, packets: list[Any]) -> None:
        """Take one read's packets from ``peer_id``, in order.

        The hot path: well-formed tells and asks to a local actor with a known tag, and replies
        to our asks. A run of tells to one idle actor is handled in a single call
        (`Inbox.run_tells`). Anything else, or any doubt, takes the general path, which explains
        what went wrong. A packet whose handling fails for a reason nobody foresaw is
        dead-lettered alone; the rest go on.
        """
        index = 0
        count = len(packets)
        actors = self._actors
        while index < count and not self.closed:
            packet = packets[index]
            # A try block costs nothing until something raises (Python 3.11's zero-cost
            # exceptions), so the guard sits on the hot path itself.
            try:
                envelope = decode(packet)
                if type(envelope) is Tell:
                    cell = actors.get(envelope.target)
                    cls = _message_classes.get(envelope.tag)
                    if cell is not None and cls is not None:
                        after = cell.run_tells(peer_id, packets, index, envelope, cls, self)
                        if after != index:
                            index = after
                            continue
                        self._deliver(peer_id, envelope, cell, cls)
                        index += 1
                        continue
                elif type(envelope) is Ask:
                    cell = actors.get(envelope.target)
                    cls = _message_classes.get(envelope.tag)
                    if cell is not None and cls is not None:
                        self._deliver(peer_id, envelope, cell, cls)
                        index += 1
                        continue
                elif type(envelope) is Reply:
                    # An answer to one of our asks: straight to its future.
                    self._reply(peer_id, envelope)
                    index += 1
                    continue
                self._route(peer_id, envelope)
            except Exception as exc:
                self._unforeseen(peer_id, packet, exc)
            index += 1

    def on_packet(self, peer_id: str, packet: Any) -> None:
        """Take one packet from ``peer_id`` by the general path."""
        if self.closed:
            return
        try:
            self._route(peer_id, decode(packet))
        except Exception as exc:
            self._unforeseen(peer_id, packet, exc)

    def _unforeseen(self, peer_id: str, packet: Any, exc: Exception) -> None:
        logger.error(
            "%s: packet from %s could not be handled (%s: %s): %s",
            self._node_id,
            peer_id,
            type(exc).__name__,
            bounded_text(str(exc), DESCRIBE_LIMIT),
            describe(packet),
        )
        self._dead_letters.record(
            "malformed_envelope",
            None,
            None,
            peer_id,
            f"could not be handled: {type(exc).__name__}",
        )

    def _reply_to(self, peer_id: str, envelope: Tell | Ask) -> ReplyTo | None:
        if type(envelope) is Ask:
            return _new(RemoteReply, (self._send, self._node_id, peer_id, envelope.correlation_id))
        return None

    def admit(
        self, peer_id: str, envelope: Tell | Ask, cls: type[Message], reply_to: ReplyTo | None
    ) -> Message | None:
        """Check a received payload's size and validate it, once.

        Returns:
            The message, or None when it was refused (too large) or did not validate: it is
            then a dead letter, answered through ``reply_to`` if it was an ask.
        """
        payload = envelope.payload
        budget = self.max_items
        # within_budget's common case inline (the hot path): a flat map for a class of scalars.
        if not (
            budget is None
            or (type(payload) is dict and len(payload) <= budget and cls in scalar_classes)
            or within_budget(cls, payload, budget)
        ):
            self._dead_letters.record(
                "payload_too_large",
                envelope.target,
                envelope.tag,
                peer_id,
                f"payload for {cls.__qualname__} holds more than {budget} items "
                "(max_payload_items); not validated",
                reply_to,
            )
            return None
        try:
            message: Message = cls.__pydantic_validator__.validate_python(payload)
        except Exception as exc:
            self.refuse(peer_id, envelope, cls, reply_to, exc)
            return None
        return message

    def refuse(
        self,
        peer_id: str,
        envelope: Tell | Ask,
        cls: type[Message],
        reply_to: ReplyTo | None,
        exc: Exception,
    ) -> None:
        """Dead-letter a payload whose validation raised ``exc`` (``"invalid_payload"``)."""
        if isinstance(exc, ValidationError):
            detail = _invalid_detail(cls, exc)
        else:  # a validator of the user's raising what pydantic passes on
            detail = (
                f"validating {cls.__qualname__} raised {type(exc).__name__}: "
                f"{bounded_text(str(exc), DESCRIBE_LIMIT)}"
            )
        self._dead_letters.record(
            "invalid_payload", envelope.target, envelope.tag, peer_id, detail, reply_to
        )

    def _deliver(self, peer_id: str, envelope: Tell | Ask, cell: Inbox, cls: type[Message]) -> None:
        """Admit a well-formed tell or ask for ``cell`` and run or queue it."""
        reply_to = self._reply_to(peer_id, envelope)
        message = self.admit(peer_id, envelope, cls, reply_to)
        if message is None:
            return
        delivery = _new(Delivery, (message, peer_id, envelope.sender_actor, reply_to))
        if not cell.run_now(delivery) and not cell.put(delivery):
            self._full(cell, envelope, delivery)

    def _full(self, cell: Inbox, envelope: Tell | Ask, delivery: Delivery) -> None:
        self._dead_letters.mailbox_full(
            envelope.target,
            envelope.tag,
            delivery.sender_node,
            cell.mailbox_size,
            delivery.reply_to,
        )

    def _route(self, peer_id: str, envelope: Envelope) -> None:
        """The general path for one envelope: answers, and whatever the hot path refused
        (unknown actor or tag, malformed envelope), reported as such."""
        if isinstance(envelope, (Tell, Ask)):
            self._request(peer_id, envelope)
        elif isinstance(envelope, Reply):
            self._reply(peer_id, envelope)
        elif isinstance(envelope, Failure):
            pending = self._waiting(peer_id, envelope.correlation_id)
            if pending is not None:
                pending.future.set_exception(envelope.error())
        elif isinstance(envelope, WatchNotice):
            if self._on_watch is not None:
                self._on_watch(peer_id, envelope)
        else:
            self._malformed(peer_id, envelope)

    def _request(self, peer_id: str, envelope: Tell | Ask) -> None:
        cell = self._actors.get(envelope.target)
        if cell is None:
            self._dead_letters.record(
                "unknown_actor",
                envelope.target,
                envelope.tag,
                peer_id,
                f"no actor named {describe(envelope.target)} on {self._node_id!r}",
                self._reply_to(peer_id, envelope),
            )
            return
        cls = _message_classes.get(envelope.tag)
        if cls is None:
            self._dead_letters.record(
                "unknown_tag",
                envelope.target,
                envelope.tag,
                peer_id,
                f"no Message class with tag {describe(envelope.tag)} on {self._node_id!r}",
                self._reply_to(peer_id, envelope),
            )
            return
        self._deliver(peer_id, envelope, cell, cls)

    def _waiting(self, peer_id: str, correlation_id: int) -> PendingAsk | None:
        pending = self._pending.waiting(correlation_id, peer_id)
        if pending is None:
            logger.debug("late or unexpected answer %r from %s dropped", correlation_id, peer_id)
        return pending

    def _reply(self, peer_id: str, envelope: Reply) -> None:
        pending = self._pending.waiting(envelope.correlation_id, peer_id)
        if pending is None:
            logger.debug(
                "late or unexpected answer %r from %s dropped", envelope.correlation_id, peer_id
            )
            return
        budget = self.max_items
        payload = envelope.payload
        cls = _message_classes.get(envelope.tag) if type(envelope.tag) is str else None
        if budget is not None and not (
            # A Message reply is budgeted as a tell of its class is (a flat map of scalars
            # needs only its length checked); a plain value is walked.
            within_budget(cls, payload, budget)
            if cls is not None
            else count_items(payload, budget) <= budget
        ):
            self._invalid_reply(
                peer_id,
                pending,
                envelope.tag,
                f"reply holds more than {budget} items (max_payload_items); not decoded",
            )
            return
        try:
            reply = decode_reply(envelope.tag, payload)
        except DeadLetterError as exc:
            self._invalid_reply(
                peer_id,
                pending,
                envelope.tag,
                f"{bounded_text(exc.detail, DESCRIBE_LIMIT)} on {self._node_id!r}",
            )
            return
        except Exception as exc:  # a reply too deep to decode, a user validator's own error
            self._invalid_reply(
                peer_id,
                pending,
                envelope.tag,
                f"reply could not be decoded ({type(exc).__name__}) on {self._node_id!r}",
            )
            return
        pending.future.set_result(reply)

    def _invalid_reply(self, peer_id: str, pending: PendingAsk, tag: Any, detail: str) -> None:
        self._dead_letters.record("invalid_reply", pending.target, describe(tag), peer_id, detail)
        pending.future.set_exception(DeadLetterError("invalid_reply", detail))

    def _malformed(self, peer_id: str, envelope: Malformed) -> None:
        if envelope.kind is None:
            self._dead_letters.record("malformed_envelope", None, None, peer_id, envelope.reason)
            return
        if envelope.kind == ASK:
            assert envelope.correlation_id is not None
            reply_to = _new(
                RemoteReply, (self._send, self._node_id, peer_id, envelope.correlation_id)
            )
            self._dead_letters.record(
                "malformed_envelope", None, None, peer_id, envelope.reason, reply_to
            )
            return
        if envelope.correlation_id is None:
            logger.debug("answer without a correlation id from %s dropped", peer_id)
            return
        pending = self._waiting(peer_id, envelope.correlation_id)
        if pending is None:
            return
        if envelope.kind == REPLY:
            self._invalid_reply(peer_id, pending, None, envelope.reason)
        elif envelope.kind == ERROR:
            pending.future.set_exception(AskError(f"{envelope.reason} (from {peer_id})"))


def _invalid_detail(cls: type[Message], exc: ValidationError) -> str:
    """What is wrong with a payload, in a bounded text, at a bounded cost."""
    count = exc.error_count()
    head = f"payload does not validate as {cls.__qualname__}: {count} error(s)"
    if count > _DETAILED_ERRORS:
        return head
    first = exc.errors(include_url=False, include_context=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{head}: {bounded_text(first['msg'], DESCRIBE_LIMIT)}" + (
        f" at {bounded_text(where, 80)}" if where else ""
    )
