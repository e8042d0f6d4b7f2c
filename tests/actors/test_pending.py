"""The pending-ask table's timeouts: one queue and one timer per timeout value, not per ask."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from actors._pending import PendingAsks
from actors.errors import AskTimeoutError


def _open(table: PendingAsks, timeout: float | None, target: str = "sink") -> tuple[int, Any]:
    loop = asyncio.get_running_loop()
    return table.open(loop, "node-b", target, timeout, "Ping")


async def _failed(future: asyncio.Future[object]) -> BaseException:
    with pytest.raises(AskTimeoutError) as caught:
        await asyncio.wait_for(asyncio.shield(future), 5)
    return caught.value


async def test_an_unanswered_ask_times_out_with_a_clear_error() -> None:
    table = PendingAsks()
    correlation_id, future = _open(table, 0.05)
    error = await _failed(future)
    assert str(error) == "no reply from node-b/sink to Ping within 0.05 s"
    assert isinstance(error, asyncio.TimeoutError)
    table.close(correlation_id)
    assert len(table) == 0 and table.armed == 0


async def test_asks_sharing_a_timeout_share_one_timer() -> None:
    loop = asyncio.get_running_loop()
    table = PendingAsks()
    timers = len(loop._scheduled)  # type: ignore[attr-defined]  # test-only peek at the heap
    asks = [_open(table, 30.0) for _ in range(1000)]
    assert len(loop._scheduled) == timers + 1  # type: ignore[attr-defined]
    assert table.armed == 1000
    for correlation_id, future in asks:
        future.cancel()
        table.close(correlation_id)
    assert len(table) == 0 and table.armed == 0


async def test_expiry_follows_arming_order_and_spares_answered_asks() -> None:
    table = PendingAsks()
    order: list[int] = []
    asks = []
    for index in range(5):
        correlation_id, future = _open(table, 0.05)
        future.add_done_callback(lambda _, index=index: order.append(index))
        asks.append((correlation_id, future))
    # Answer the oldest and a middle one before their deadlines: the timer, armed for the
    # oldest, must move on to the others instead of stopping.
    for index in (0, 2):
        correlation_id, future = asks[index]
        future.set_result(None)
        table.close(correlation_id)
    for index in (1, 3, 4):
        await _failed(asks[index][1])
    assert order == [0, 2, 1, 3, 4]
    for correlation_id, _ in asks:
        table.close(correlation_id)
    assert len(table) == 0 and table.armed == 0


async def test_a_short_timeout_armed_after_a_long_one_expires_first() -> None:
    table = PendingAsks()
    long_id, long_future = _open(table, 30.0)
    short_id, short_future = _open(table, 0.05)
    await _failed(short_future)
    assert not long_future.done()
    table.close(short_id)
    assert table.armed == 1
    long_future.cancel()
    table.close(long_id)
    assert table.armed == 0


async def test_an_emptied_queue_is_dropped_when_its_timer_fires() -> None:
    table = PendingAsks()
    # Many distinct timeout values must not leave a queue each behind.
    asks = [_open(table, 0.01 + i / 1000) for i in range(20)]
    for _, future in asks:
        await _failed(future)
    for correlation_id, _ in asks:
        table.close(correlation_id)
    assert not table._deadlines
    assert len(table) == 0


async def test_an_ask_without_timeout_waits_in_no_queue() -> None:
    table = PendingAsks()
    correlation_id, future = _open(table, None)
    assert len(table) == 1 and table.armed == 0
    assert table.waiting(correlation_id, "node-b") is not None
    assert table.waiting(correlation_id, "node-c") is None  # an answer from another node
    future.set_result(None)
    assert table.waiting(correlation_id, "node-b") is None  # already answered
    table.close(correlation_id)
    table.close(correlation_id)  # closing twice is harmless
    assert len(table) == 0
