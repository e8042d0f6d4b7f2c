"""Replies of any serializable type: the one encoder and decoder for an ask's answer.

A handler's return value travels in the reply envelope's ``tag`` and ``payload`` fields:

```text
tag          payload
str          a Message's payload; the tag names its class (validated into it on arrival)
None         a plain value in msgpack-native form (None, bool, int, float, str, bytes,
             lists and str/bytes-keyed maps), sent as it is
1            the same, "pair-coded": every map is sent as {"p": [[key, value], ...]}, so that
             keys of any type (1, 2.5, None, (1, 2)) come back as they were sent
```

The pair-coded form is chosen only when the value holds a map with a key that is not ``str`` or
``bytes`` (the receiving unpacker accepts only those as msgpack map keys). A map in a pair-coded
payload is always a wrapper, so the form is unambiguous.

Values that are neither Messages nor plain are turned into their msgpack-native form on the way
out: pydantic models and dataclasses become maps of their fields, ``datetime`` / ``date`` /
``time`` their ISO text, ``timedelta`` seconds, ``UUID`` and ``Decimal`` their text, an ``Enum``
its value, a set a list, an `ActorRef` ``[node_id, name]``. ``ask(..., reply_type=T)`` validates
that form back into ``T`` on the asking side (`validate_reply`).

This module is pure (no asyncio); the system calls `encode_reply` where it answers an ask and
`decode_reply` where the answer arrives, local or remote alike.
"""

from __future__ import annotations

import contextvars
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError, SchemaSerializer, core_schema

from actors._message import Message, _to_wire, encode_message, message_class
from actors.errors import AskError, DeadLetterError, EncodeError

if TYPE_CHECKING:
    from actors._system import ActorSystem

__all__ = [
    "PAIR_CODED",
    "decode_reply",
    "encode_reply",
    "receiving_system",
    "validate_reply",
]

PAIR_CODED = 1
"""The reply tag of a pair-coded plain value (see the module docstring)."""

_PAIRS = "p"

# The system whose receive path is validating a payload right now, so that an `ActorRef` in a
# message binds to the system that received it (see `ActorRef.__get_pydantic_core_schema__`).
receiving_system: contextvars.ContextVar[ActorSystem | None] = contextvars.ContextVar(
    "masterless_receiving_system", default=None
)

# Serializes values of any type pydantic knows (dataclasses, models, ...) in python mode; the
# result is then walked by _to_wire like a Message payload.
_ANY_SERIALIZER = SchemaSerializer(core_schema.any_schema())
_NATIVE_SCALARS = (str, int, float, bool, bytes)
_MSGPACK_INT_MIN = -(2**63)
_MSGPACK_INT_MAX = 2**64 - 1
_ADAPTERS: dict[Any, TypeAdapter[Any]] = {}
_ADAPTER_CACHE_LIMIT = 256


def encode_reply(value: Any) -> tuple[str | int | None, Any]:
    """Turn a handler's return value into the reply envelope's ``(tag, payload)``.

    Args:
        value: Whatever the handler returned.

    Returns:
        ``(message tag, payload)`` for a `Message`; ``(None, native value)`` for anything
        else, or ``(PAIR_CODED, pair-coded value)`` when a map key is not str or bytes.

    Raises:
        EncodeError: The value (or something inside it) has no msgpack-native form.
    """
    if value is None:
        return None, None
    if isinstance(value, Message):
        return encode_message(value)
    native = _native(value)
    if _has_foreign_keys(native):
        return PAIR_CODED, _pair_code(native)
    return None, native


def decode_reply(tag: Any, payload: Any) -> Any:
    """Turn a reply envelope's ``(tag, payload)`` back into a value (see `encode_reply`).

    Args:
        tag: The envelope's tag field.
        payload: The envelope's payload field.

    Returns:
        The `Message` (validated into its class), or the plain value.

    Raises:
        DeadLetterError: ``invalid_reply``: an unknown message tag or a payload that does not
            validate as its class, or a malformed pair-coded value.
    """
    if tag is None:
        return payload
    if type(tag) is str:
        cls = message_class(tag)
        if cls is None:
            raise DeadLetterError("invalid_reply", f"no Message class with tag {tag!r}")
        try:
            return cls.__pydantic_validator__.validate_python(payload)
        except ValidationError as exc:
            raise DeadLetterError(
                "invalid_reply",
                f"reply does not validate as {cls.__qualname__}: {exc.errors()[0]['msg']}",
            ) from exc
    if tag == PAIR_CODED and type(tag) is int:
        try:
            return _pair_decode(payload)
        except (TypeError, ValueError) as exc:
            raise DeadLetterError("invalid_reply", f"malformed pair-coded reply: {exc}") from exc
    raise DeadLetterError("invalid_reply", f"unknown reply form {tag!r:.80}")


def copy_reply(value: Any) -> Any:
    """What a local asker receives: the value as a remote asker would see it.

    A `Message` (frozen) and None pass as they are; anything else goes through the codec, so
    the asker never shares a mutable object with the actor, and a tuple comes back as a list
    as it would from a peer.

    Args:
        value: The handler's return value.

    Returns:
        The decoded copy.

    Raises:
        EncodeError: The value has no msgpack-native form.
    """
    if value is None or isinstance(value, Message):
        return value
    return decode_reply(*encode_reply(value))


