"""Message definition rules and the wire round trip of every supported field type."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

import msgpack
import pytest
from actor_helpers import SystemFactory, connect, within
from pydantic import BaseModel, ValidationError

from actors import (
    Actor,
    DuplicateTagError,
    EncodeError,
    Message,
    MessageDefinitionError,
    encode_message,
    handler,
    message_class,
    message_tag,
)


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Point(BaseModel):
    x: int
    y: int


class Inner(Message, tag="wire.Inner"):
    name: str
    weight: float


class WStr(Message, tag="wire.str"):
    value: str


class WInt(Message, tag="wire.int"):
    value: int


class WFloat(Message, tag="wire.float"):
    value: float


class WBool(Message, tag="wire.bool"):
    value: bool


class WNone(Message, tag="wire.none"):
    value: None


class WBytes(Message, tag="wire.bytes"):
    value: bytes


class WList(Message, tag="wire.list"):
    value: list[int]


class WDict(Message, tag="wire.dict"):
    value: dict[str, list[str]]


class WIntKeys(Message, tag="wire.int_keys"):
    value: dict[int, str]


class WNested(Message, tag="wire.nested"):
    inner: Inner
    items: list[Inner]
    point: Point


class WEnum(Message, tag="wire.enum"):
    colour: Colour
    level: Level


class WDatetime(Message, tag="wire.datetime"):
    value: dt.datetime


class WDates(Message, tag="wire.dates"):
    day: dt.date
    clock: dt.time
    span: dt.timedelta


class WUuid(Message, tag="wire.uuid"):
    value: uuid.UUID


class WDecimal(Message, tag="wire.decimal"):
    value: Decimal


class WOptional(Message, tag="wire.optional"):
    value: int | None = None
    label: str | None = None


class WDefaults(Message, tag="wire.defaults"):
    count: int = 3
    tags: list[str] = ["a", "b"]
    colour: Colour = Colour.GREEN


class WAny(Message, tag="wire.any"):
    value: Any


class WTuple(Message, tag="wire.tuple"):
    value: tuple[int, str, bytes]


ROUND_TRIP_CASES: dict[str, Message] = {
    "str": WStr(value="héllo ✓ \x00 wörld"),
    "int": WInt(value=-(2**63)),
    "int_big": WInt(value=2**64 - 1),
    "float": WFloat(value=-1.5e-300),
    "bool": WBool(value=True),
    "none": WNone(value=None),
    "bytes": WBytes(value=bytes(range(256))),
    "list": WList(value=[3, 1, 2]),
    "dict": WDict(value={"a": ["x"], "b": []}),
    "dict_int_keys": WIntKeys(value={1: "one", -2: "minus two"}),
    "nested_models": WNested(
        inner=Inner(name="i", weight=0.25),
        items=[Inner(name="a", weight=1.0), Inner(name="b", weight=2.0)],
        point=Point(x=1, y=-1),
    ),
    "enum": WEnum(colour=Colour.RED, level=Level.HIGH),
    "datetime_aware": WDatetime(
        value=dt.datetime(
            2024, 2, 29, 23, 59, 58, 123456, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30))
        )
    ),
    "datetime_utc": WDatetime(value=dt.datetime(2030, 1, 1, tzinfo=dt.UTC)),
    "datetime_naive": WDatetime(value=dt.datetime(2001, 9, 9, 1, 46, 40)),
    "date_time_timedelta": WDates(
        day=dt.date(1999, 12, 31),
        clock=dt.time(12, 30, 15, 5),
        span=dt.timedelta(days=2, microseconds=7),
    ),
    "uuid": WUuid(value=uuid.UUID("12345678-1234-5678-1234-567812345678")),
    "decimal": WDecimal(value=Decimal("3.14159265358979323846264338327950288419")),
    "optional_set": WOptional(value=5, label="five"),
    "optional_unset": WOptional(),
    "defaults": WDefaults(),
    "defaults_overridden": WDefaults(count=0, tags=[], colour=Colour.RED),
    "any_nested": WAny(value={"k": [1, "two", b"3", None, {"deep": True}]}),
    "tuple": WTuple(value=(1, "x", b"y")),
}


def assert_msgpack_native(value: Any) -> None:
    """The payload must be made of msgpack's own types only (no default hook needed)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) in (str, bytes), f"map key {key!r} is not str/bytes"
            assert_msgpack_native(item)
    elif isinstance(value, list | tuple):
        for item in value:
            assert_msgpack_native(item)
    else:
        assert value is None or type(value) in (str, int, float, bool, bytes), repr(value)


