"""The transport's errors: one root, classed by cause, all exported."""

from __future__ import annotations

import inspect

import pytest

import transport
from transport import errors


def test_every_name_in_all_is_importable_and_every_error_is_exported() -> None:
    for name in transport.__all__:
        assert hasattr(transport, name), name
    defined = {
        name
        for name, value in inspect.getmembers(errors, inspect.isclass)
        if issubclass(value, Exception) and value.__module__ == errors.__name__
    }
    assert defined <= set(transport.__all__), defined - set(transport.__all__)
    assert set(errors.__all__) == defined


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        (transport.ConfigurationError, transport.UsageError),
        (transport.EncodingError, transport.UsageError),
        (transport.PacketTooLarge, transport.UsageError),
        (transport.ConnectError, transport.PeerError),
        (transport.HandshakeError, transport.PeerError),
        (transport.AuthenticationError, transport.HandshakeError),
        (transport.ProtocolError, transport.HandshakeError),
        (transport.FrameTooLarge, transport.ProtocolError),
    ],
)
def test_each_error_sits_under_its_cause(error: type[Exception], cause: type[Exception]) -> None:
    assert issubclass(error, cause)
    assert issubclass(error, transport.TransportError)


def test_caller_misuse_is_never_taken_for_a_peer_failure() -> None:
    usage = (transport.ConfigurationError, transport.EncodingError, transport.PacketTooLarge)
    for error in usage:
        assert not issubclass(error, transport.PeerError), error
    assert not issubclass(transport.NodeStateError, (transport.UsageError, transport.PeerError))


def test_the_tree_in_the_docstring_names_every_error() -> None:
    assert errors.__doc__ is not None
    for name in errors.__all__:
        assert name in errors.__doc__, name


async def test_an_oversized_local_send_is_not_caught_as_a_handshake_error() -> None:
    async with transport.Node("a", max_frame_size=1024) as a, transport.Node("b") as b:
        peer = await a.connect(b.info() or "")
        with pytest.raises(transport.PacketTooLarge) as info:
            try:
                a.send(peer, b"x" * 2000)
            except transport.HandshakeError:  # pragma: no cover - the bug this guards
                pytest.fail("an oversized local send was caught as a HandshakeError")
        assert "max_frame_size=1024" in str(info.value)
