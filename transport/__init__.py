"""masterless transport: a TCP mesh where every node both listens and dials.

Any node may dial any other; simultaneous connections between two nodes are deduplicated by
a deterministic rule, heartbeats catch dead peers, kept peers are re-dialed with backoff, and
one packet sent to many peers is encoded once. Wire format: length-prefixed msgpack.

Example:
    ```python
    async with Node("a") as a, Node("b") as b:
        b.on("message", lambda peer, packet: print(peer, packet))
        peer = await a.connect(b.info())
        a.send(peer, {"hello": "world"})
    ```
"""

import logging

from ._handshake import PROTOCOL_VERSION
from ._node import EventName, Handler, Node
from ._uri import parse_uri
from .errors import (
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    EncodingError,
    FrameTooLarge,
    HandshakeError,
    NodeStateError,
    PacketTooLarge,
    PeerError,
    ProtocolError,
    TransportError,
    UsageError,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AuthenticationError",
    "ConfigurationError",
    "ConnectError",
    "EncodingError",
    "EventName",
    "FrameTooLarge",
    "Handler",
    "HandshakeError",
    "Node",
    "NodeStateError",
    "PacketTooLarge",
    "PeerError",
    "ProtocolError",
    "TransportError",
    "UsageError",
    "parse_uri",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
