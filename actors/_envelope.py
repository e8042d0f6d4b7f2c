"""The wire envelope: the one module that knows how an actor message sits in a transport packet.

One transport packet per message:

```text
[kind, target_actor, tag, payload, sender_node, sender_actor, correlation_id]
```

``kind`` is an `EnvelopeKind` (0 tell, 1 ask, 2 reply, 3 error, 4 watch, 5 unwatch,
6 terminated). For tell and ask, ``tag`` and ``payload`` are the message's wire form (see
`encode_message`) and ``correlation_id`` is None for a tell. A reply carries the handler's
return value as `actors._values.encode_reply` writes it: a Message's tag and payload, or tag
None (or ``1``, pair-coded) and a plain value. An error carries ``tag`` = ``"RemoteError"`` or
``"DeadLetter"`` and ``payload`` = ``[type name or reason, text]``. The three death-watch notices
carry the watched actor as ``target_actor``, the watching actor as ``sender_actor``, and, for
``terminated``, the reason as ``payload``. ``sender_node`` is informative: replies and
``Context.sender`` use the peer id the transport authenticated, so `decode` drops it.

`decode` turns a packet into one of the small immutable values `Tell`, `Ask`, `Reply`,
`Failure`, `WatchNotice` or `Malformed`; every field is checked by exact type (a kind of ``1.0``
or ``True`` is malformed), except that a ``sender_actor`` that is not a str is read as None. The
``*_packet`` functions build packets. Nothing else in the package indexes a packet.

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

from actors._limits import DESCRIBE_LIMIT, bounded_text, describe
from actors._message import Message, encode_message
from actors._values import PAIR_CODED, copy_reply, encode_reply
from actors._watch import TerminationReason
from actors.errors import AskError, DeadLetterError, EncodeError, RemoteError
from transport import PacketTooLarge, TransportError

__all__ = [
    "ASK",
    "ERROR",
    "ERROR_DEAD_LETTER",
    "ERROR_REMOTE",
    "REPLY",
    "TELL",
    "TERMINATED",
    "UNWATCH",
    "WATCH",
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
    "WatchNotice",
    "ask_packet",
    "decode",
    "error_packet",
    "new_delivery",
    "reply_packet",
    "tell_packet",
    "unsendable_reason",
    "watch_packet",
]

logger = logging.getLogger(__name__)


class EnvelopeKind(enum.IntEnum):
    """The first field of every envelope."""

    TELL = 0
    ASK = 1
    REPLY = 2
    ERROR = 3
    WATCH = 4
    UNWATCH = 5
    TERMINATED = 6


# Plain ints on the hot path: cheaper to compare and pack than IntEnum members.
TELL = 0
ASK = 1
REPLY = 2
ERROR = 3
WATCH = 4
UNWATCH = 5
TERMINATED = 6
_WATCH_KINDS = (WATCH, UNWATCH, TERMINATED)
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
    """The answer to one of our asks, in the form `actors._values.encode_reply` wrote: a
    message tag, or None / `PAIR_CODED` for a plain value."""

    tag: str | int | None
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


class WatchNotice(NamedTuple):
    """A death-watch notice from a peer (see `actors._watch`).

    Attributes:
        kind: `WATCH`, `UNWATCH` or `TERMINATED`.
        target: The watched actor (on the receiver for watch / unwatch, on the sender for
            terminated).
        watcher: The watching actor (on the other side).
        reason: For terminated: ``"stopped"``, ``"not_found"`` or ``"node_down"``; else None.
    """

    kind: int
    target: str
    watcher: str
    reason: TerminationReason | None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A packet that is not a well-formed envelope.

    Attributes:
        reason: What is wrong with it.
        kind: `REPLY` or `ERROR` when the packet claims to answer an ask (those are not dead
            letters: nobody could be told); `ASK` for a malformed ask whose correlation id
            could be read (a dead letter, answered); else None.
        correlation_id: For such an answer, its correlation id if it could be read, so the
            waiting ask fails at once instead of at its timeout; for such an ask, the id to
            answer.
    """

    reason: str
    kind: int | None = None
    correlation_id: int | None = None


Envelope = Tell | Ask | Reply | Failure | WatchNotice | Malformed
"""Anything `decode` returns."""


