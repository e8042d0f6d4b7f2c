"""Races around the decider's commit, and keep flags acted on, over real loopback sockets.

Each case is made deterministic by pausing the reading side of a socket, so that what the
race needs (the commit and a goodbye in one read, a reject overtaking the commit) really
happens; the same cases run in the sans-I/O core in ``test_core.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from helpers import LogWatcher
from support import EventRecorder, uri_of, within

from transport import HandshakeError, Node

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.2}


@asynccontextmanager
async def nodes(*ids: str) -> AsyncIterator[list[Node]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(Node(node_id, **FAST)) for node_id in ids]


def pause_reading(node: Node) -> Any:
    """Stop ``node`` reading its one socket; returns the transport to resume it."""
    (link,) = node._links.values()
    assert link.transport is not None
    link.transport.pause_reading()
    return link.transport


async def test_connect_returns_and_redials_when_the_deciding_listener_leaves_after_its_commit() -> (
    None
):
    # "a" sorts lower: the listener decides. It disconnects right after committing, and the
    # dialer reads the commit and the goodbye in one go.
    async with nodes("a", "z") as (a, z):
        rec_z = EventRecorder(z)
        left: list[asyncio.Task[None]] = []
        paused: list[Any] = []

        def on_connect(peer: str, uri: str | None) -> None:
            if not left:  # only the first connection
                paused.append(pause_reading(z))
                left.append(asyncio.get_running_loop().create_task(a.disconnect("z")))

        a.on("connect", on_connect)
        rec_a = EventRecorder(a)  # after on_connect, so its events follow that handler's work
        dial = asyncio.ensure_future(z.connect(uri_of(a)))
        await rec_a.wait_event(("connect", "z"))
        await within(left[0])  # a said goodbye and closed its socket
        paused[0].resume_reading()
        # Before the fix, connect() waited the whole handshake timeout for a connect event
        # that had already come and gone, and raised ConnectError.
        assert await within(dial) == "a"
        assert z.is_kept("a")
        await rec_z.wait_for(lambda: rec_z.events.count(("connect", "a")) == 2)
        assert rec_z.events == [("connect", "a"), ("disconnect", "a", "closed"), ("connect", "a")]
        assert z.peers == ["a"]


async def test_a_follower_disconnecting_before_the_commit_arrives_is_closed_not_lost() -> None:
    async with nodes("a", "z") as (a, z):
        rec_a = EventRecorder(a)
        paused: list[Any] = []
        quit: list[asyncio.Task[None]] = []

        def on_connect(peer: str, uri: str | None) -> None:
            # The decider committed; the follower has not read the commit and disconnects.
            paused.append(pause_reading(z))
            quit.append(asyncio.get_running_loop().create_task(z.disconnect("a")))

        a.on("connect", on_connect)
        with LogWatcher() as log:
            dial = asyncio.ensure_future(z.connect(uri_of(a)))
            await rec_a.wait_for(lambda: ("disconnect", "z", "closed") in rec_a.events)
            with pytest.raises(HandshakeError, match="disconnected by the user"):
                await within(dial)
            await within(quit[0])
        assert rec_a.events == [("connect", "z"), ("disconnect", "z", "closed")]
        assert not [m for m in log.messages if "malformed" in m]
        assert a.peers == [] and z.peers == [] and not z.is_kept("a")


async def test_should_discard_unwanted_connections() -> None:
    # A port of the original library's scenario: right dials left and keeps it, then stops
    # keeping it; left never kept right; both sides see a disconnect.
    async with nodes("left", "right") as (left, right):
        rec_left, rec_right = EventRecorder(left), EventRecorder(right)
        assert await right.connect(uri_of(left)) == "left"
        await rec_left.wait_event(("connect", "right"))
        assert right.is_kept("left") and not left.is_kept("right")
        right.keep("left", False)
        await rec_left.wait_event(("disconnect", "right", "unwanted"))
        await rec_right.wait_event(("disconnect", "left", "unwanted"))
        assert left.peers == [] and right.peers == []
        # Nobody re-dials: neither side keeps the other.
        assert not right.is_kept("left") and not left.is_kept("right")
        assert rec_right.events == [("connect", "left"), ("disconnect", "left", "unwanted")]


async def test_a_connection_the_other_side_keeps_survives_an_unkeep() -> None:
    async with nodes("left", "right") as (left, right):
        rec_left = EventRecorder(left)
        assert await right.connect(uri_of(left)) == "left"
        await rec_left.wait_event(("connect", "right"))
        left.keep("right", True)
        right.keep("left", False)
        # The unkeep reaches left before this round trip's packet does; it is still up.
        assert right.send("left", "still wanted")
        await rec_left.wait_message("right", "still wanted")
        assert rec_left.events == [("connect", "right")]
        assert left.peers == ["right"]
