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
    decode,
    new_delivery,
)
from actors._message import _REGISTRY as _message_classes
from actors._message import Message
from actors._pending import PendingAsk, PendingAsks
from actors.errors import AskError, DeadLetterError

__all__ = ["Inbox", "Receiver"]

logger = logging.getLogger(__name__)

_new = tuple.__new__


class Inbox(Protocol):
    """What the receive path needs from an actor's cell."""

    def run_now(self, delivery: Delivery) -> bool:
        """Handle the delivery at once if that keeps the mailbox's guarantees."""

    def run_tells(
        self, peer_id: str, packets: list[Any], index: int, first: Tell, cls: type[Message]
    ) -> int:
        """Handle a run of tells starting at ``packets[index]``; return the next index."""

    def put(self, delivery: Delivery) -> None:
        """Queue the delivery."""


class Receiver:
    """Routes decoded envelopes from peers: requests to cells, answers to pending asks.

    Args:
        node_id: This node's id (written into answers, and into log lines).
        actors: The live actor table, by name.
        pending: The pending-ask table answers resolve.
        dead_letters: Where undeliverable messages are counted and reported.
        send: Sends a packet to a peer (``Node.send``), for answers to a peer's asks.
    """

    __slots__ = ("_actors", "_dead_letters", "_node_id", "_pending", "_send", "closed")

    def __init__(
        self,
        node_id: str,
        actors: Mapping[str, Inbox],
        pending: PendingAsks,
        dead_letters: DeadLetterOffice,
        send: Callable[[str, Any], Any],
    ) -> None:
        self._node_id = node_id
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
        what went wrong.
        """
        index = 0
        count = len(packets)
        actors = self._actors
        while index < count and not self.closed:
            envelope = decode(packets[index])
            if type(envelope) is Tell:
                cell = actors.get(envelope.target)
                cls = _message_classes.get(envelope.tag)
                if cell is not None and cls is not None:
                    after = cell.run_tells(peer_id, packets, index, envelope, cls)
                    if after != index:
                        index = after
                        continue
                    if self._deliver(peer_id, envelope, cell, cls):
                        index += 1
                        continue
            elif type(envelope) is Ask:
                cell = actors.get(envelope.target)
                cls = _message_classes.get(envelope.tag)
                if (
                    cell is not None
                    and cls is not None
                    and self._deliver(peer_id, envelope, cell, cls)
                ):
                    index += 1
                    continue
            elif type(envelope) is Reply:
                # An answer to one of our asks: straight to its future.
                self._reply(peer_id, envelope)
                index += 1
                continue
            self._route(peer_id, envelope)
            index += 1

    def on_packet(self, peer_id: str, packet: Any) -> None:
        """Take one packet from ``peer_id`` by the general path."""
        if not self.closed:
            self._route(peer_id, decode(packet))

    def _reply_to(self, peer_id: str, envelope: Tell | Ask) -> ReplyTo | None:
        if type(envelope) is Ask:
            return _new(RemoteReply, (self._send, self._node_id, peer_id, envelope.correlation_id))
        return None

    def _deliver(self, peer_id: str, envelope: Tell | Ask, cell: Inbox, cls: type[Message]) -> bool:
        """Validate a well-formed tell or ask for ``cell`` and run or queue it.

        Returns:
            False when the payload does not validate (nothing was done).
        """
        try:
            message = cls.__pydantic_validator__.validate_python(envelope.payload)
        except ValidationError:
            return False
        delivery = _new(
            Delivery, (message, peer_id, envelope.sender_actor, self._reply_to(peer_id, envelope))
        )
        if not cell.run_now(delivery):
            cell.put(delivery)
        return True

    def _route(self, peer_id: str, envelope: Envelope) -> None:
        """The general path for one envelope: answers, and whatever the hot path refused
        (unknown actor or tag, invalid payload, malformed envelope), reported as such."""
        if isinstance(envelope, (Tell, Ask)):
            self._request(peer_id, envelope)
        elif isinstance(envelope, Reply):
            self._reply(peer_id, envelope)
        elif isinstance(envelope, Failure):
            pending = self._waiting(peer_id, envelope.correlation_id)
            if pending is not None:
                pending.future.set_exception(envelope.error())
        else:
            self._malformed(peer_id, envelope)

    def _request(self, peer_id: str, envelope: Tell | Ask) -> None:
        reply_to = self._reply_to(peer_id, envelope)
        record = self._dead_letters.record
        cell = self._actors.get(envelope.target)
        if cell is None:
            record(
                "unknown_actor",
                envelope.target,
                envelope.tag,
                peer_id,
                f"no actor named {envelope.target!r} on {self._node_id!r}",
                reply_to,
            )
            return
        cls = _message_classes.get(envelope.tag)
        if cls is None:
            record(
                "unknown_tag",
                envelope.target,
                repr(envelope.tag),
                peer_id,
                f"no Message class with tag {envelope.tag!r} on {self._node_id!r}",
                reply_to,
            )
            return
        try:
            message = cls.__pydantic_validator__.validate_python(envelope.payload)
        except ValidationError as exc:
            record(
                "invalid_payload",
                envelope.target,
                envelope.tag,
                peer_id,
                f"payload does not validate as {cls.__qualname__}: "
                f"{exc.error_count()} error(s): {exc.errors()[0]['msg']}",
                reply_to,
            )
            return
        delivery = new_delivery(message, peer_id, envelope.sender_actor, reply_to)
        if not cell.run_now(delivery):
            cell.put(delivery)

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
        tag = envelope.tag
        if tag is None:
            pending.future.set_result(None)
            return
        reply_cls = _message_classes.get(tag)
        if reply_cls is None:
            self._invalid_reply(
                peer_id, pending, tag, f"no Message class with tag {tag!r} on {self._node_id!r}"
            )
            return
        try:
            reply = reply_cls.__pydantic_validator__.validate_python(envelope.payload)
        except ValidationError:
            self._invalid_reply(
                peer_id, pending, tag, f"reply does not validate as {reply_cls.__qualname__}"
            )
            return
        pending.future.set_result(reply)

    def _invalid_reply(self, peer_id: str, pending: PendingAsk, tag: Any, detail: str) -> None:
        self._dead_letters.record("invalid_reply", pending.target, repr(tag), peer_id, detail)
        pending.future.set_exception(DeadLetterError("invalid_reply", detail))

    def _malformed(self, peer_id: str, envelope: Malformed) -> None:
        if envelope.kind is None:
            self._dead_letters.record("malformed_envelope", None, None, peer_id, envelope.reason)
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
