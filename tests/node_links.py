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
    live = {conn.transport for node in nodes for conn in node._core.up.values()}
    closing = [link.lost for node in nodes for link in node._links if link not in live]
    await asyncio.wait_for(asyncio.gather(*closing), timeout)
