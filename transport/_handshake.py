"""Sans-I/O authentication handshake: hello / proof exchange as a state machine.

Dialer A and listener B (wire protocol version 1)::

    A -> B  {"op": "hello", "v": 1, "id", "inc", "uri", "nonce", "role": "dialer", "auth"}
    B -> A  {"op": "hello", ..., "role": "listener", "proof"?}
    A -> B  {"op": "proof", "proof"}                       (only when a cookie is set)

``proof`` is ``HMAC-SHA256(cookie, msgpack([role, challenge_nonce, own_nonce, own_id, peer_id]))``
where ``challenge_nonce`` is the *other* side's fresh 32-byte nonce, so a proof captured from
an earlier session never verifies again. Either side may answer with
``{"op": "reject", "code", "reason"}`` and close.

The machine owns no socket, clock or randomness: nonces are passed in, bodies go in through
:meth:`Handshake.receive` and the bodies to send come back as return values. The connection
dedup step that follows authentication lives in :mod:`transport._core`.
"""

from __future__ import annotations

import hashlib
import hmac
import reprlib
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import msgpack

from .errors import AuthenticationError, HandshakeError, ProtocolError

__all__ = [
    "NONCE_SIZE",
    "PROTOCOL_VERSION",
    "Handshake",
    "HandshakeState",
    "LocalIdentity",
    "PeerIdentity",
    "RejectCode",
    "error_for_reject",
    "reject_body",
]

PROTOCOL_VERSION = 1
"""The wire protocol version this node speaks (the ``v`` of its hello)."""
NONCE_SIZE = 32
_MAX_ID_LENGTH = 255
_MAX_URI_LENGTH = 1024


class RejectCode:
    """The ``code`` values of a ``reject`` body."""

    VERSION = "version"
    SELF = "self"
    AUTH = "auth"
    PROTOCOL = "protocol"
    DUPLICATE = "duplicate"
    STALE = "stale"
    BUSY = "busy"
    CLOSING = "closing"


class HandshakeState(IntEnum):
    """Where a handshake stands."""

    AWAIT_HELLO = 0
    AWAIT_PROOF = 1
    AUTHENTICATED = 2
    FAILED = 3


@dataclass(frozen=True, slots=True)
class LocalIdentity:
    """What this node announces in its hello."""

    node_id: str
    incarnation: int
    uri: str | None


@dataclass(frozen=True, slots=True)
class PeerIdentity:
    """The authenticated peer at the end of a handshake.

    ``connection_id`` names this one connection on both sides (dialer nonce prefix + listener
    nonce prefix); the dedup step uses it.
    """

    node_id: str
    incarnation: int
    uri: str | None
    connection_id: bytes


def reject_body(code: str, reason: str) -> dict[str, Any]:
    """The body of a ``reject`` message."""
    return {"op": "reject", "code": code, "reason": reason}


def error_for_reject(body: dict[str, Any]) -> HandshakeError:
    """Translate a received ``reject`` body into the matching exception."""
    code = body.get("code")
    reason = body.get("reason", "")
    reason = reason[:_MAX_URI_LENGTH] if isinstance(reason, str) else reprlib.repr(reason)
    message = f"peer rejected the handshake ({code}): {reason}"
    if code == RejectCode.AUTH:
        return AuthenticationError(message, remote=True)
    if code in (RejectCode.VERSION, RejectCode.PROTOCOL):
        return ProtocolError(message, code=str(code), remote=True)
    return HandshakeError(message, code=str(code), remote=True)


def _proof(
    cookie: bytes, role: str, challenge: bytes, own_nonce: bytes, own: str, peer: str
) -> bytes:
    message = msgpack.packb([role, challenge, own_nonce, own, peer], use_bin_type=True)
    return hmac.new(cookie, message, hashlib.sha256).digest()


