"""Sans-I/O events: what a :class:`transport._core.NodeCore` tells its caller happened.

Events are small immutable values that carry ids and connection handles, never the core's
mutable objects.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .errors import TransportError

__all__ = [
    "DialOutcome",
    "Event",
    "Output",
    "PacketsReceived",
    "PeerConnected",
    "PeerDisconnected",
    "RedialNeeded",
]


class PeerConnected(NamedTuple):
    """A peer's connection is up (fires once per connection, on both sides)."""

    peer_id: str
    uri: str | None


class PeerDisconnected(NamedTuple):
    """A connection that was up ended; ``reason`` is closed, lost, restarted or unwanted."""

    peer_id: str
    reason: str


class PacketsReceived(NamedTuple):
    """Data packets from an up connection, in arrival order (one event per read)."""

    peer_id: str
    packets: list[Any]


class RedialNeeded(NamedTuple):
    """A kept peer has no connection; the shell should dial ``uri`` with backoff."""

    peer_id: str
    uri: str


class DialOutcome(NamedTuple):
    """A dialed connection reached its end state.

    ``handle`` names the connection; ``peer_id`` is known when the handshake got that far;
    ``error`` is None on success and on ``duplicate`` (another connection to the same peer
    survived: wait for it to be up). ``committed`` is True when this very connection went
    up (it may have ended again since, in the same read).
    """

    handle: int
    peer_id: str | None
    error: TransportError | None
    committed: bool


class Output(NamedTuple):
    """Bytes to write on connection ``handle``; with ``close`` set, close it after writing."""

    handle: int
    data: bytes
    close: bool


Event = PeerConnected | PeerDisconnected | PacketsReceived | RedialNeeded | DialOutcome