def wire_copy(payload: Any) -> Any:
    """What the receiving node sees: packed and unpacked like the transport does."""
    packed = msgpack.packb(payload, use_bin_type=True)
    return msgpack.unpackb(packed, raw=False, strict_map_key=True)


def assert_same(received: Message, original: Message) -> None:
    assert type(received) is type(original)
    assert received == original
    for name in type(original).model_fields:
        sent_value, got_value = getattr(original, name), getattr(received, name)
        assert type(got_value) is type(sent_value), name
        if isinstance(sent_value, dt.datetime):
            assert got_value.utcoffset() == sent_value.utcoffset()


@pytest.mark.parametrize("case", ROUND_TRIP_CASES, ids=str)
def test_encoding_round_trip(case: str) -> None:
    original = ROUND_TRIP_CASES[case]
    tag, payload = encode_message(original)
    assert tag == message_tag(original)
    assert_msgpack_native(payload)
    cls = message_class(tag)
    assert cls is type(original)
    received = cls.model_validate(wire_copy(payload))
    assert_same(received, original)


class Echo(Actor):
    """Answers every message with itself (a handler for the base class catches all)."""

    @handler
    def echo(self, msg: Message) -> Message:
        return msg


@pytest.mark.parametrize("case", ROUND_TRIP_CASES, ids=str)
async def test_round_trip_over_the_network(case: str, make_system: SystemFactory) -> None:
    a = await make_system("wire-a")
    b = await make_system("wire-b")
    await connect(a, b)
    b.spawn("echo", Echo())
    original = ROUND_TRIP_CASES[case]
    reply = await within(a.ask("wire-b", "echo", original))
    assert reply is not None
    assert_same(reply, original)


def test_tag_defaults_to_class_name_and_can_be_overridden() -> None:
    class DefaultTagged(Message):
        value: int

    assert message_tag(DefaultTagged) == "DefaultTagged"
    assert message_tag(DefaultTagged(value=1)) == "DefaultTagged"
    assert message_class("DefaultTagged") is DefaultTagged
    assert message_tag(WStr) == "wire.str"
    assert message_class("wire.str") is WStr
    assert message_class("no.such.tag") is None


def test_duplicate_tag_raises_at_class_definition() -> None:
    class First(Message, tag="test.duplicate"):
        pass

    with pytest.raises(DuplicateTagError) as caught:

        class Second(Message, tag="test.duplicate"):
            pass

    assert caught.value.tag == "test.duplicate"
    assert "First" in str(caught.value)
    assert isinstance(caught.value, TypeError)
    assert message_class("test.duplicate") is First


def test_duplicate_default_tag_raises() -> None:
    class Twin(Message):
        pass

    with pytest.raises(DuplicateTagError, match="'Twin'"):

        class Holder:
            class Twin(Message):  # same class name, so same default tag, different class
                pass

    assert message_class("Twin") is Twin


def test_redefining_the_same_class_replaces_it() -> None:
    classes = []
    for _ in range(2):

        class Reloaded(Message, tag="test.reloaded"):
            value: int

        classes.append(Reloaded)
    assert message_class("test.reloaded") is classes[1]


def test_bad_tag_is_refused() -> None:
    with pytest.raises(MessageDefinitionError):

        class Empty(Message, tag=""):
            pass


def test_messages_are_frozen_and_forbid_extra_fields() -> None:
    message = WInt(value=1)
    with pytest.raises(ValidationError):
        message.value = 2  # type: ignore[misc]
    with pytest.raises(ValidationError):
        WInt(value=1, extra=2)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        WInt.model_validate({"value": 1, "extra": 2})
    assert hash(WInt(value=1)) == hash(WInt(value=1))


def test_unencodable_value_raises_encode_error() -> None:
    with pytest.raises(EncodeError, match="object"):
        encode_message(WAny(value=object()))


async def test_tell_of_unencodable_message_raises_encode_error(make_system: SystemFactory) -> None:
    a = await make_system("enc-a")
    b = await make_system("enc-b")
    await connect(a, b)
    with pytest.raises(EncodeError):
        a.tell("enc-b", "echo", WAny(value=object()))
