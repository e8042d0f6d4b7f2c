"""`Message`: the typed, immutable payload actors exchange, and its wire encoding.

A message travels as ``(tag, payload)``: the tag names its class in a process-wide registry and
the payload holds the field values as msgpack-native data (``str``, ``int``, ``float``, ``bool``,
``None``, ``bytes``, lists and string-keyed maps). The receiving side validates the payload once
with the class's pydantic validator.

Encoding picks, once per class, the cheapest correct strategy:

* *flat*: every field is a plain msgpack-native type and no serializer hooks are involved, so the
  instance's ``__dict__`` already is the payload (no copy; messages are frozen);
* *native*: fields nest models or containers of native types; pydantic-core's serializer in
  python mode yields the payload directly;
* *converted*: some field holds an ``Enum``, ``datetime``, ``UUID``, ``Decimal``, ``Any`` or a
  custom serializer; the python-mode dump is walked once and non-native values become their
  lossless text or number forms, which pydantic's lax validation turns back into the declared
  types (an aware ``datetime`` keeps its offset, a ``Decimal`` keeps its digits).

``model_dump(mode="json")`` is not used because it would turn ``bytes`` into text.
"""

from __future__ import annotations

import datetime as _dt
import enum
import pathlib
import sys
import types
import typing
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict

from actors.errors import DuplicateTagError, EncodeError, MessageDefinitionError

__all__ = ["Message", "encode_message", "message_class", "message_tag"]

_REGISTRY: dict[str, type[Message]] = {}
_ENCODERS: dict[type[Message], Callable[[Message], Any]] = {}


