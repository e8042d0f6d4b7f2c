"""The wire envelope: the one module that knows how an actor message sits in a transport packet.

One transport packet per message:

```text
[kind, target_actor, tag, payload, sender_node, sender_actor, correlation_id]
```

``kind`` is an `EnvelopeKind` (0 tell, 1 ask, 2 reply, 3 error). For tell and ask, ``tag`` and
``payload`` are the message's wire form (see `encode_message`) and ``correlation_id`` is None
for a tell. A reply carries the reply message's tag and payload (both None when the handler
returned None). An error carries ``tag`` = ``"RemoteError"`` or ``"DeadLetter"`` and
``payload`` = ``[type name or reason, text]``. ``sender_node`` is informative: replies and
``Context.sender`` use the peer id the transport authenticated, so `decode` drops it.

`decode` turns a packet into one of the small immutable values `Tell`, `Ask`, `Reply`,
`Failure` or `Malformed`; every field is checked by exact type (a kind of ``1.0`` or ``True`` is
malformed), except that a ``sender_actor`` that is not a str is read as None. The ``*_packet``
functions build packets. Nothing else in the package indexes a packet.

A `Delivery` is a message in a mailbox. It carries its reply capability (Pykka's
``reply_to``): None for a tell, a `LocalReply` (the asking future) or a `RemoteReply` (the
asking node and correlation id, and the send function to reach it) for an ask. The mailbox
answers through it without knowing who asked.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from actors._message import Message, encode_message
from actors.errors import AskError, DeadLetterError, EncodeError, RemoteError
from transport import TransportError

__all__ = [
    "ASK",
    "ERROR",
    "ERROR_DEAD_LETTER",
    "ERROR_REMOTE",
    "REPLY",
    "TELL",
    "Ask",
    "Delivery",
    "EnvelopeKind",
    "Failure",
    "LocalReply",
    "Malformed",
    "RemoteReply",
    "Reply",
    "ReplyTo",
    "Tell",
    "ask_packet",
    "decode",
    "error_packet",
    "new_delivery",
    "reply_packet",
    "replyable",
    "tell_packet",
]

logger = logging.getLogger(__name__)


class EnvelopeKind(enum.IntEnum):
    """The first field of every envelope."""

    TELL = 0
    ASK = 1
    REPLY = 2
    ERROR = 3


# Plain ints on the hot path: cheaper to compare and pack than IntEnum members.
TELL = 0
ASK = 1
REPLY = 2
ERROR = 3
ERROR_REMOTE = "RemoteError"
ERROR_DEAD_LETTER = "DeadLetter"

# Builds a NamedTuple at C speed (a NamedTuple's own __new__ is a Python function).
_new = tuple.__new__


# --- what decode returns ------------------------------------------------------------------------


class Tell(NamedTuple):
    """A tell for a local actor, as decoded from the wire."""

    target: str
    tag: str
    payload: Any
    sender_actor: str | None


class Ask(NamedTuple):
    """An ask for a local actor, as decoded from the wire."""

    target: str
    tag: str
    payload: Any
    sender_actor: str | None
    correlation_id: int


class Reply(NamedTuple):
    """The answer to one of our asks: the reply message's wire form (tag None: the handler
    returned None)."""

    tag: str | None
    payload: Any
    correlation_id: int


class Failure(NamedTuple):
    """An error answer to one of our asks."""

    error_tag: str
    name: str
    text: str
    correlation_id: int

    def error(self) -> AskError:
        """The exception the asking caller sees."""
        return ask_error(self.error_tag, self.name, self.text)


@dataclass(frozen=True, slots=True)
class Malformed:
    """A packet that is not a well-formed envelope.

    Attributes:
        reason: What is wrong with it.
        kind: `REPLY` or `ERROR` when the packet claims to answer an ask (those are not dead
            letters: nobody could be told), else None.
        correlation_id: For such an answer, its correlation id if it could be read, so the
            waiting ask fails at once instead of at its timeout.
    """

    reason: str
    kind: int | None = None
    correlation_id: int | None = None


Envelope = Tell | Ask | Reply | Failure | Malformed
"""Anything `decode` returns."""


def decode(packet: Any) -> Envelope:
    """Read one transport packet as an envelope.

    Args:
        packet: The packet as the transport delivered it.

    Returns:
        A `Tell`, `Ask`, `Reply` or `Failure`, or `Malformed` saying what is wrong.
    """
    if type(packet) is not list or len(packet) != 7:
        return Malformed(f"not an envelope: {packet!r:.200}")
    kind, target, tag, payload, _, sender_actor, correlation_id = packet
    if type(kind) is not int:
        return Malformed(f"unknown envelope kind {kind!r}")
    if kind in (TELL, ASK):
        if type(target) is not str:
            return Malformed(f"target actor is not a str: {target!r:.100}")
        if type(tag) is not str:
            return Malformed(f"message tag is not a str: {tag!r:.100}")
        if type(sender_actor) is not str:
            sender_actor = None  # only informative (it names Context.sender): ignored if odd
        if kind == TELL:
            return _new(Tell, (target, tag, payload, sender_actor))
        if type(correlation_id) is not int:
            return Malformed("ask without a correlation id")
        return _new(Ask, (target, tag, payload, sender_actor, correlation_id))
    if kind in (REPLY, ERROR):
        if type(correlation_id) is not int:
            return Malformed("answer without a correlation id", kind)
        if kind == REPLY:
            if tag is not None and type(tag) is not str:
                return Malformed(f"reply tag is not a str: {tag!r:.100}", REPLY, correlation_id)
            return _new(Reply, (tag, payload, correlation_id))
        if type(tag) is not str or type(payload) is not list or len(payload) != 2:
            return Malformed(f"malformed error reply: {payload!r:.200}", ERROR, correlation_id)
        return _new(Failure, (tag, str(payload[0]), str(payload[1]), correlation_id))
    return Malformed(f"unknown envelope kind {kind!r}")


# --- encoders -----------------------------------------------------------------------------------


def tell_packet(target: str, message: Message, origin: str, sender_actor: str | None) -> list[Any]:
    """The packet for a tell of ``message`` to ``target``, sent by ``origin``/``sender_actor``.

    Raises:
        EncodeError: The message cannot be encoded.
    """
    tag, payload = encode_message(message)
    return [TELL, target, tag, payload, origin, sender_actor, None]


def ask_packet(
    target: str, message: Message, origin: str, sender_actor: str | None, correlation_id: int
) -> list[Any]:
    """The packet for an ask; as `tell_packet`, with the correlation id the reply will carry.

    Raises:
        EncodeError: The message cannot be encoded.
    """
    tag, payload = encode_message(message)
    return [ASK, target, tag, payload, origin, sender_actor, correlation_id]


def replyable(result: Any) -> bool:
    """Whether a handler's return value can be sent as an ask's reply (see `reply_packet`)."""
    return result is None or isinstance(result, Message)


def reply_packet(result: Any, origin: str, correlation_id: int) -> list[Any]:
    """The packet answering ask ``correlation_id`` with a handler's return value.

    This is the one reply encoder: what a reply may be is decided here and in `replyable`.

    Raises:
        EncodeError: The value cannot be encoded.
    """
    if result is None:
        return [REPLY, None, None, None, origin, None, correlation_id]
    if not isinstance(result, Message):
        raise EncodeError(f"a reply must be a Message or None, not {type(result).__qualname__}")
    tag, payload = encode_message(result)
    return [REPLY, None, tag, payload, origin, None, correlation_id]


def error_packet(
    error_tag: str, name: str, text: str, origin: str, correlation_id: int
) -> list[Any]:
    """The packet failing ask ``correlation_id``: ``error_tag`` is `ERROR_REMOTE` (``name`` is
    the exception's type name) or `ERROR_DEAD_LETTER` (``name`` is the reason)."""
    return [ERROR, None, error_tag, [name, text], origin, None, correlation_id]


def ask_error(error_tag: Any, name: str, text: str) -> AskError:
    """The exception for an error answer with this tag, name and text."""
    if error_tag == ERROR_DEAD_LETTER:
        return DeadLetterError(name, text)
    if error_tag == ERROR_REMOTE:
        return RemoteError(name, text)
    return AskError(f"{error_tag}: {name}: {text}")


# --- mailbox entries and their reply capability -------------------------------------------------


class ReplyTo(Protocol):
    """Where an ask's answer goes; the mailbox answers through it without knowing who asked."""

    def reply(self, result: Any) -> None:
        """Answer with the handler's return value."""

    def fail(self, type_name: str, text: str) -> None:
        """Answer that the handler raised (the asker gets a `RemoteError`)."""

    def dead_letter(self, reason: str, detail: str) -> None:
        """Answer that the message became a dead letter (the asker gets a `DeadLetterError`)."""


class LocalReply(NamedTuple):
    """The reply capability of an ask from this very system: the asking future."""

    future: asyncio.Future[Any]

    def reply(self, result: Any) -> None:
        """Resolve the future with the result (a late answer is dropped)."""
        if not self.future.done():
            self.future.set_result(result)

    def fail(self, type_name: str, text: str) -> None:
        """Fail the future with a `RemoteError`."""
        if not self.future.done():
            self.future.set_exception(RemoteError(type_name, text))

    def dead_letter(self, reason: str, detail: str) -> None:
        """Fail the future with a `DeadLetterError`."""
        if not self.future.done():
            self.future.set_exception(DeadLetterError(reason, detail))


class RemoteReply(NamedTuple):
    """The reply capability of an ask from a peer: where to send the answer.

    Attributes:
        send: The transport's send function (``Node.send``).
        origin: This node's id, written into the answer's ``sender_node``.
        node_id: The asking peer.
        correlation_id: The ask's id on that peer.
    """

    send: Callable[[str, Any], Any]
    origin: str
    node_id: str
    correlation_id: int

    def reply(self, result: Any) -> None:
        """Send the result; one that cannot be encoded or sent is answered as an
        ``EncodeError``."""
        try:
            packet = reply_packet(result, self.origin, self.correlation_id)
            sent = self.send(self.node_id, packet)
        except (EncodeError, TransportError, TypeError, ValueError, OverflowError) as exc:
            self.fail("EncodeError", str(exc))
            return
        if not sent:
            logger.debug("reply %d to %s dropped: not connected", self.correlation_id, self.node_id)

    def fail(self, type_name: str, text: str) -> None:
        """Send a `RemoteError` answer."""
        self._send(error_packet(ERROR_REMOTE, type_name, text, self.origin, self.correlation_id))

    def dead_letter(self, reason: str, detail: str) -> None:
        """Send a `DeadLetterError` answer."""
        self._send(
            error_packet(ERROR_DEAD_LETTER, reason, detail, self.origin, self.correlation_id)
        )

    def _send(self, packet: list[Any]) -> None:
        try:
            sent = self.send(self.node_id, packet)
        except (TransportError, TypeError, ValueError, OverflowError):
            logger.exception("answer %d to %s could not be sent", self.correlation_id, self.node_id)
            return
        if not sent:
            logger.debug(
                "answer %d to %s dropped: not connected", self.correlation_id, self.node_id
            )


class Delivery(NamedTuple):
    """A message in a mailbox, with where it came from and where an answer goes."""

    message: Message
    sender_node: str | None
    sender_name: str | None
    reply_to: ReplyTo | None
    """None for a tell."""


def new_delivery(
    message: Message, sender_node: str | None, sender_name: str | None, reply_to: ReplyTo | None
) -> Delivery:
    """Build a `Delivery` (the hot paths inline ``tuple.__new__(Delivery, (...))``: a
    NamedTuple's own ``__new__``, and this function's call, are Python frames)."""
    return _new(Delivery, (message, sender_node, sender_name, reply_to))
