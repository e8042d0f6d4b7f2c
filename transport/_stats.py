"""Per-peer counters of a node, as `Node.stats` reports them."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PeerStats"]


@dataclass(frozen=True, slots=True)
class PeerStats:
    """A snapshot of the mesh's counters for one peer.

    Counters start when the node first connects to the peer (or keeps it) and survive its
    reconnections; a peer nobody keeps is forgotten, counters included, once its connection
    ends.

    Attributes:
        peer_id: The peer's id.
        connected: True while its connection is up.
        packets_in: Data packets received from it.
        packets_out: Data packets handed to its connection or its reconnect queue.
        bytes_in: Bytes received from it, framing, control frames and handshake included.
        bytes_out: Bytes written to it, framing, control frames and handshake included.
        dropped: Packets refused for it: past its high-water mark or its reconnect queue's
            bound (``send`` returned False).
        queued: Packets waiting in its reconnect queue now.
        reconnects: Connections to it that came up after an earlier one ended.
    """

    peer_id: str
    connected: bool
    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int
    dropped: int
    queued: int
    reconnects: int
