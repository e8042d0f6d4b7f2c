"""The wire envelope: decode checks every field by exact type; encoders and decode agree."""

from __future__ import annotations

from typing import Any

import pytest
from actor_helpers import Ping

from actors._envelope import (
    ERROR,
    ERROR_DEAD_LETTER,
    ERROR_REMOTE,
    Ask,
    Failure,
    Malformed,
    Reply,
    Tell,
    ask_packet,
    decode,
    error_packet,
    reply_packet,
    tell_packet,
)
from actors.errors import DeadLetterError, EncodeError, RemoteError


def test_encoders_and_decode_agree() -> None:
    assert decode(tell_packet("rec", Ping(seq=1), "a", "me")) == Tell(
        "rec", "test.Ping", {"seq": 1}, "me"
    )
    assert decode(ask_packet("rec", Ping(seq=2), "a", None, 7)) == Ask(
        "rec", "test.Ping", {"seq": 2}, None, 7
    )
    assert decode(reply_packet(Ping(seq=3), "b", 7)) == Reply("test.Ping", {"seq": 3}, 7)
    assert decode(reply_packet(None, "b", 8)) == Reply(None, None, 8)
    failure = decode(error_packet(ERROR_REMOTE, "ValueError", "kaput", "b", 9))
    assert failure == Failure(ERROR_REMOTE, "ValueError", "kaput", 9)
    assert isinstance(failure, Failure)
    error = failure.error()
    assert isinstance(error, RemoteError) and error.type_name == "ValueError"
    dead = decode(error_packet(ERROR_DEAD_LETTER, "unknown_actor", "no such", "b", 9))
    assert isinstance(dead, Failure) and isinstance(dead.error(), DeadLetterError)


def test_the_reply_encoder_refuses_what_cannot_be_a_reply() -> None:
    with pytest.raises(EncodeError):
        reply_packet(object(), "b", 1)


@pytest.mark.parametrize(
    "packet",
    [
        "not a list",
        (0, "rec", "test.Ping", {}, "a", None, None),  # a tuple is not what msgpack gives
        [0, "rec", "test.Ping", {}, "a", None],  # six fields
        [1.0, "rec", "test.Ping", {}, "a", None, 1],  # kind must be an int, not a float
        [True, "rec", "test.Ping", {}, "a", None, 1],  # nor a bool
        [7, "rec", "test.Ping", {}, "a", None, 1],  # unknown kind
        [0, 5, "test.Ping", {}, "a", None, None],  # target must be a str
        [0, "rec", b"test.Ping", {}, "a", None, None],  # tag must be a str
        [1, "rec", "test.Ping", {}, "a", None, "1"],  # an ask needs an int correlation id
        [1, "rec", "test.Ping", {}, "a", None, True],
    ],
)
def test_malformed_requests_are_dead_letters(packet: Any) -> None:
    envelope = decode(packet)
    assert isinstance(envelope, Malformed)
    assert envelope.kind is None  # not an answer: it counts as a dead letter
    assert envelope.reason


def test_malformed_answers_keep_what_lets_the_ask_fail() -> None:
    assert decode([2, None, None, None, "b", None, "x"]) == Malformed(
        "answer without a correlation id", 2
    )
    bad_error = decode([ERROR, None, ERROR_REMOTE, "not a pair", "b", None, 4])
    assert isinstance(bad_error, Malformed)
    assert (bad_error.kind, bad_error.correlation_id) == (ERROR, 4)
    bad_tag = decode([2, None, 12, {}, "b", None, 5])
    assert isinstance(bad_tag, Malformed) and bad_tag.correlation_id == 5


def test_an_odd_sender_actor_is_read_as_none() -> None:
    assert decode([0, "rec", "test.Ping", {}, "a", 5, None]) == Tell("rec", "test.Ping", {}, None)