class Message(BaseModel):
    """Base class of every message that actors send each other.

    A message is a frozen pydantic model that forbids unknown fields. Each subclass gets a wire
    tag, its class name unless given explicitly; tags are registered process-wide and a tag
    claimed twice raises `DuplicateTagError` when the second class is defined.

    Example:
        ```python
        class Count(Message):
            total: int

        class Ping(Message, tag="ping"):
            sent_at: datetime
        ```

    Field types that survive the wire: ``str``, ``int``, ``float``, ``bool``, ``None``,
    ``bytes``, ``list``, ``tuple``, ``dict``, nested models, ``Enum``, ``datetime`` (an aware
    one stays aware), ``date``, ``time``, ``timedelta``, ``UUID``, ``Decimal``, ``Optional``
    fields and defaults.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    __message_tag__: ClassVar[str]
    """The wire tag of this class (read it with `message_tag`)."""

    def __init_subclass__(cls, *, tag: str | None = None, **kwargs: Any) -> None:
        """Register the subclass under its wire tag.

        Args:
            tag: The wire tag; defaults to the class name.
            **kwargs: Passed on to pydantic.

        Raises:
            MessageDefinitionError: ``tag`` is not a non-empty string.
            DuplicateTagError: Another class already uses this tag.
        """
        super().__init_subclass__(**kwargs)
        wire_tag = cls.__name__ if tag is None else tag
        if not isinstance(wire_tag, str) or not wire_tag:
            raise MessageDefinitionError(f"message tag must be a non-empty str, not {tag!r}")
        existing = _REGISTRY.get(wire_tag)
        # Re-running the same class statement (a reloaded module, a notebook cell) replaces
        # the entry; a different class claiming the tag is a real conflict.
        if existing is not None and (
            existing.__module__ != cls.__module__ or existing.__qualname__ != cls.__qualname__
        ):
            raise DuplicateTagError(
                f"message tag {wire_tag!r} of {cls.__module__}.{cls.__qualname__} is already "
                f"used by {existing.__module__}.{existing.__qualname__}; pass tag=... to one",
                wire_tag,
            )
        cls.__message_tag__ = wire_tag
        _REGISTRY[wire_tag] = cls
        if existing is not None:
            _ENCODERS.pop(existing, None)


def message_tag(message_type: type[Message] | Message) -> str:
    """Return the wire tag of a message class or instance.

    Args:
        message_type: A `Message` subclass or an instance of one.

    Returns:
        The tag the class was registered under.
    """
    return message_type.__message_tag__


def message_class(tag: str) -> type[Message] | None:
    """Look up the message class registered under a wire tag.

    Args:
        tag: A wire tag.

    Returns:
        The class, or None when no class uses that tag in this process.
    """
    return _REGISTRY.get(tag)


def encode_message(message: Message) -> tuple[str, Any]:
    """Turn a message into its wire form.

    Args:
        message: The message to encode.

    Returns:
        ``(tag, payload)`` where payload holds only msgpack-native values. Treat it as
        read-only: for flat messages it is the instance's own field dict.

    Raises:
        EncodeError: A field holds a value with no msgpack-native form, or one nested too deep
            to walk (every encoding failure, whatever raised it, surfaces as this).
    """
    cls = type(message)
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        encoder = _ENCODERS[cls] = _build_encoder(cls)
    try:
        return cls.__message_tag__, encoder(message)
    except RecursionError as exc:
        raise EncodeError(
            f"cannot encode {cls.__qualname__}: a value is nested too deep "
            f"(depth beyond about {sys.getrecursionlimit() // 2} levels)"
        ) from exc
    except (TypeError, ValueError, OverflowError) as exc:
        # pydantic's serializer (PydanticSerializationError is a ValueError) and int/float
        # conversions report through these; the caller sees one error class.
        raise EncodeError(f"cannot encode {cls.__qualname__}: {_short(str(exc))}") from exc


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else f"{text[:limit]}... [{len(text)} chars]"


# --- choosing an encoder per class -------------------------------------------------------------

_NATIVE_SCALARS: frozenset[Any] = frozenset({str, int, float, bool, bytes, type(None), None})


def _build_encoder(cls: type[Message]) -> Callable[[Message], Any]:
    serializer = cls.__pydantic_serializer__
    if _uses_plain_serialization(cls):
        kinds = [_annotation_kind(f.annotation) for f in cls.model_fields.values()]
        if all(kind == "flat" for kind in kinds):
            return _flat_payload
        if all(kind in ("flat", "native") for kind in kinds):

            def native_payload(message: Message) -> Any:
                return serializer.to_python(message, by_alias=True)

            return native_payload

    def converted_payload(message: Message) -> Any:
        return _to_wire(serializer.to_python(message, by_alias=True))

    return converted_payload


def _flat_payload(message: Message) -> Any:
    return message.__dict__


def _uses_plain_serialization(model: type[BaseModel]) -> bool:
    """True when dumping ``model`` involves no serializer hooks, aliases or exclusions."""
    decorators = model.__pydantic_decorators__
    if decorators.field_serializers or decorators.model_serializers:
        return False
    if model.model_computed_fields:
        return False
    return all(
        field.alias is None and field.serialization_alias is None and not field.exclude
        for field in model.model_fields.values()
    )


def _annotation_kind(annotation: Any) -> Literal["flat", "native", "convert"]:
    """Classify a field annotation: its values are "flat" msgpack-native data, "native" after a
    python-mode dump (nested models), or need "convert"-ing."""
    if annotation in _NATIVE_SCALARS:
        return "flat"
    if getattr(annotation, "__wire_form__", None) is not None:
        return "native"  # ActorRef: its serializer yields [node_id, name]
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is Union or origin is types.UnionType:
        kinds = {_annotation_kind(arg) for arg in args}
    elif origin in (list, tuple, typing.List, typing.Tuple):  # noqa: UP006
        kinds = {_annotation_kind(arg) for arg in args if arg is not Ellipsis}
    elif origin in (dict, typing.Dict):  # noqa: UP006
        if len(args) != 2 or args[0] is not str:
            return "convert"
        kinds = {_annotation_kind(args[1])}
    elif origin is Literal:
        if all(type(arg) in (str, int, bool) for arg in args):
            return "flat"
        return "convert"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if not _uses_plain_serialization(annotation):
            return "convert"
        inner = {_annotation_kind(f.annotation) for f in annotation.model_fields.values()}
        return "convert" if "convert" in inner else "native"
    else:
        return "convert"
    if not args or "convert" in kinds:
        return "convert"
    return "native" if "native" in kinds else "flat"


def _to_wire(value: Any) -> Any:
    """Convert a python-mode dump into msgpack-native values, losslessly."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or kind is bytes:
        return value
    if value is None:
        return None
    if kind is dict:
        return {_wire_key(key): _to_wire(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [_to_wire(item) for item in value]
    if isinstance(value, enum.Enum):
        return _to_wire(value.value)
    if isinstance(value, _dt.date | _dt.time):
        return value.isoformat()
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, uuid.UUID | Decimal | pathlib.PurePath):
        return str(value)
    if isinstance(value, set | frozenset):
        return [_to_wire(item) for item in value]
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    if isinstance(value, BaseModel):
        return _to_wire(value.model_dump(by_alias=True))
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {_wire_key(key): _to_wire(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_to_wire(item) for item in value]
    raise EncodeError(
        f"cannot send a value of type {kind.__qualname__} in a message: {_short(repr(value))}"
    )


def _wire_key(key: Any) -> str | bytes:
    # The receiving unpacker accepts only str and bytes map keys; pydantic's lax validation
    # turns "3" back into 3 for a dict[int, ...] field.
    if type(key) is str or type(key) is bytes:
        return key
    converted = _to_wire(key)
    if isinstance(converted, str | bytes):
        return converted
    return str(converted)
