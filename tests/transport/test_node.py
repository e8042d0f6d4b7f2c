"""The asyncio Node over real loopback sockets: API, seed behaviours, dedup, keep, heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from support import DEADLINE, EventRecorder, FaultProxy, extra_sockets_closed

import transport
from transport import ConfigurationError, Node, NodeStateError


@asynccontextmanager
async def nodes(*ids: str, **options: Any) -> AsyncIterator[list[Node]]:
    async with AsyncExitStack() as stack:
        started = [await stack.enter_async_context(Node(node_id, **options)) for node_id in ids]
        yield started


# -- API --------------------------------------------------------------------------------------


async def test_info_is_none_before_start_and_a_tcp_uri_after() -> None:
    node = Node("solo")
    assert node.info() is None
    assert node.peers == []
    async with node:
        uri = node.info()
        assert uri is not None and uri.startswith("tcp://127.0.0.1:")
        host, port = transport.parse_uri(uri)
        assert host == "127.0.0.1" and port > 0
        assert node.id == "solo"
        assert "solo" in repr(node)
    await node.close()  # idempotent
    with pytest.raises(NodeStateError):
        await node.connect(uri)


async def test_listening_event_fires_with_the_uri() -> None:
    node = Node("l")
    seen: list[str] = []
    node.on("listening", seen.append)
    async with node:
        assert seen == [node.info()]


async def test_async_handlers_are_awaited() -> None:
    async with nodes("a", "b") as (a, b):
        got: asyncio.Queue[Any] = asyncio.Queue()

        async def on_message(peer: str, packet: Any) -> None:
            await got.put((peer, packet))

        b.on("message", on_message)
        peer = await a.connect(b.info() or "")
        assert a.send(peer, "hi")
        assert await asyncio.wait_for(got.get(), DEADLINE) == ("a", "hi")


async def test_a_raising_handler_is_logged_and_the_node_carries_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with nodes("a", "b") as (a, b):
        rec = EventRecorder(b)

        def explode(peer: str, packet: Any) -> None:
            raise RuntimeError("handler bug")

        b.on("message", explode)
        peer = await a.connect(b.info() or "")
        a.send(peer, 1)
        a.send(peer, 2)
        await rec.wait_for(lambda: len(rec.received) == 2)
        assert "handler bug" in caplog.text
        assert b.peers == ["a"]


def test_bad_arguments_are_refused_clearly() -> None:
    with pytest.raises(ConfigurationError, match="node_id"):
        Node("")
    with pytest.raises(ConfigurationError, match="port"):
        Node("x", port=70000)
    with pytest.raises(ConfigurationError, match="heartbeat"):
        Node("x", heartbeat_interval=5, heartbeat_timeout=1)
    with pytest.raises(ConfigurationError, match="unknown event"):
        Node("x").on("bogus", print)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="uri"):
        transport.parse_uri("http://example:80")


async def test_connect_to_an_unreachable_port_raises_connect_error() -> None:
    async with nodes("a") as (a,):
        probe = Node("probe")
        await probe.start()
        uri = probe.info() or ""
        await probe.close()
        with pytest.raises(transport.ConnectError):
            await a.connect(uri)


async def test_an_unserializable_packet_raises_encoding_error() -> None:
    async with nodes("a", "b") as (a, b):
        peer = await a.connect(b.info() or "")
        with pytest.raises(transport.EncodingError):
            a.send(peer, object())


# -- seed behaviours --------------------------------------------------------------------------


async def test_two_nodes_exchange_packets_both_ways() -> None:
    async with nodes("left", "right") as (left, right):
        rec_left, rec_right = EventRecorder(left), EventRecorder(right)
        peer = await left.connect(right.info() or "")
        assert peer == "right"
        await rec_right.wait_for(lambda: ("connect", "left") in rec_right.events)
        assert left.send("right", {"from": "left"})
        assert right.send("left", {"from": "right", "raw": b"\x00\x01"})
        await rec_left.wait_for(lambda: len(rec_left.received) == 1)
        await rec_right.wait_for(lambda: len(rec_right.received) == 1)
        assert rec_right.received == [("left", {"from": "left"})]
        assert rec_left.received == [("right", {"from": "right", "raw": b"\x00\x01"})]


async def test_packets_handlers_get_each_read_as_a_list_before_message_handlers() -> None:
    async with nodes("left", "right") as (left, right):
        rec = EventRecorder(right)
        log: list[tuple[str, Any]] = []
        right.on("packets", lambda peer, packets: log.append(("packets", (peer, list(packets)))))
        right.on("message", lambda peer, packet: log.append(("message", (peer, packet))))
        await left.connect(right.info() or "")
        sent = [{"n": n, "pad": "x" * (n % 7)} for n in range(500)]
        for packet in sent:  # one event-loop turn: coalesced, usually one or a few reads
            assert left.send("right", packet)
        await rec.wait_for(lambda: len(rec.received) == len(sent))
        batches = [batch for kind, (_, batch) in log if kind == "packets"]
        assert [p for batch in batches for p in batch] == sent
        # Each batch is announced first, then its packets one by one to message handlers.
        index = 0
        for batch in batches:
            assert log[index] == ("packets", ("left", batch))
            assert log[index + 1 : index + 1 + len(batch)] == [
                ("message", ("left", p)) for p in batch
            ]
            index += 1 + len(batch)
        assert index == len(log)


async def test_a_lone_send_is_written_at_once_and_a_burst_is_coalesced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from transport._link import Link

    writes: list[int] = []
    original = Link.write

    def counting_write(self: Link, data: bytes) -> None:
        if self.owner is left:
            writes.append(len(data))
        original(self, data)

    async with nodes("left", "right") as (left, right):
        rec = EventRecorder(right)
        await left.connect(right.info() or "")
        await rec.wait_for(lambda: ("connect", "left") in rec.events)
        monkeypatch.setattr(Link, "write", counting_write)
        assert left.send("right", {"lone": True})
        assert len(writes) == 1  # handed to the socket inside send()
        await rec.wait_for(lambda: len(rec.received) == 1)
        writes.clear()
        burst = [{"n": n} for n in range(1000)]
        for packet in burst:  # one event-loop turn
            assert left.send("right", packet)
        await rec.wait_for(lambda: len(rec.received) == 1 + len(burst))
        assert [p for _, p in rec.received[1:]] == burst
        # The burst's first frame goes out at once and the rest leave in a coalesced write.
        # Whether two sends count as one burst depends on the time between them (20 us), so
        # a pause in the loop (a collection, a busy machine) may add a write: the bound
        # leaves room for that while a send-per-write transport would make 1000.
        assert 1 <= len(writes) <= len(burst) // 20, writes


async def test_replies_sent_while_a_read_is_handled_leave_in_one_write_per_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A handler answering each packet of a read: the answers are written together when the
    # read's handling ends, not the first at once and the rest in a second write.
    from transport._link import Link

    writes_per_read: list[int] = []
    original_write, original_received = Link.write, Link.data_received

    def counting_write(self: Link, data: bytes) -> None:
        if self.owner is right and writes_per_read:
            writes_per_read[-1] += 1
        original_write(self, data)

    def counting_received(self: Link, data: bytes | memoryview) -> None:
        if self.owner is right:
            writes_per_read.append(0)
        original_received(self, data)

    async with nodes("left", "right") as (left, right):
        rec = EventRecorder(left)
        right.on("message", lambda peer_id, packet: right.send(peer_id, ["re", packet]))
        await left.connect(right.info() or "")
        await rec.wait_for(lambda: ("connect", "right") in rec.events)
        monkeypatch.setattr(Link, "write", counting_write)
        monkeypatch.setattr(Link, "data_received", counting_received)
        burst = list(range(500))
        for n in burst:  # one event-loop turn: a few reads at the other end
            assert left.send("right", n)
        await rec.wait_for(lambda: len(rec.received) == len(burst))
        assert [p for _, p in rec.received] == [["re", n] for n in burst]
        answered = [count for count in writes_per_read if count]
        assert answered and all(count == 1 for count in writes_per_read), writes_per_read


async def test_a_burst_is_coalesced_even_when_each_write_is_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Writes that take longer than the burst gap (many peers, large packets, a slow machine)
    # must not turn every send of a burst into a write of its own.
    import time

    from transport._link import Link

    writes: dict[str, int] = {}
    original = Link.write

    def slow_write(self: Link, data: bytes) -> None:
        if self.owner is hub:
            conn = hub._core.connection(self.handle)
            assert conn is not None and conn.peer is not None
            peer = conn.peer.node_id
            writes[peer] = writes.get(peer, 0) + 1
            until = time.perf_counter() + 100e-6
            while time.perf_counter() < until:  # stands for a slow socket write
                pass
        original(self, data)

    ids = [f"p{n}" for n in range(4)]
    async with nodes("hub", *ids) as (hub, *spokes):
        recorders = [EventRecorder(node) for node in spokes]
        for node in spokes:
            await hub.connect(node.info() or "")
        for rec in recorders:
            await rec.wait_for(lambda rec=rec: ("connect", "hub") in rec.events)
        monkeypatch.setattr(Link, "write", slow_write)
        for n in range(200):  # one event-loop turn
            assert hub.send(ids, {"n": n}) == len(ids)
        for rec in recorders:
            await rec.wait_for(lambda rec=rec: len(rec.received) == 200)
            assert [p["n"] for _, p in rec.received] == list(range(200))
        assert sorted(writes) == ids
        # 200 sends per peer; a write per send would make 200 (see the test above for the
        # slack the bound leaves).
        assert all(1 <= count <= 10 for count in writes.values()), writes


async def test_send_to_an_unknown_id_returns_false() -> None:
    async with nodes("a") as (a,):
        assert a.send("nobody", {"x": 1}) is False
        assert a.send(["nobody", "nobody-else"], {"x": 1}) == 0


async def test_send_to_a_list_reaches_every_listed_peer_and_counts_them() -> None:
    async with nodes("hub", "p1", "p2", "p3") as (hub, *spokes):
        recorders = [EventRecorder(node) for node in spokes]
        for node in spokes:
            await hub.connect(node.info() or "")
        ids = [node.id for node in spokes]
        assert hub.send([*ids, "ghost"], {"fan": "out"}) == 3
        for rec in recorders:
            await rec.wait_for(lambda rec=rec: len(rec.received) == 1)
            assert rec.received == [("hub", {"fan": "out"})]


async def test_multi_dispatch_encodes_the_packet_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from transport import _node

    calls: list[Any] = []
    real_encode = _node.encode_data

    def counting_encode(packet: Any) -> bytes:
        calls.append(packet)
        return real_encode(packet)

    async with nodes("hub", "p1", "p2", "p3", "p4", "p5") as (hub, *spokes):
        recorders = [EventRecorder(node) for node in spokes]
        for node in spokes:
            await hub.connect(node.info() or "")
        monkeypatch.setattr(_node, "encode_data", counting_encode)
        assert hub.send([node.id for node in spokes], {"once": True}) == 5
        assert calls == [{"once": True}]
        for rec in recorders:
            await rec.wait_for(lambda rec=rec: rec.received == [("hub", {"once": True})])


async def test_a_counter_bounces_a_thousand_times() -> None:
    async with nodes("left", "right") as (left, right):
        finished = asyncio.Event()
        limit = 1000

        def bounce(node: Node) -> Callable[[str, Any], None]:
            def on_message(peer: str, packet: dict[str, Any]) -> None:
                if packet["total"] >= limit:
                    finished.set()
                    return
                node.send(peer, {"type": "counter", "total": packet["total"] + 1})

            return on_message

        left.on("message", bounce(left))
        right.on("message", bounce(right))
        totals = EventRecorder(left), EventRecorder(right)
        peer = await left.connect(right.info() or "")
        assert left.send(peer, {"type": "counter", "total": 0})
        await asyncio.wait_for(finished.wait(), DEADLINE)
        # Every count arrived once, in order, alternating sides: right got the even totals.
        assert [p["total"] for p in totals[1].messages()] == list(range(0, limit + 1, 2))
        assert [p["total"] for p in totals[0].messages()] == list(range(1, limit, 2))


# -- dedup ------------------------------------------------------------------------------------


async def test_simultaneous_connect_leaves_one_connection_200_times() -> None:
    for round_number in range(200):
        async with nodes(f"a{round_number}", f"b{round_number}") as (a, b):
            rec_a, rec_b = EventRecorder(a), EventRecorder(b)
            got = await asyncio.gather(a.connect(b.info() or ""), b.connect(a.info() or ""))
            assert got == [b.id, a.id]
            assert a.peers == [b.id] and b.peers == [a.id]
            # Both sides settled: one live connection each way, one connect event each.
            await extra_sockets_closed(a, b)
            assert len(a._links) == 1 and len(b._links) == 1
            # Two sockets were really opened (one each way) and one was closed as a duplicate.
            assert a._core.opened == 2 and b._core.opened == 2
            assert rec_a.events == [("connect", b.id)]
            assert rec_b.events == [("connect", a.id)]
            # The surviving connection carries packets.
            a.send(b.id, round_number)
            await rec_b.wait_for(lambda rec_b=rec_b: len(rec_b.received) == 1)


async def test_a_second_connect_to_a_connected_peer_returns_its_id() -> None:
    async with nodes("a", "b") as (a, b):
        rec_b = EventRecorder(b)
        assert await a.connect(b.info() or "") == "b"
        assert await a.connect(b.info() or "") == "b"
        await extra_sockets_closed(a, b)
        assert len(a._links) == 1
        assert rec_b.events == [("connect", "a")]


# -- incarnation ------------------------------------------------------------------------------


async def test_a_restarted_peer_is_accepted_at_once_after_a_restarted_disconnect() -> None:
    async with nodes("a") as (a,):
        rec_a = EventRecorder(a)
        b1 = Node("b", heartbeat_timeout=30.0)
        await b1.start()
        port = transport.parse_uri(b1.info() or "")[1]
        assert await b1.connect(a.info() or "") == "a"
        await rec_a.wait_for(lambda: rec_a.events == [("connect", "b")])
        # Simulate a crash: the old process's sockets stay open, so `a` sees no EOF.
        old_links = list(b1._links.values())
        for link in old_links:
            assert link.transport is not None
            link.transport.pause_reading()
        assert b1._server is not None
        b1._server.close()  # free the port; the crashed process's sockets stay half-open
        b2 = Node("b", port=port)
        try:
            await b2.start()
            assert b2.incarnation != b1.incarnation
            assert await b2.connect(a.info() or "") == "a"
            await rec_a.wait_for(lambda: len(rec_a.events) == 3)
            assert rec_a.events == [
                ("connect", "b"),
                ("disconnect", "b", "restarted"),
                ("connect", "b"),
            ]
            assert a.peers == ["b"]
        finally:
            await b2.close()
            await b1.close()


# -- keep / reconnect -----------------------------------------------------------------------------


async def test_a_kept_peer_is_redialed_and_queued_packets_arrive_in_order() -> None:
    async with nodes("a", "b", reconnect_initial=0.05, reconnect_max=0.2) as (a, b):
        rec_a, rec_b = EventRecorder(a), EventRecorder(b)
        await a.connect(b.info() or "")
        await rec_b.wait_for(lambda: ("connect", "a") in rec_b.events)
        assert a.is_kept("b")
        # Kill the connection from the test: both sides see the socket close.
        (link,) = list(a._links.values())
        assert link.transport is not None
        link.transport.abort()
        await rec_a.wait_for(lambda: ("disconnect", "b", "lost") in rec_a.events)
        assert "b" not in a.peers and not a.is_connected("b")
        for sequence in range(100):
            assert a.send("b", sequence) is True  # queued while reconnecting
        await rec_b.wait_for(lambda: len(rec_b.received) == 100)
        assert [packet for _, packet in rec_b.received] == list(range(100))
        assert a.peers == ["b"] and a.is_connected("b")
        assert not a.is_connected("a") and not a.is_connected("stranger")
        assert rec_a.events.count(("connect", "b")) == 2


async def test_re_dials_in_progress_are_bounded_by_max_dials(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with nodes("a", reconnect_initial=0.01, reconnect_max=0.02, max_dials=2) as (a,):
        peers = [Node(f"p{n}") for n in range(4)]
        for peer in peers:
            await peer.start()
            await a.connect(peer.info() or "")
        in_flight: list[str] = []
        most = 0
        dialled: set[str] = set()
        release = asyncio.Event()
        changed = asyncio.Condition()

        async def held_dial(uri: str, timeout: float) -> str:
            nonlocal most
            async with changed:
                in_flight.append(uri)
                dialled.add(uri)
                most = max(most, len(in_flight))
                changed.notify_all()
            try:
                await release.wait()
                raise transport.ConnectError(f"held dial to {uri} failed")
            finally:
                in_flight.remove(uri)

        monkeypatch.setattr(a, "_dial", held_dial)
        for peer in peers:
            await peer.close()
        async with asyncio.timeout(DEADLINE), changed:
            # Four peers to re-dial, two slots: two dials are held and the others wait.
            await changed.wait_for(lambda: len(in_flight) == 2)
        assert a._dial_slots.locked()
        release.set()
        async with asyncio.timeout(DEADLINE), changed:
            await changed.wait_for(lambda: len(dialled) == 4)
        assert most == 2
        for peer in peers:
            a.keep(peer.id, False)


async def test_max_dials_must_be_a_positive_int() -> None:
    for bad in (0, -1, 1.5):
        with pytest.raises(ConfigurationError, match="max_dials"):
            Node("a", max_dials=bad)  # type: ignore[arg-type]


async def test_the_reconnect_queue_is_bounded() -> None:
    async with nodes("a", "b", queue_max_packets=5, reconnect_initial=5.0, reconnect_max=5.0) as (
        a,
        b,
    ):
        rec_a = EventRecorder(a)
        await a.connect(b.info() or "")
        await b.close()
        await rec_a.wait_for(lambda: ("disconnect", "b", "closed") in rec_a.events)
        assert [a.send("b", n) for n in range(7)] == [True] * 5 + [False] * 2


async def test_an_unkept_peer_is_dropped_and_send_returns_false() -> None:
    async with nodes("a", "b") as (a, b):
        rec_a, rec_b = EventRecorder(a), EventRecorder(b)
        await a.connect(b.info() or "")
        await rec_b.wait_for(lambda: ("connect", "a") in rec_b.events)
        assert not b.is_kept("a")  # b never dialed a
        a.keep("b", False)
        (link,) = list(b._links.values())
        assert link.transport is not None
        link.transport.abort()
        await rec_b.wait_for(lambda: ("disconnect", "a", "lost") in rec_b.events)
        await rec_a.wait_for(lambda: ("disconnect", "b", "lost") in rec_a.events)
        assert b.send("a", "anyone?") is False
        assert a.send("b", "anyone?") is False


async def test_disconnect_closes_and_stops_keeping() -> None:
    async with nodes("a", "b") as (a, b):
        rec_a, rec_b = EventRecorder(a), EventRecorder(b)
        await a.connect(b.info() or "")
        await rec_b.wait_for(lambda: ("connect", "a") in rec_b.events)
        await a.disconnect("b")
        await rec_b.wait_for(lambda: ("disconnect", "a", "closed") in rec_b.events)
        assert rec_a.events == [("connect", "b"), ("disconnect", "b", "closed")]
        assert not a.is_kept("b") and a.peers == [] and b.peers == []


async def test_a_cancelled_redial_does_not_unregister_the_one_that_replaced_it() -> None:
    async with nodes("a", "b", reconnect_initial=5.0, reconnect_max=5.0) as (a, b):
        rec_a = EventRecorder(a)
        uri = b.info() or ""
        await a.connect(uri)
        await b.close()
        await rec_a.wait_for(lambda: ("disconnect", "b", "closed") in rec_a.events)
        first = a._redialers["b"]  # re-dialing the kept peer; it first sleeps 2.5-5 s
        await a.disconnect("b")  # cancels it: the task ends at a later loop turn
        a._core.keep("b", True, uri)  # kept again at once: a new re-dial starts
        a._pump()
        second = a._redialers["b"]
        assert second is not first
        await asyncio.wait([first], timeout=DEADLINE)
        assert first.cancelled()
        # The first one's end must not drop the second from the table (close() cancels
        # what is there, and a third re-dial would start beside an untracked second).
        assert a._redialers.get("b") is second


# -- heartbeats -------------------------------------------------------------------------------


async def test_a_silent_peer_is_declared_lost() -> None:
    options = {"heartbeat_interval": 0.05, "heartbeat_timeout": 0.4}
    async with nodes("a", "b", **options) as (a, b):
        rec_a = EventRecorder(a)
        await a.connect(b.info() or "")
        a.keep("b", False)
        # Half-open from a's point of view: b stops reading and stops its timers.
        assert b._ticker is not None
        b._ticker.cancel()
        for link in list(b._links.values()):
            assert link.transport is not None
            link.transport.pause_reading()
        # The shell's ticker drives the core's heartbeat rules (their timing is tested with the
        # time passed in, in test_core.py).
        await rec_a.wait_for(lambda: ("disconnect", "b", "lost") in rec_a.events)
        assert "b" not in a.peers


async def test_a_packet_above_max_frame_size_is_refused_at_the_sender() -> None:
    async with nodes("a", "b", max_frame_size=1024) as (a, b):
        rec_b = EventRecorder(b)
        peer = await a.connect(b.info() or "")
        with pytest.raises(transport.PacketTooLarge):
            a.send(peer, b"x" * 2000)
        assert a.send(peer, b"x" * 100)
        await rec_b.wait_for(lambda: rec_b.received == [("a", b"x" * 100)])
        assert a.peers == ["b"]


async def test_an_advertised_uri_is_announced_and_used_to_redial() -> None:
    # The proxy stands for the public address in front of b (a NAT, a published port).
    async with FaultProxy("tcp://127.0.0.1:9") as front:
        b = Node("b", advertise=front.uri, reconnect_initial=0.05)
        async with nodes("a", reconnect_initial=0.05) as (a,), b:
            assert b.info() == front.uri
            assert b._server is not None
            front.retarget(f"tcp://127.0.0.1:{b._server.sockets[0].getsockname()[1]}")
            uris: list[str | None] = []
            a.on("connect", lambda peer, uri: uris.append(uri))
            rec_a = EventRecorder(a)
            assert await b.connect(a.info() or "") == "a"  # b dials in: a learns b's uri
            b.keep("a", False)
            await rec_a.wait_for(lambda: ("connect", "b") in rec_a.events)
            assert uris == [front.uri]
            assert front.client_bytes == []  # nothing went through the front door yet
            a.keep("b", True)
            (link,) = list(a._links.values())
            assert link.transport is not None
            link.transport.abort()
            await rec_a.wait_for(lambda: rec_a.events.count(("connect", "b")) == 2)
            # a re-dialed b at the uri b advertised, not at the address b dialed from.
            assert len(front.client_bytes) == 1
            assert a.peers == ["b"]


async def test_keeping_a_peer_whose_uri_is_unknown_is_refused_clearly() -> None:
    async with nodes("a") as (a,):
        with pytest.raises(ConfigurationError, match="does not know its uri"):
            a.keep("stranger", True)
        assert not a.is_kept("stranger")
        assert a.send("stranger", "queued?") is False  # nothing is queued for it
        a.keep("stranger", False)  # stopping keeping an unknown peer is a no-op
