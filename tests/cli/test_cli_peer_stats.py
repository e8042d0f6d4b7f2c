"""Node.stats(): the mesh's counters per peer, and ActorSystem.stats() carrying them."""

from __future__ import annotations

import asyncio

from actors import ActorSystem
from transport import Node, PeerStats

TIMEOUT = 20


async def test_packets_and_bytes_are_counted_on_both_sides() -> None:
    async with Node("a") as a, Node("b") as b:
        received: asyncio.Queue[object] = asyncio.Queue()
        b.on("message", lambda peer, packet: received.put_nowait(packet))
        assert await a.connect(b.info() or "") == "b"
        for i in range(10):
            assert a.send("b", [i, "x" * 100])
        for _ in range(10):
            await asyncio.wait_for(received.get(), TIMEOUT)
        sent, got = a.stats()["b"], b.stats()["a"]
        assert isinstance(sent, PeerStats)
        assert (sent.peer_id, sent.connected, got.peer_id, got.connected) == ("b", True, "a", True)
        assert (sent.packets_out, sent.packets_in) == (10, 0)
        assert (got.packets_in, got.packets_out) == (10, 0)
        # Ten frames of more than 100 bytes each, plus the handshake, went each way's counter.
        assert sent.bytes_out > 1000 and got.bytes_in > 1000
        assert sent.bytes_in > 0 and got.bytes_out > 0  # b's handshake and keep frames
        assert (sent.dropped, sent.queued, sent.reconnects) == (0, 0, 0)


async def test_queued_dropped_and_reconnects_of_a_kept_peer() -> None:
    async with Node("a", queue_max_packets=2, reconnect_initial=0.05, reconnect_max=0.1) as a:
        b = Node("b")
        await b.start()
        uri = b.info() or ""
        port = int(uri.rsplit(":", 1)[1])
        assert await a.connect(uri) == "b"
        gone = asyncio.Event()
        a.on("disconnect", lambda peer, reason: gone.set())
        await b.close()
        await asyncio.wait_for(gone.wait(), TIMEOUT)
        # Kept while away: two packets fit the reconnect queue, the other three are refused.
        assert [a.send("b", n) for n in range(5)] == [True, True, False, False, False]
        away = a.stats()["b"]
        assert (away.connected, away.queued, away.dropped, away.packets_out) == (False, 2, 3, 2)

        back = Node("b", port=port)
        received: asyncio.Queue[object] = asyncio.Queue()
        back.on("message", lambda peer, packet: received.put_nowait(packet))
        up = asyncio.Event()
        a.on("connect", lambda peer, uri: up.set())
        await back.start()
        try:
            await asyncio.wait_for(up.wait(), TIMEOUT)
            assert [await asyncio.wait_for(received.get(), TIMEOUT) for _ in range(2)] == [0, 1]
            again = a.stats()["b"]
            assert (again.connected, again.queued, again.reconnects) == (True, 0, 1)
            assert again.packets_out == 2 and again.dropped == 3
            assert back.stats()["a"].packets_in == 2
        finally:
            await back.close()


async def test_a_peer_nobody_keeps_is_forgotten_with_its_counters() -> None:
    async with Node("a") as a, Node("b") as b:
        await a.connect(b.info() or "")
        assert set(a.stats()) == {"b"}
        await a.disconnect("b")
        assert a.stats() == {}


async def test_the_actor_system_reports_the_mesh_counters() -> None:
    async with ActorSystem("sys-a") as a, ActorSystem("sys-b") as b:
        await a.connect(b.info() or "")
        stats = a.stats()
        assert set(stats.peer_stats) == {"sys-b"}
        assert stats.peer_stats["sys-b"].connected
