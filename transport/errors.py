"""Errors raised by the transport layer, classed by cause.

Every exception the public API raises derives from :class:`TransportError`. Under it, the
first level says whose doing the failure is, so an ``except`` clause means what it says
(trio's ``ClosedResourceError`` / ``BrokenResourceError``, h11's ``LocalProtocolError`` /
``RemoteProtocolError``)::

    TransportError
    ├── UsageError              the caller misused the API; retrying the same call fails again
    │   ├── ConfigurationError  bad constructor argument, unsafe bind without a cookie
    │   ├── EncodingError       a packet msgpack cannot serialize
    │   └── PacketTooLarge      a packet that encodes above ``max_frame_size``
    ├── NodeStateError          the node is not running: not started yet, or closed by you
    └── PeerError               the peer or the network failed it
        ├── ConnectError        dialing failed: refused, unreachable, timed out
        └── HandshakeError      the peer was reached but the handshake did not complete
            ├── AuthenticationError  cookie missing on one side, proofs or certificate wrong
            └── ProtocolError   the peer broke the wire protocol (malformed frame, version)
                └── FrameTooLarge    the peer sent a length prefix above ``max_frame_size``

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
    "PacketTooLarge",
    "PeerError",
    "ProtocolError",
    "TransportError",
    "UsageError",
]


class TransportError(Exception):
    """Root of every error the transport raises."""


class UsageError(TransportError):
    """The caller misused the API: the same call with the same arguments fails again."""


class ConfigurationError(UsageError, ValueError):
    """A constructor argument is invalid or unsafe."""


class EncodingError(UsageError, TypeError):
    """A packet cannot be serialized with msgpack."""


class PacketTooLarge(UsageError):
    """A packet given to ``send`` encodes to more than ``max_frame_size``; nothing was sent."""


class NodeStateError(TransportError):
    """The node is not in a state that allows this operation (not started, or closed)."""


class PeerError(TransportError):
    """The peer or the network failed the operation; the node itself is fine."""


class ConnectError(PeerError):
    """Dialing a peer failed before a handshake could complete (refused, timeout, reset)."""


class HandshakeError(PeerError):
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
    """A peer's frame has a length prefix above the configured ``max_frame_size``.

    An oversized packet given to this node's own ``send`` raises :class:`PacketTooLarge`.
    """