class Handshake:
    """One side of the authentication exchange of one connection.

    Args:
        dialer: True on the side that opened the connection.
        local: this node's identity.
        cookie: the shared secret, or None for an open mesh.
        nonce: 32 fresh random bytes (the caller draws them).

    After :attr:`state` reaches ``AUTHENTICATED``, :attr:`peer` holds the peer's identity.
    Errors are sticky: once a call raised, every later call raises ``HandshakeError``.
    """

    __slots__ = ("_cookie", "_dialer", "_local", "_nonce", "_peer_hello", "peer", "state")

    def __init__(
        self, *, dialer: bool, local: LocalIdentity, cookie: bytes | None, nonce: bytes
    ) -> None:
        if len(nonce) != NONCE_SIZE:
            raise ValueError(f"nonce must be {NONCE_SIZE} bytes")
        self._dialer = dialer
        self._local = local
        self._cookie = cookie
        self._nonce = nonce
        self._peer_hello: dict[str, Any] | None = None
        self.peer: PeerIdentity | None = None
        self.state = HandshakeState.AWAIT_HELLO

    @property
    def dialer(self) -> bool:
        """True on the side that opened the connection."""
        return self._dialer

    @property
    def peer_id(self) -> str | None:
        """The id the peer announced in its hello (known before authentication ends)."""
        return None if self._peer_hello is None else str(self._peer_hello["id"])

    @property
    def connection_id(self) -> bytes | None:
        """This connection's id, known once both hellos are out."""
        hello = self._peer_hello
        if hello is None:
            return None
        if self._dialer:
            return self._nonce[:8] + bytes(hello["nonce"][:8])
        return bytes(hello["nonce"][:8]) + self._nonce[:8]

    def initiate(self) -> list[dict[str, Any]]:
        """The bodies a dialer sends first (its hello); nothing for a listener."""
        return [self._hello()] if self._dialer else []

    def receive(self, body: Any) -> list[dict[str, Any]]:
        """Feed one received body; return the bodies to send in answer.

        Raises:
            AuthenticationError: the cookie check failed.
            ProtocolError: the body is malformed or the version is unknown.
            HandshakeError: any other refusal (self-connection, peer's reject).
        """
        if self.state is HandshakeState.FAILED:
            raise HandshakeError("handshake already failed")
        try:
            return self._receive(body)
        except HandshakeError:
            self.state = HandshakeState.FAILED
            raise

    def _receive(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, dict):
            raise ProtocolError(f"expected a handshake map, got {type(body).__name__}")
        op = body.get("op")
        if op == "reject":
            raise error_for_reject(body)
        if self.state is HandshakeState.AWAIT_HELLO and op == "hello":
            return self._on_hello(body)
        if self.state is HandshakeState.AWAIT_PROOF and op == "proof":
            self._on_proof(body)
            return []
        raise ProtocolError(f"unexpected {reprlib.repr(op)} in state {self.state.name}")

    def _hello(self, proof: bytes | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "op": "hello",
            "v": PROTOCOL_VERSION,
            "id": self._local.node_id,
            "inc": self._local.incarnation,
            "uri": self._local.uri,
            "nonce": self._nonce,
            "role": "dialer" if self._dialer else "listener",
            "auth": self._cookie is not None,
        }
        if proof is not None:
            body["proof"] = proof
        return body

    def _on_hello(self, hello: dict[str, Any]) -> list[dict[str, Any]]:
        _check_hello(hello, expected_role="listener" if self._dialer else "dialer")
        peer_id: str = hello["id"]
        if peer_id == self._local.node_id:
            if hello["inc"] == self._local.incarnation:
                raise HandshakeError(
                    f"refusing to connect node {peer_id!r} to itself", code=RejectCode.SELF
                )
            raise HandshakeError(f"peer uses this node's own id {peer_id!r}", code=RejectCode.SELF)
        self._peer_hello = hello
        if self._dialer:
            return self._dialer_on_hello(hello)
        return self._listener_on_hello(hello)

    def _listener_on_hello(self, hello: dict[str, Any]) -> list[dict[str, Any]]:
        if self._cookie is None:
            # An open mesh accepts anyone; a dialer with a cookie rejects our proof-less hello.
            self._authenticated()
            return [self._hello()]
        if not hello["auth"]:
            raise AuthenticationError("this node requires a cookie and the dialer has none")
        proof = _proof(
            self._cookie, "listener", hello["nonce"], self._nonce, self._local.node_id, hello["id"]
        )
        self.state = HandshakeState.AWAIT_PROOF
        return [self._hello(proof)]

    def _dialer_on_hello(self, hello: dict[str, Any]) -> list[dict[str, Any]]:
        proof = hello.get("proof")
        if self._cookie is None:
            if hello["auth"] or proof is not None:
                raise AuthenticationError("the peer requires a cookie and this node has none")
            self._authenticated()
            return []
        if not isinstance(proof, bytes):
            raise AuthenticationError("the peer has no cookie but this node requires one")
        expected = _proof(
            self._cookie, "listener", self._nonce, hello["nonce"], hello["id"], self._local.node_id
        )
        if not hmac.compare_digest(proof, expected):
            raise AuthenticationError("the peer's proof does not match this node's cookie")
        own_proof = _proof(
            self._cookie, "dialer", hello["nonce"], self._nonce, self._local.node_id, hello["id"]
        )
        self._authenticated()
        return [{"op": "proof", "proof": own_proof}]

    def _on_proof(self, body: dict[str, Any]) -> None:
        assert self._cookie is not None and self._peer_hello is not None
        proof = body.get("proof")
        hello = self._peer_hello
        expected = _proof(
            self._cookie, "dialer", self._nonce, hello["nonce"], hello["id"], self._local.node_id
        )
        if not isinstance(proof, bytes) or not hmac.compare_digest(proof, expected):
            raise AuthenticationError("the dialer's proof does not match this node's cookie")
        self._authenticated()

    def _authenticated(self) -> None:
        hello = self._peer_hello
        connection_id = self.connection_id
        assert hello is not None and connection_id is not None
        self.peer = PeerIdentity(hello["id"], hello["inc"], hello["uri"], connection_id)
        self.state = HandshakeState.AUTHENTICATED


def _check_hello(hello: dict[str, Any], *, expected_role: str) -> None:
    version = hello.get("v")
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"unsupported protocol version {reprlib.repr(version)}; this node speaks 1",
            code=RejectCode.VERSION,
        )
    node_id = hello.get("id")
    if not isinstance(node_id, str) or not 0 < len(node_id) <= _MAX_ID_LENGTH:
        raise ProtocolError("hello has no valid 'id'")
    incarnation = hello.get("inc")
    if not isinstance(incarnation, int) or isinstance(incarnation, bool):
        raise ProtocolError("hello has no valid 'inc'")
    uri = hello.get("uri")
    if uri is not None and (not isinstance(uri, str) or len(uri) > _MAX_URI_LENGTH):
        raise ProtocolError("hello has an invalid 'uri'")
    nonce = hello.get("nonce")
    if not isinstance(nonce, bytes) or len(nonce) != NONCE_SIZE:
        raise ProtocolError("hello has no valid 32-byte 'nonce'")
    if hello.get("role") != expected_role:
        raise ProtocolError(f"hello's role should be {expected_role!r}")
    if not isinstance(hello.get("auth"), bool):
        raise ProtocolError("hello has no valid 'auth'")