def validate_reply(value: Any, reply_type: Any, system: ActorSystem | None = None) -> Any:
    """Validate a decoded reply into ``reply_type`` with pydantic (lax mode).

    Args:
        value: The decoded reply.
        reply_type: Any type pydantic validates into (``int``, ``list[Point]``, a model,
            ``datetime``, `ActorRef`, ...).
        system: The asking system; refs in the reply bind to it.

    Returns:
        The validated value.

    Raises:
        AskError: The reply does not validate as ``reply_type`` (chained from pydantic's
            ``ValidationError``), or pydantic cannot build a validator for ``reply_type``.
    """
    adapter = _adapter(reply_type)
    token = receiving_system.set(system) if system is not None else None
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise AskError(
            f"reply {_short(value)} does not validate as {_type_name(reply_type)}: "
            f"{first['msg']}{f' (at {where})' if where else ''}"
        ) from exc
    finally:
        if token is not None:
            receiving_system.reset(token)


def _adapter(reply_type: Any) -> TypeAdapter[Any]:
    try:
        return _ADAPTERS[reply_type]
    except KeyError:
        pass
    except TypeError:  # an unhashable type form: build an adapter each time
        return _new_adapter(reply_type)
    adapter = _new_adapter(reply_type)
    if len(_ADAPTERS) >= _ADAPTER_CACHE_LIMIT:
        _ADAPTERS.pop(next(iter(_ADAPTERS)))
    _ADAPTERS[reply_type] = adapter
    return adapter


def _new_adapter(reply_type: Any) -> TypeAdapter[Any]:
    try:
        return TypeAdapter(reply_type)
    except Exception as exc:  # pydantic raises several kinds for a type it cannot handle
        raise AskError(f"reply_type {reply_type!r} is not a type pydantic can validate") from exc


def _type_name(reply_type: Any) -> str:
    return getattr(reply_type, "__qualname__", None) or repr(reply_type)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# --- encoding ----------------------------------------------------------------------------------


def _native(value: Any) -> Any:
    """The msgpack-native form of any pydantic-serializable value (tuples become lists)."""
    kind = type(value)
    if kind is int:
        if not _MSGPACK_INT_MIN <= value <= _MSGPACK_INT_MAX:
            raise EncodeError(f"cannot send the int {value} as a reply: msgpack holds 64 bits")
        return value
    if kind in _NATIVE_SCALARS or value is None:
        return value
    if kind is list or kind is tuple:
        return [_native(item) for item in value]
    if kind is dict:
        return {_native_key(key): _native(item) for key, item in value.items()}
    if isinstance(value, Message):
        return _native(encode_message(value)[1])
    if isinstance(value, dict):
        return {_native_key(key): _native(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_native(item) for item in value]
    wire_form = getattr(kind, "__wire_form__", None)
    if wire_form is not None:  # ActorRef
        return wire_form(value)
    try:
        return _to_wire(value)
    except EncodeError:
        pass
    try:
        dumped = _ANY_SERIALIZER.to_python(value)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise EncodeError(
            f"cannot send a value of type {kind.__qualname__} as a reply: {exc}"
        ) from exc
    if type(dumped) is kind:
        raise EncodeError(
            f"cannot send a value of type {kind.__qualname__} as a reply: it has no "
            "msgpack-native form (return a Message, a plain value or a pydantic model)"
        )
    return _native(dumped)


def _native_key(key: Any) -> Any:
    kind = type(key)
    if kind is str or kind is bytes or kind is int or kind is float or kind is bool or key is None:
        return key
    if kind is tuple:
        return tuple(_native_key(item) for item in key)
    if isinstance(key, frozenset):
        return tuple(_native_key(item) for item in key)
    native = _native(key)
    if isinstance(native, list):
        return tuple(native)
    return native


def _has_foreign_keys(value: Any) -> bool:
    kind = type(value)
    if kind is list:
        return any(_has_foreign_keys(item) for item in value)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str and type(key) is not bytes:
                return True
            if _has_foreign_keys(item):
                return True
    return False


def _pair_code(value: Any) -> Any:
    kind = type(value)
    if kind is list or kind is tuple:
        return [_pair_code(item) for item in value]
    if kind is dict:
        return {_PAIRS: [[_pair_code(key), _pair_code(item)] for key, item in value.items()]}
    return value


def _pair_decode(value: Any) -> Any:
    kind = type(value)
    if kind is list:
        return [_pair_decode(item) for item in value]
    if kind is dict:
        pairs = value[_PAIRS]
        if len(value) != 1 or type(pairs) is not list:
            raise ValueError("a pair-coded map must be {'p': [[key, value], ...]}")
        decoded: dict[Any, Any] = {}
        for key, item in pairs:
            decoded[_hashable(_pair_decode(key))] = _pair_decode(item)
        return decoded
    return value


def _hashable(key: Any) -> Any:
    # A tuple key travels as a list; give it back as the tuple it was.
    if type(key) is list:
        return tuple(_hashable(item) for item in key)
    return key