def decode(packet: Any) -> Envelope:
    """Read one transport packet as an envelope.

    Args:
        packet: The packet as the transport delivered it.

    Returns:
        A `Tell`, `Ask`, `Reply`, `Failure` or `WatchNotice`, or `Malformed` saying what is
        wrong.
    """
    if type(packet) is not list or len(packet) != 7:
        return Malformed(f"not an envelope: {describe(packet)}")
    kind, target, tag, payload, _, sender_actor, correlation_id = packet
    if type(kind) is not int:
        return Malformed(f"unknown envelope kind {describe(kind)}")
    if kind in (TELL, ASK):
        if type(target) is not str or type(tag) is not str:
            # An ask whose correlation id reads is answered, so its asker need not time out.
            answerable = kind == ASK and type(correlation_id) is int
            return Malformed(
                f"target actor is not a str: {describe(target)}"
                if type(target) is not str
                else f"message tag is not a str: {describe(tag)}",
                ASK if answerable else None,
                correlation_id if answerable else None,
            )
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
            if (
                tag is not None
                and type(tag) is not str
                and not (type(tag) is int and tag == PAIR_CODED)
            ):
                return Malformed(f"reply tag is not a str: {describe(tag)}", REPLY, correlation_id)
            return _new(Reply, (tag, payload, correlation_id))
        if type(tag) is not str or type(payload) is not list or len(payload) != 2:
            return Malformed(f"malformed error reply: {describe(payload)}", ERROR, correlation_id)
        name, text = payload
        return _new(
            Failure,
            (
                bounded_text(tag, DESCRIBE_LIMIT),
                bounded_text(name, DESCRIBE_LIMIT) if type(name) is str else describe(name),
                bounded_text(text) if type(text) is str else describe(text),
                correlation_id,
            ),
        )
    if kind in _WATCH_KINDS:
        if type(target) is not str or type(sender_actor) is not str:
            return Malformed(f"watch notice {kind} without actor names")
        if kind != TERMINATED:
            return WatchNotice(kind, target, sender_actor, None)
        if payload == "stopped" or payload == "not_found" or payload == "node_down":
            return WatchNotice(kind, target, sender_actor, payload)
        return Malformed(f"unknown termination reason {describe(payload, 80)}")
    return Malformed(f"unknown envelope kind {describe(kind)}")


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


def reply_packet(result: Any, origin: str, correlation_id: int) -> list[Any]:
    """The packet answering ask ``correlation_id`` with a handler's return value, whatever its
    type (the one reply encoder is `actors._values.encode_reply`).

    Raises:
        EncodeError: The value cannot be encoded.
    """
    tag, payload = encode_reply(result)
    return [REPLY, None, tag, payload, origin, None, correlation_id]


def watch_packet(
    kind: int, target: str, watcher: str, origin: str, reason: TerminationReason | None = None
) -> list[Any]:
    """The packet of a death-watch notice (`WATCH`, `UNWATCH` or `TERMINATED` with a reason)."""
    return [kind, target, None, reason, origin, watcher, None]


def error_packet(
    error_tag: str, name: str, text: str, origin: str, correlation_id: int
) -> list[Any]:
    """The packet failing ask ``correlation_id``: ``error_tag`` is `ERROR_REMOTE` (``name`` is
    the exception's type name) or `ERROR_DEAD_LETTER` (``name`` is the reason).

    The name and text are cut (`actors._limits.bounded_text`), so an answer is always small
    enough to send, whatever an exception's message or a peer's value held.
    """
    return [
        ERROR,
        None,
        error_tag,
        [bounded_text(name, DESCRIBE_LIMIT), bounded_text(text)],
        origin,
        None,
        correlation_id,
    ]


def unsendable_reason(exc: BaseException) -> str:
    """Why a reply could not be sent, naming its size or its depth, for the asker's
    `RemoteError` (type name ``"EncodeError"``)."""
    if isinstance(exc, PacketTooLarge):
        return f"the reply is too large to send: {exc}"
    if isinstance(exc, RecursionError) or "recursion" in str(exc):
        return "the reply is nested too deep to encode (depth beyond the encoder's limit)"
    return f"the reply cannot be encoded: {bounded_text(str(exc), DESCRIBE_LIMIT)}"


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
        """Resolve the future with a copy of the result as a peer would receive it (a late
        answer is dropped); one that cannot be encoded fails it as an ``EncodeError``."""
        if self.future.done():
            return
        try:
            self.future.set_result(copy_reply(result))
        except EncodeError as exc:
            logger.error("reply to a local ask cannot be sent: %s", exc)
            self.future.set_exception(RemoteError("EncodeError", str(exc)))

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
        """Send the result; one that cannot be encoded or sent (too large, nested too deep) is
        answered as an ``EncodeError`` `RemoteError` naming the size or the depth."""
        try:
            packet = reply_packet(result, self.origin, self.correlation_id)
            sent = self.send(self.node_id, packet)
        except (
            EncodeError,
            TransportError,
            TypeError,
            ValueError,
            OverflowError,
            RecursionError,
        ) as exc:
            logger.warning(
                "reply %d to %s not sent: %s",
                self.correlation_id,
                self.node_id,
                bounded_text(str(exc), DESCRIBE_LIMIT),
            )
            self.fail("EncodeError", unsendable_reason(exc))
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
        except (TransportError, TypeError, ValueError, OverflowError) as exc:
            logger.error(
                "answer %d to %s could not be sent: %s",
                self.correlation_id,
                self.node_id,
                bounded_text(str(exc), DESCRIBE_LIMIT),
            )
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
