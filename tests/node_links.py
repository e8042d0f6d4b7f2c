"""Waiting for a node's sockets to close, shared by the transport and fault tests."""

from __future__ import annotations

import asyncio

from transport import Node

DEADLINE = 10.0


async def extra_sockets_closed(*nodes: Node, timeout: float = DEADLINE) -> None:
    """Wait until every socket of these nodes that carries no up connection has closed.

    Each link resolves its ``lost`` future when its socket closes, so this waits on those
    instead of polling the nodes' socket counts.
    """
    closing = [
        link.lost
        for node in nodes
        for handle, link in node._links.items()
        if handle not in {node._core.handle_of(peer) for peer in node.peers}
    ]
    await asyncio.wait_for(asyncio.gather(*closing), timeout)
