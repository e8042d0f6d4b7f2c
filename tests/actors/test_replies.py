"""Replies of any serializable type, local and remote alike (DESIGN §2, ``ask``)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import subprocess
import sys
import textwrap
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from actor_helpers import Ping, Pong, Route, within
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from actors import Actor, AskError, DeadLetterError, Message, RemoteError, handler
from actors._envelope import Reply, decode, reply_packet
from actors._values import PAIR_CODED, decode_reply, encode_reply
from transport._frames import FrameDecoder, encode_frame

ROOT = Path(__file__).resolve().parents[2]


class Returns(Message, tag="test.replies.Returns"):
    """Ask the Echo actor to return the value stored under ``key``."""

    key: str


class Colour(enum.Enum):
    RED = "red"
    GREEN = "green"


class Point(BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class Span:
    start: int
    end: int
    label: str


STAMP = dt.datetime(2026, 12, 1, 9, 30, 15, 250, tzinfo=dt.timezone(dt.timedelta(hours=2)))
ID = uuid.UUID("12345678-1234-5678-1234-567812345678")

# Plain values: come back equal and of the same type.
PLAIN: dict[str, Any] = {
    "none": None,
    "true": True,
    "false": False,
    "zero": 0,
    "negative": -12,
    "big": 2**63 - 1,
    "float": 1.25,
    "str": "héllo",
    "empty_str": "",
    "bytes": b"\x00\xff raw",
    "list": [1, "a", None, 2.5, b"b"],
    "empty_list": [],
    "dict": {"a": 1, "b": [1, 2, {"c": None}]},
    "empty_dict": {},
    "int_keys": {1: "one", 2: "two"},
    "mixed_keys": {None: 0, 1.5: "x", "s": [1], b"k": {3: 4}, True: "t"},
    "tuple_key": {(1, 2): "pair"},
    "nested_int_keys": [{"outer": {7: [8, 9]}}],
    "dict_with_p_key": {"p": [["not", "pairs"]]},
}


class Echo(Actor):
    """Answers `Returns` with a stored value; keeps a mutable list to test isolation."""

    def __init__(self) -> None:
        self.items = [1, 2, 3]
        self.values: dict[str, Any] = {
            **PLAIN,
            "tuple": (1, (2, 3), "x"),
            "message": Pong(seq=5),
            "datetime": STAMP,
            "date": dt.date(2026, 12, 1),
            "uuid": ID,
            "decimal": Decimal("3.14159265358979323846"),
            "enum": Colour.GREEN,
            "model": Point(x=1, y=2),
            "models": [Point(x=1, y=2), Point(x=3, y=4)],
            "dataclass": Span(0, 10, "head"),
            "set": {3},
            "messages": [Pong(seq=1), Pong(seq=2)],
            "unserializable": object(),
            "too_big": 2**70,
        }

    @handler
    def on_returns(self, msg: Returns) -> Any:
        if msg.key == "items":
            return self.items
        return self.values[msg.key]

    @handler
    def on_ping(self, msg: Ping) -> Pong:
        return Pong(seq=msg.seq)


async def ask(route: Route, key: str, **options: Any) -> Any:
    return await within(route.sender.ask(route.node_id, "echo", Returns(key=key), **options))


@pytest.mark.parametrize("key", sorted(PLAIN))
async def test_plain_values_come_back_equal_and_of_the_same_type(route: Route, key: str) -> None:
    route.host.spawn("echo", Echo)
    reply = await ask(route, key)
    assert reply == PLAIN[key]
    assert type(reply) is type(PLAIN[key])
    if isinstance(reply, dict):
        assert [type(k) for k in reply] == [type(k) for k in PLAIN[key]]


async def test_a_tuple_comes_back_as_a_list(route: Route) -> None:
    route.host.spawn("echo", Echo)
    assert await ask(route, "tuple") == [1, [2, 3], "x"]
    assert await ask(route, "tuple", reply_type=tuple[int, tuple[int, int], str]) == (
        1,
        (2, 3),
        "x",
    )


async def test_a_message_comes_back_typed(route: Route) -> None:
    route.host.spawn("echo", Echo)
    reply = await ask(route, "message")
    assert type(reply) is Pong
    assert reply == Pong(seq=5)
    assert await ask(route, "message", reply_type=Pong) == Pong(seq=5)


@pytest.mark.parametrize(
    ("key", "native", "reply_type", "typed"),
    [
        ("datetime", STAMP.isoformat(), dt.datetime, STAMP),
        ("date", "2026-12-01", dt.date, dt.date(2026, 12, 1)),
        ("uuid", str(ID), uuid.UUID, ID),
        ("decimal", "3.14159265358979323846", Decimal, Decimal("3.14159265358979323846")),
        ("enum", "green", Colour, Colour.GREEN),
        ("model", {"x": 1, "y": 2}, Point, Point(x=1, y=2)),
        (
            "models",
            [{"x": 1, "y": 2}, {"x": 3, "y": 4}],
            list[Point],
            [Point(x=1, y=2), Point(x=3, y=4)],
        ),
        ("dataclass", {"start": 0, "end": 10, "label": "head"}, Span, Span(0, 10, "head")),
        ("set", [3], set[int], {3}),
        ("messages", [{"seq": 1}, {"seq": 2}], list[Pong], [Pong(seq=1), Pong(seq=2)]),
        ("int_keys", {1: "one", 2: "two"}, dict[int, str], {1: "one", 2: "two"}),
    ],
)
async def test_other_values_come_back_native_and_validate_into_reply_type(
    route: Route, key: str, native: Any, reply_type: Any, typed: Any
) -> None:
    route.host.spawn("echo", Echo)
    assert await ask(route, key) == native
    reply = await ask(route, key, reply_type=reply_type)
    assert reply == typed
    assert type(reply) is type(typed)
    if key == "datetime":
        assert reply.utcoffset() == dt.timedelta(hours=2)


async def test_reply_type_mismatch_is_a_clear_ask_error(route: Route) -> None:
    route.host.spawn("echo", Echo)
    with pytest.raises(AskError, match=r"does not validate as int") as caught:
        await ask(route, "str", reply_type=int)
    assert not isinstance(caught.value, RemoteError | DeadLetterError)
    assert caught.value.__cause__ is not None
    with pytest.raises(AskError, match=r"as Point: Field required \(at x\)"):
        await ask(route, "dict", reply_type=Point)
    # The actor was not involved in the failure: it goes on answering.
    assert await within(route.sender.ask(route.node_id, "echo", Ping(seq=1))) == Pong(seq=1)
    assert route.sender.pending_asks == 0


@pytest.mark.parametrize("key", ["unserializable", "too_big"])
async def test_unserializable_reply_fails_that_ask_and_the_actor_goes_on(
    route: Route, key: str
) -> None:
    route.host.spawn("echo", Echo)
    with pytest.raises(RemoteError) as caught:
        await ask(route, key)
    assert caught.value.type_name == "EncodeError"
    assert await ask(route, "int_keys") == {1: "one", 2: "two"}
    assert route.host.actors == ("echo",)


async def test_a_local_asker_does_not_share_the_actors_mutable_state(route: Route) -> None:
    route.host.spawn("echo", Echo)
    first = await ask(route, "items")
    first.append(4)
    assert await ask(route, "items") == [1, 2, 3]


def test_codec_forms() -> None:
    assert encode_reply(None) == (None, None)
    assert encode_reply(Pong(seq=1)) == ("test.Pong", {"seq": 1})
    assert encode_reply({"a": (1, 2)}) == (None, {"a": [1, 2]})
    tag, payload = encode_reply({1: {"k": 2}})
    assert tag == PAIR_CODED
    assert payload == {"p": [[1, {"p": [["k", 2]]}]]}
    assert decode_reply(tag, payload) == {1: {"k": 2}}
    with pytest.raises(DeadLetterError, match="invalid_reply"):
        decode_reply(PAIR_CODED, {"p": 3, "q": 4})
    with pytest.raises(DeadLetterError, match="invalid_reply"):
        decode_reply("no.such.tag", {})
    with pytest.raises(DeadLetterError, match="invalid_reply"):
        decode_reply(7, None)


def test_ask_is_typed_by_reply_type_under_mypy_strict(tmp_path: Path) -> None:
    program = tmp_path / "typed_ask.py"
    program.write_text(
        textwrap.dedent(
            """
            from actors import ActorSystem, Message

            class Get(Message, tag="typed.Get"):
                key: str

            async def main(system: ActorSystem) -> None:
                count: int = await system.ask("b", "kv", Get(key="n"), reply_type=int)
                anything = await system.ask("b", "kv", Get(key="n"))
                reveal_type(anything)
                names: list[str] = await system.ref("b", "kv").ask(
                    Get(key="n"), reply_type=list[str]
                )
                maybe: int | None = await system.ask(
                    "b", "kv", Get(key="n"), reply_type=int | None
                )
                wrong: str = await system.ask("b", "kv", Get(key="n"), reply_type=int)
                print(count, names, maybe, wrong)
            """
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(program)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    lines = [line for line in result.stdout.splitlines() if "typed_ask.py" in line]
    assert len(lines) == 2, result.stdout
    assert 'Revealed type is "Any"' in lines[0]
    # The str-annotated variable given reply_type=int is the one error.
    assert ":17: error:" in lines[1]
    assert '"type[int]"' in lines[1]
    assert '"type[str]"' in lines[1]


def test_reply_packets_carry_every_form() -> None:
    assert decode(reply_packet(None, "b", 1)) == Reply(None, None, 1)
    assert decode(reply_packet(7, "b", 2)) == Reply(None, 7, 2)
    assert decode(reply_packet({1: "x"}, "b", 3)) == Reply(PAIR_CODED, {"p": [[1, "x"]]}, 3)
    assert decode(reply_packet(Pong(seq=1), "b", 4)) == Reply("test.Pong", {"seq": 1}, 4)


# --- the codec against the real wire (the receiving unpacker accepts only str/bytes keys) ----

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=8),
    st.binary(max_size=8),
)
_keys = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 5), st.text(max_size=4), st.binary(max_size=4)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(_keys, inner, max_size=4),
        st.dictionaries(st.text(max_size=4), inner, max_size=4),
    ),
    max_leaves=20,
)


def _same(a: Any, b: Any) -> bool:
    """Equal, and of the same type all the way down (so 1 is not True and 1.0 is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(
            type(k) is type(k2) and _same(a[k], b[k2]) for k, k2 in zip(a, b, strict=True)
        )
    return bool(a == b)


@settings(max_examples=300, deadline=None)
@given(_values)
def test_plain_values_survive_the_real_wire(value: Any) -> None:
    decoder = FrameDecoder()
    [body] = decoder.feed(encode_frame(reply_packet(value, "b", 1)))
    reply = decode(body)
    assert type(reply) is Reply
    assert _same(decode_reply(reply.tag, reply.payload), value)
