"""Bounded mailboxes: ``spawn(..., mailbox_size=N)``."""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Block, DeadLetterLog, GetState, Ping, Recorder, Route, State, within

from actors import DeadLetterError, SpawnError, handler


class BusyRecorder(Recorder):
    """A Recorder that says when it has started handling a Block."""

    def __init__(self, release: asyncio.Event) -> None:
        super().__init__(release)
        self.blocking = asyncio.Event()

    @handler
    async def on_block(self, msg: Block) -> None:
        self.blocking.set()
        await self.release.wait()


async def blocked_recorder(route: Route, size: int) -> tuple[Recorder, asyncio.Event]:
    """A Recorder on the host with a bounded mailbox, busy with a Block until released."""
    release = asyncio.Event()
    recorder = BusyRecorder(release)
    route.host.spawn("rec", recorder, mailbox_size=size)
    route.sender.tell(route.node_id, "rec", Block())
    # Once the Block is being handled, the mailbox is empty and the actor busy.
    await within(recorder.blocking.wait())
    return recorder, release


async def test_a_full_mailbox_refuses_more(route: Route) -> None:
    letters = DeadLetterLog(route.host)
    recorder, release = await blocked_recorder(route, size=2)
    results = [route.sender.tell(route.node_id, "rec", Ping(seq=i)) for i in range(4)]
    if route.kind == "local":
        assert results == [True, True, False, False]
    else:
        # Handed to the transport; the host dead-letters what does not fit.
        assert results == [True] * 4
        await letters.wait_for(2)
    assert route.host.stats().dead_letters_by_reason.get("mailbox_full", 0) == (
        2 if route.kind == "remote" else 0
    )
    assert route.host.stats().by_actor["rec"].mailbox_depth == 2
    assert route.host.stats().by_actor["rec"].mailbox_size == 2
    with pytest.raises(DeadLetterError) as caught:
        await within(route.sender.ask(route.node_id, "rec", Ping(seq=9)))
    assert caught.value.reason == "mailbox_full"
    release.set()
    state = await within(route.sender.ask(route.node_id, "rec", GetState(), reply_type=State))
    assert state.seen == [0, 1]
    assert recorder.seen == [0, 1]


async def test_mailbox_size_is_checked(route: Route) -> None:
    for bad in (0, -1, 1.5, "3"):
        with pytest.raises(SpawnError, match="mailbox_size"):
            route.host.spawn("rec", Recorder(), mailbox_size=bad)  # type: ignore[arg-type]
