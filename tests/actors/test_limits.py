"""`describe` and `count_items`: what a peer's value may cost to report and to check."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors._limits import count_items, describe


def nested(depth: int) -> Any:
    value: Any = None
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("sink", "'sink'"),
        (b"ab", "b'ab'"),
        (42, "42"),
        (None, "None"),
        (True, "True"),
        (1.5, "1.5"),
        ([1, "a"], "[1, 'a']"),
        ({"seq": 1}, "{'seq': 1}"),
        ((1,), "(1)"),
    ],
)
def test_short_values_read_as_their_repr(value: Any, text: str) -> None:
    assert describe(value) == text


@pytest.mark.parametrize(
    ("value", "head"),
    [
        ("x" * 3_000_000, "str of 3000000 chars: 'xxx"),
        (b"\xff" * 3_000_000, "bytes of 3000000 bytes: b'\\xff"),
        (list(range(500_000)), "list of 500000 items: [0, 1, 2"),
        ({f"k{i}": i for i in range(500_000)}, "dict of 500000 entries: {'k0': 0, 'k1': 1"),
        (["x" * 10_000] * 3, "list of 3 items: ['xxx"),
    ],
)
def test_large_values_show_type_size_and_a_short_preview(value: Any, head: str) -> None:
    text = describe(value)
    assert text.startswith(head), text[:120]
    assert len(text) <= 300


@pytest.mark.parametrize("depth", [990, 5000, sys.getrecursionlimit() * 3])
def test_deep_values_are_described_without_recursing(depth: int) -> None:
    text = describe(nested(depth))
    assert text.startswith("[[[[[[") and len(text) <= 300


def test_odd_values_are_named_by_type_not_repr() -> None:
    class Loud:
        def __repr__(self) -> str:
            raise AssertionError("repr of a peer's object must not be called")

    assert describe(Loud()) == "<Loud>"
    assert describe([Loud()]) == "[<Loud>]"
    assert describe(10**100_000) == "<int of 332193 bits>"


@settings(max_examples=100, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
        max_leaves=60,
    ),
    limit=st.integers(min_value=0, max_value=300),
)
def test_describe_is_bounded_for_any_value(value: Any, limit: int) -> None:
    assert len(describe(value, limit)) <= limit + 60


def test_count_items_counts_entries_of_every_container() -> None:
    assert count_items({"seq": 1}, 10) == 1
    assert count_items({"a": [1, 2, 3], "b": {"c": [4]}}, 100) == 2 + 3 + 1 + 1
    assert count_items("x" * 1_000_000, 10) == 0
    assert count_items(nested(5000), 10_000) == 5000


def test_count_items_stops_once_past_the_budget() -> None:
    big = {f"k{i}": i for i in range(200_000)}
    assert count_items(big, 100) == 200_000  # the top map alone is past the budget
    wide = [[0] * 1000 for _ in range(10)]
    assert count_items(wide, 100_000) == 10_010
    assert count_items(wide, 2500) == 3010  # 10, then three inner lists: past 2500, stop
    assert count_items(nested(100_000), 50) == 51
