"""A node's limits and timings: the one home of their defaults and of their validation.

:class:`NodeConfig` is what :class:`transport.Node` builds from its keyword arguments and what
the sans-I/O core reads; constructing one checks every value, so a bad argument fails where it
was given, with a :class:`~transport.errors.ConfigurationError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._frames import DEFAULT_MAX_FRAME_SIZE
from .errors import ConfigurationError

__all__ = ["DEFAULTS", "NodeConfig"]


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Limits and timings of one node (times in seconds, sizes in bytes).

    Attributes:
        heartbeat_interval: send a heartbeat after this long without sending anything.
        heartbeat_timeout: declare a peer lost after this long without hearing from it.
        handshake_timeout: limit for one handshake and for ``connect()``.
        max_frame_size: largest frame body accepted.
        max_pending_handshakes: incoming connections allowed to be mid-handshake at once.
        queue_max_packets: bound of a kept peer's reconnect queue, in packets.
        queue_max_bytes: bound of a kept peer's reconnect queue, in bytes.
        high_water: outgoing buffer size past which ``send`` returns False for that peer.
        low_water: buffer size below which ``drained()`` returns.
        reconnect_initial: first re-dial delay of a kept peer.
        reconnect_max: largest re-dial delay.
        max_dials: re-dials (kept peers, cluster members) in progress at once; the rest wait
            their turn, so that a node learning of many members at once (a cluster join) does
            not open that many handshakes at the same moment.

    Raises:
        ConfigurationError: a value is out of range.
    """

    heartbeat_interval: float = 1.0
    heartbeat_timeout: float = 5.0
    handshake_timeout: float = 5.0
    max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    max_pending_handshakes: int = 64
    queue_max_packets: int = 10_000
    queue_max_bytes: int = 16 * 1024 * 1024
    high_water: int = 1024 * 1024
    low_water: int = 256 * 1024
    reconnect_initial: float = 0.1
    reconnect_max: float = 5.0
    max_dials: int = 8

    def __post_init__(self) -> None:
        if not 0 < self.heartbeat_interval < self.heartbeat_timeout:
            raise ConfigurationError("need 0 < heartbeat_interval < heartbeat_timeout")
        if (
            self.handshake_timeout <= 0
            or self.reconnect_initial <= 0
            or self.reconnect_max < self.reconnect_initial
        ):
            raise ConfigurationError("timeouts and reconnect delays must be positive")
        if type(self.max_dials) is not int or self.max_dials < 1:
            raise ConfigurationError(f"max_dials must be an int >= 1, not {self.max_dials!r}")
        if not 0 <= self.low_water <= self.high_water:
            raise ConfigurationError("need 0 <= low_water <= high_water")
        if self.max_frame_size <= 0 or self.max_pending_handshakes <= 0:
            raise ConfigurationError("max_frame_size and max_pending_handshakes must be positive")
        if self.queue_max_packets < 0 or self.queue_max_bytes < 0:
            raise ConfigurationError("reconnect queue bounds must not be negative")


DEFAULTS = NodeConfig()
"""The defaults, read by :class:`transport.Node`'s signature."""
