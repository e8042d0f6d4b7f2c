"""Bounds on what a peer's values may cost: how they are described, how big they may be.

Anything that arrives from the wire may be huge (a multi-MiB string, a map of 500,000 keys) or
deep (nested ~1,000 levels, where ``repr`` raises `RecursionError`). Two helpers keep its cost
to the receiving node bounded:

* `describe` renders a value for a log line or an error text: its type, its size and at most
  ``limit`` characters of preview, never the ``repr`` of the whole value, whatever its depth;
* `count_items` counts the entries of a payload's containers and stops as soon as the count
  passes a budget, so the receive path rejects an oversized payload before validating it, at a
  cost bounded by the budget rather than by the payload.
"""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

__all__ = [
    "DEFAULT_MAX_PAYLOAD_ITEMS",
    "DESCRIBE_LIMIT",
    "MAX_ERROR_TEXT",
    "bounded_text",
    "count_items",
    "describe",
    "scalar_classes",
    "within_budget",
]

DESCRIBE_LIMIT = 200
"""Characters of preview `describe` shows by default."""

DEFAULT_MAX_PAYLOAD_ITEMS = 100_000
"""Default budget of container entries in one received payload (`count_items`)."""

MAX_ERROR_TEXT = 1000
"""The most characters of an error text sent in an answer (`bounded_text`)."""

# Containers deeper than this are previewed as "..." (the size is still shown at the top).
_PREVIEW_DEPTH = 6
# Ints wider than this are described by their bit length: repr() of a huge int is slow and,
# beyond sys.get_int_max_str_digits(), raises ValueError.
_INT_BITS = 256


def describe(value: Any, limit: int = DESCRIBE_LIMIT) -> str:
    """A bounded description of ``value`` for logs and error texts.

    Short scalars read as their ``repr`` (``'sink'``, ``42``, ``None``). A long ``str`` or
    ``bytes``, and any container, read as their type and size followed by a preview cut at
    ``limit`` characters; the preview never descends more than a few levels, so a deeply
    nested value costs no more than a shallow one.

    Args:
        value: Anything, typically a field of a received envelope.
        limit: The most characters of preview to show.

    Returns:
        A string of at most about ``limit`` + 60 characters.
    """
    kind = type(value)
    if kind is str or kind is bytes or kind is bytearray:
        if len(value) <= limit:
            return repr(value)
        unit = "chars" if kind is str else "bytes"
        return f"{kind.__name__} of {len(value)} {unit}: {_cut(repr(value[:limit]), limit)}..."
    if kind is list or kind is tuple or kind is dict or kind is set or kind is frozenset:
        parts: list[str] = []
        complete = _preview(value, parts, [limit], 0)
        preview = "".join(parts)
        if complete:
            return preview
        size = len(value)
        unit = "entries" if kind is dict else "items"
        return f"{kind.__name__} of {size} {unit}: {preview}..."
    parts = []
    _preview(value, parts, [limit], 0)
    return "".join(parts)


def count_items(value: Any, budget: int) -> int:
    """Count the entries of every list and map inside ``value``, stopping past ``budget``.

    A str or bytes is one scalar whatever its length (its cost is a copy, not a walk). The walk
    is iterative, so nesting depth costs no stack, and it stops as soon as the count exceeds
    ``budget``: the work is bounded by the budget, not by the value.

    Args:
        value: A decoded payload (msgpack-native values).
        budget: The most entries accepted.

    Returns:
        The number of entries, or a number above ``budget`` as soon as it is exceeded.
    """
    kind = type(value)
    if kind is not dict and kind is not list:
        return 0
    total = 0
    stack = [value]
    pop = stack.pop
    push = stack.append
    while stack:
        container = pop()
        total += len(container)
        if total > budget:
            return total
        items = container.values() if type(container) is dict else container
        for item in items:
            kind = type(item)
            if kind is dict or kind is list:
                push(item)
    return total


def bounded_text(text: str, limit: int = MAX_ERROR_TEXT) -> str:
    """``text`` itself when it has at most ``limit`` characters, else its start, cut, with the
    full length said (``"... [3145728 chars]"``).

    Args:
        text: An error text, a reason, a name.
        limit: The most characters kept.

    Returns:
        A string of at most about ``limit`` + 30 characters.
    """
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text)} chars]"


