"""Errors raised by the transport layer.

Every exception the public API raises derives from :class:`TransportError`::

    TransportError
    ├── ConfigurationError      bad constructor argument, unsafe bind without a cookie
    ├── NodeStateError          operation not valid now (not started, closed)
    ├── EncodingError           a packet msgpack cannot serialize
    ├── ConnectError            dialing failed: refused, unreachable, timed out
    └── HandshakeError          the peer was reached but the handshake failed
        ├── AuthenticationError cookie missing on one side or proofs that do not match
        └── ProtocolError       malformed frame, wrong shape, unknown version
            └── FrameTooLarge   a length prefix above ``max_frame_size``

Foreign exceptions (``OSError``, msgpack's errors) are translated at the boundary and chained
with ``from``.
"""

from __future__ import annotations

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "ConnectError",
    "EncodingError",
    "FrameTooLarge",
    "HandshakeError",
    "NodeStateError",
    "ProtocolError",
    "TransportError",
]


class TransportError(Exception):
    """Root of every error the transport raises."""


class ConfigurationError(TransportError, ValueError):
    """A constructor argument is invalid or unsafe."""


class NodeStateError(TransportError):
    """The node is not in a state that allows this operation (e.g. not started, closed)."""


class EncodingError(TransportError, TypeError):
    """A packet cannot be serialized with msgpack."""


class ConnectError(TransportError):
    """Dialing a peer failed before a handshake could complete (refused, timeout, reset)."""


class HandshakeError(TransportError):
    """The peer answered but the handshake did not complete.

    Attributes:
        code: the short reason sent to the peer in a ``reject`` message (``"self"``,
            ``"duplicate"``, ``"version"``, ...).
    """

    default_code = "handshake"

    def __init__(self, message: str, *, code: str | None = None, remote: bool = False) -> None:
        super().__init__(message)
        self.code: str = code or self.default_code
        #: True when the peer sent this refusal (then it is not answered with another one).
        self.remote = remote


class AuthenticationError(HandshakeError):
    """The cookie is missing on one side or the proofs do not match."""

    default_code = "auth"


class ProtocolError(HandshakeError):
    """The peer broke the wire protocol (malformed frame, wrong shape, unknown version)."""

    default_code = "protocol"


class FrameTooLarge(ProtocolError):
    """A frame's length prefix exceeds the configured ``max_frame_size``."""
