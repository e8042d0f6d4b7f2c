"""Peers in subprocesses that crash (kill -9), hang (SIGSTOP) and restart on the same port.

Case 1 (kill -9, detection, re-dial, reconnect queue) and case 6 (restart with the same id and
a new incarnation; a different id on the same port).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

import pytest
from fault_helpers import FAST, EventLog, NodeProcess, Proxies, uri_of

from transport import Node

Processes = Callable[..., Awaitable[NodeProcess]]
QUEUE = 20


def echoes(log: EventLog, peer: str) -> list[object]:
    return [packet[1] for packet in log.messages(peer) if packet[0] == "echo"]


async def test_a_killed_peer_is_detected_redialed_on_restart_and_gets_the_queued_packets_in_order(
    processes: Processes,
) -> None:
    b = await processes("b", **FAST)
    async with Node("a", queue_max_packets=QUEUE, **FAST) as a:
        log = EventLog(a)
        assert await a.connect(b.uri) == "b"
        for seq in range(10):
            assert a.send("b", seq)
        await log.wait_for(lambda: echoes(log, "b") == list(range(10)))

        loop = asyncio.get_running_loop()
        killed_at = loop.time()
        await b.kill()
        await log.wait_event(("disconnect", "b", "lost"))
        # The kernel closed the dead process's sockets: no need to wait for the heartbeat.
        assert log.time_of(("disconnect", "b", "lost")) - killed_at <= FAST["heartbeat_timeout"]

        # a keeps b: sends during the outage are queued up to the bound, then refused.
        results = [a.send("b", seq) for seq in range(10, 10 + QUEUE + 5)]
        assert results == [True] * QUEUE + [False] * 5

        restarted = await processes("b", port=b.port, **FAST)
        assert restarted.uri == b.uri
        await log.wait_for(lambda: log.count(("connect", "b")) == 2)
        await log.wait_for(lambda: len(echoes(log, "b")) == 10 + QUEUE)
        # The new process got exactly the queued packets, first, in the order they were sent.
        await restarted.wait_for(lambda: len(restarted.messages("a")) >= QUEUE)
        assert restarted.messages("a") == list(range(10, 10 + QUEUE))
        assert echoes(log, "b") == list(range(10 + QUEUE))
        assert log.lifecycle == [("connect", "b"), ("disconnect", "b", "lost"), ("connect", "b")]


async def test_a_hung_peer_is_declared_lost_by_heartbeat(processes: Processes) -> None:
    b = await processes("b", **FAST)
    async with Node("a", **FAST) as a:
        log = EventLog(a)
        assert await a.connect(b.uri) == "b"
        assert a.send("b", "ping")
        await log.wait_for(lambda: echoes(log, "b") == ["ping"])

        loop = asyncio.get_running_loop()
        b.signal(signal.SIGSTOP)  # sockets stay open; nothing is read, nothing is sent
        stopped_at = loop.time()
        timeout = FAST["heartbeat_timeout"]
        await log.wait_event(("disconnect", "b", "lost"), timeout=timeout + 2)
        waited = log.time_of(("disconnect", "b", "lost")) - stopped_at
        assert timeout - FAST["heartbeat_interval"] / 4 <= waited <= timeout + 1.0, waited
        assert a.peers == []
        assert a.send("b", "queued while hung") is True  # still kept: re-dialing
        await b.kill()


async def test_a_restart_with_the_same_id_replaces_the_stale_connection_at_once(
    processes: Processes, proxies: Proxies
) -> None:
    b = await processes("b", **FAST)
    # a's heartbeat timeout is long: the old connection must still look alive at the restart.
    async with Node("a", heartbeat_interval=0.05, heartbeat_timeout=30.0) as a:
        log = EventLog(a)
        proxy = await proxies(b.uri)
        assert await a.connect(proxy.uri) == "b"
        assert a.send("b", "old")
        await log.wait_for(lambda: echoes(log, "b") == ["old"])

        # A crash that takes the host's network with it: no FIN or RST reaches a.
        proxy.blackhole()
        await b.kill()
        restarted = await processes("b", port=b.port, **FAST)
        await restarted.command(op="connect", uri=uri_of(a))

        await log.wait_for(lambda: log.count(("connect", "b")) == 2)
        assert log.lifecycle == [
            ("connect", "b"),
            ("disconnect", "b", "restarted"),
            ("connect", "b"),
        ]
        assert a.peers == ["b"]
        assert a.send("b", "new")
        await log.wait_for(lambda: echoes(log, "b") == ["old", "new"])
        await restarted.wait_for(lambda: restarted.has("message"))
        assert restarted.messages("a") == ["new"]


async def test_a_different_id_on_the_same_port_is_reported_and_gets_nothing_meant_for_the_old(
    processes: Processes, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="transport")
    b = await processes("b", **FAST)
    async with Node("a", **FAST) as a:
        log = EventLog(a)
        assert await a.connect(b.uri) == "b"
        await b.kill()
        await log.wait_event(("disconnect", "b", "lost"))
        assert a.send("b", "for b only") is True  # queued for b

        c = await processes("c", port=b.port, **FAST)
        # a re-dials b's uri, finds c there: a connection to c, reported as such.
        await log.wait_event(("connect", "c"))
        await c.wait_for(lambda: c.has("connect", peer="a"))
        assert "now answers as 'c', not 'b'" in caplog.text
        assert a.is_kept("b") and "b" not in a.peers

        assert a.send("c", "for c")
        await log.wait_for(lambda: echoes(log, "c") == ["for c"])
        # The packet queued for b was not handed to c (same uri, different node).
        await c.wait_for(lambda: c.has("message"))
        assert c.messages("a") == ["for c"]
        assert log.lifecycle == [("connect", "b"), ("disconnect", "b", "lost"), ("connect", "c")]