def within_budget(cls: type, payload: Any, budget: int | None) -> bool:
    """Whether a received payload for message class ``cls`` is small enough to validate.

    A payload for a class whose fields are all scalars (str, int, float, bool, bytes, None, and
    optional or literal forms of them) costs its validator work in proportion to its number of
    keys, since a container where a scalar is due fails at once: checking ``len`` is enough.
    Any other payload is walked by `count_items`, at a cost bounded by the budget.

    Args:
        cls: The `Message` subclass (or any pydantic model) the payload is for.
        payload: The payload as decoded from the wire.
        budget: The most container entries accepted; None accepts any payload.

    Returns:
        True when validation may go ahead.
    """
    if budget is None:
        return True
    if type(payload) is dict:
        if len(payload) > budget:
            return False
        if cls in scalar_classes:
            return True
        if cls not in _walked_classes:
            if _scalar_fields_only(cls):
                scalar_classes.add(cls)
                return True
            _walked_classes.add(cls)
    return count_items(payload, budget) <= budget


_SCALARS: frozenset[Any] = frozenset({str, int, float, bool, bytes, type(None), None})

scalar_classes: set[type] = set()
"""Classes seen by `within_budget` whose fields are all scalars (a ``len`` check suffices)."""
_walked_classes: set[type] = set()


def _scalar_fields_only(cls: type) -> bool:
    fields = getattr(cls, "model_fields", None)
    decorators = getattr(cls, "__pydantic_decorators__", None)
    if not isinstance(fields, dict) or decorators is None:
        return False
    # A validator of the user's may turn a container into a scalar: then walk the payload.
    if decorators.field_validators or decorators.model_validators or decorators.validators:
        return False
    return all(_is_scalar(field.annotation) for field in fields.values())


def _is_scalar(annotation: Any) -> bool:
    if annotation in _SCALARS:
        return True
    origin = typing.get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return all(_is_scalar(arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        return all(type(arg) in (str, int, bool, bytes) for arg in typing.get_args(annotation))
    return False


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit]


def _preview(value: Any, parts: list[str], budget: list[int], depth: int) -> bool:
    """Append a bounded rendering of ``value`` to ``parts``; False once the budget ran out."""
    if budget[0] <= 0:
        return False
    kind = type(value)
    if kind is list or kind is tuple or kind is set or kind is frozenset or kind is dict:
        opening, closing = ("{", "}") if kind is dict else ("(", ")") if kind is tuple else "[]"
        if kind is set or kind is frozenset:
            opening, closing = "{", "}"
        if depth >= _PREVIEW_DEPTH:
            return _emit(parts, budget, f"{opening}...{closing}" if value else opening + closing)
        if not _emit(parts, budget, opening):
            return False
        items = value.items() if kind is dict else value
        for index, item in enumerate(items):
            if index and not _emit(parts, budget, ", "):
                return False
            if kind is dict:
                key, entry = item
                if not _preview(key, parts, budget, depth + 1) or not _emit(parts, budget, ": "):
                    return False
                item = entry
            if not _preview(item, parts, budget, depth + 1):
                return False
        return _emit(parts, budget, closing)
    if kind is str or kind is bytes or kind is bytearray:
        if len(value) > budget[0]:
            _emit(parts, budget, repr(value[: budget[0]]))
            return False
        return _emit(parts, budget, repr(value))
    if kind is int and value.bit_length() > _INT_BITS:
        return _emit(parts, budget, f"<int of {value.bit_length()} bits>")
    if value is None or kind is bool or kind is int or kind is float:
        return _emit(parts, budget, repr(value))
    # Anything else (a decoded ext type, an object): its type only; its repr is not ours.
    return _emit(parts, budget, f"<{kind.__name__}>")


def _emit(parts: list[str], budget: list[int], text: str) -> bool:
    if len(text) > budget[0]:
        parts.append(text[: budget[0]])
        budget[0] = 0
        return False
    parts.append(text)
    budget[0] -= len(text)
    return True
