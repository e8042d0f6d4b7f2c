"""Exceptions raised by the actor layer.

Every exception the `actors` package raises through its API derives from `ActorError`, so one
``except ActorError`` catches them all. Exceptions from other libraries (pydantic's
``ValidationError``, the transport's ``TransportError``, msgpack's errors) are translated at the
boundary and chained with ``raise ... from exc``; the original stays available as
``__cause__``.

The tree, grouped by cause: you misused the API (definition and usage errors, which are also the
builtin `TypeError` / `ValueError` / `KeyError` they replace), you closed it
(`SystemClosedError`), or something beyond the caller failed (the node, the peer, the handler).

```text
ActorError
├── ActorUsageError             a wrong argument type or value, unknown event, bad node options
│                               (also ValueError and TypeError)
├── MessageDefinitionError      a Message class cannot be defined (also a TypeError)
│   └── DuplicateTagError       two Message classes claim the same wire tag
├── HandlerDefinitionError      an @handler method has no usable message annotation (TypeError)
├── SpawnError                  spawn() refused: duplicate name, bad factory or policy
├── ActorNotFoundError          stop() named an actor that is not running here (also a KeyError)
├── ContextError                Actor.context used before the actor was spawned
├── EncodeError                 a message cannot be turned into msgpack-native values
├── SystemClosedError           the ActorSystem is closed or closing (tell, ask, spawn, connect)
├── NodeError                   the underlying transport node failed (start, connect, send)
└── AskError                    an ask() did not produce a reply
    ├── RemoteError             the target's handler raised; carries type name and message
    ├── DeadLetterError         the message could not be delivered or handled
    ├── NodeDownError           the target node is unreachable or dropped mid-flight
    └── AskTimeoutError         no reply within the timeout (also asyncio.TimeoutError)
```
"""

from __future__ import annotations

__all__ = [
    "ActorError",
    "ActorNotFoundError",
    "ActorUsageError",
    "AskError",
    "AskTimeoutError",
    "ContextError",
    "DeadLetterError",
    "DuplicateTagError",
    "EncodeError",
    "HandlerDefinitionError",
    "MessageDefinitionError",
    "NodeDownError",
    "NodeError",
    "RemoteError",
    "SpawnError",
    "SystemClosedError",
]


class ActorError(Exception):
    """Root of every exception raised by the `actors` package."""


class ActorUsageError(ActorError, ValueError, TypeError):
    """The caller misused the API: a wrong argument type or value, an unknown event name, bad
    node options.

    It is also a `ValueError` and a `TypeError`, the exceptions such misuse raised before it
    existed, so existing ``except ValueError`` / ``except TypeError`` clauses still catch it.
    """


class MessageDefinitionError(ActorError, TypeError):
    """A `Message` subclass cannot be defined as written."""


class DuplicateTagError(MessageDefinitionError):
    """Two `Message` classes claim the same wire tag.

    Attributes:
        tag: The contested wire tag.
    """

    def __init__(self, message: str, tag: str) -> None:
        super().__init__(message)
        self.tag = tag


class HandlerDefinitionError(ActorError, TypeError):
    """An ``@handler`` method does not name the `Message` type it handles."""


class EncodeError(ActorError):
    """A message holds a value that cannot be sent as msgpack-native data."""


class SpawnError(ActorError):
    """`ActorSystem.spawn` refused to start an actor (duplicate name, bad factory or policy)."""


class ActorNotFoundError(ActorError, KeyError):
    """No actor with that name runs on this system."""

    def __str__(self) -> str:
        # KeyError.__str__ would wrap the message in quotes.
        return str(self.args[0]) if self.args else ""


class ContextError(ActorError):
    """`Actor.context` was read before the actor was spawned."""


class NodeError(ActorError):
    """The transport node under the system failed (listening, connecting)."""


class SystemClosedError(ActorError):
    """The `ActorSystem` is closed or closing; pending asks fail with this error."""


class AskError(ActorError):
    """An `ask` ended without a reply."""


class RemoteError(AskError):
    """The target's handler raised an exception while answering an `ask`.

    Attributes:
        type_name: The name of the exception type raised on the target (e.g. ``"ValueError"``).
        remote_message: ``str()`` of that exception.
    """

    def __init__(self, type_name: str, remote_message: str) -> None:
        super().__init__(f"{type_name}: {remote_message}")
        self.type_name = type_name
        self.remote_message = remote_message


class DeadLetterError(AskError):
    """The asked message became a dead letter: nobody could handle it.

    Attributes:
        reason: Why it was undeliverable: ``"unknown_actor"``, ``"unknown_tag"``,
            ``"invalid_payload"``, ``"payload_too_large"``, ``"malformed_envelope"``,
            ``"no_handler"``, ``"actor_stopped"`` or ``"invalid_reply"``.
        detail: A human-readable explanation.
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"dead letter ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


class NodeDownError(AskError):
    """The target node is not reachable, or dropped while a reply was pending.

    Attributes:
        node_id: The id of the node that is down.
    """

    def __init__(self, message: str, node_id: str) -> None:
        super().__init__(message)
        self.node_id = node_id


class AskTimeoutError(AskError, TimeoutError):
    """No reply arrived within the ask's timeout.

    It is also a `TimeoutError` (which `asyncio.TimeoutError` aliases), so
    ``except asyncio.TimeoutError`` catches it.
    """
