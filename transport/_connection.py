"""Sans-I/O state of one connection: where it stands, its buffers and its session timers.

The life of a connection is a small state machine. Every change of state goes through
:meth:`transport._core.NodeCore._transition`, which checks it against :data:`TRANSITIONS` and
runs the clean-up that belongs to the state entered (h11's ``_state.py`` rule: one function,
one table)::

    HANDSHAKE ──> AWAIT_CLAIM  (decider: authenticated, waits for the follower's claim) ─┐
        │    └──> AWAIT_COMMIT (follower: claim sent, waits for the decider's commit) ───┤
        │                                                                              v
        └───────────────────────────────> CLOSED <────────────────────────────────── UP

Any state but CLOSED may go to CLOSED; CLOSED is final.
"""

from __future__ import annotations

from enum import IntEnum

from ._frames import FrameDecoder, encode_frame
from ._handshake import Handshake, PeerIdentity

__all__ = [
    "HEARTBEAT_FRAME",
    "TAG_DATA",
    "TAG_GOODBYE",
    "TAG_HEARTBEAT",
    "TAG_KEEP",
    "TRANSITIONS",
    "Connection",
    "ConnectionState",
]

# Session frames after the commit are arrays tagged by their first element.
TAG_DATA = 0
TAG_HEARTBEAT = 1
TAG_KEEP = 2
TAG_GOODBYE = 3

HEARTBEAT_FRAME = encode_frame([TAG_HEARTBEAT])


class ConnectionState(IntEnum):
    """Life of one connection."""

    HANDSHAKE = 0
    AWAIT_CLAIM = 1  # decider: authenticated, waiting for the follower's claim
    AWAIT_COMMIT = 2  # follower: claim sent, waiting for the decider's commit
    UP = 3
    CLOSED = 4


TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    ConnectionState.HANDSHAKE: frozenset(
        {ConnectionState.AWAIT_CLAIM, ConnectionState.AWAIT_COMMIT, ConnectionState.CLOSED}
    ),
    ConnectionState.AWAIT_CLAIM: frozenset({ConnectionState.UP, ConnectionState.CLOSED}),
    ConnectionState.AWAIT_COMMIT: frozenset({ConnectionState.UP, ConnectionState.CLOSED}),
    ConnectionState.UP: frozenset({ConnectionState.CLOSED}),
    ConnectionState.CLOSED: frozenset(),
}
"""The allowed changes of state: ``TRANSITIONS[current]`` is the set of states it may enter."""


class Connection:
    """One TCP connection as the core sees it; the shell names it by its ``handle``."""

    __slots__ = (
        "claim_seq",
        "close_reason",
        "closing",
        "deadline",
        "decoder",
        "dialed_uri",
        "dirty",
        "handle",
        "handshake",
        "last_received",
        "last_sent",
        "outbox",
        "outbox_bytes",
        "paused",
        "peer",
        "received",
        "remote_keeps",
        "sent",
        "settled",
        "state",
    )

    def __init__(self, handle: int, handshake: Handshake, decoder: FrameDecoder, now: float):
        self.handle = handle
        self.handshake = handshake
        self.decoder = decoder
        self.state = ConnectionState.HANDSHAKE
        self.peer: PeerIdentity | None = None
        self.outbox: list[bytes] = []
        self.outbox_bytes = 0
        self.dirty = False
        self.closing = False
        self.close_reason: str | None = None
        self.paused = False
        self.deadline = now
        self.last_received = now
        self.last_sent = now
        self.received = False
        self.sent = False
        self.claim_seq = -1
        self.remote_keeps = False
        self.settled = False
        self.dialed_uri: str | None = None

    @property
    def dialer(self) -> bool:
        """True when this node opened the connection."""
        return self.handshake.dialer

    def __repr__(self) -> str:
        peer = self.peer.node_id if self.peer else self.handshake.peer_id
        role = "dialer" if self.dialer else "listener"
        return f"<Connection #{self.handle} {role} peer={peer!r} {self.state.name}>"
