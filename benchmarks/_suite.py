"""The measurements. Each coroutine returns plain numbers; ``__main__`` turns them into rows."""

from __future__ import annotations

import asyncio
import collections
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from ._util import FrameReader, encode_frame, packet_for, worker

Progress = Callable[[str], None]


class _Inbox:
    """A deque with one waiter: replies arriving from a protocol or an event handler."""

    def __init__(self) -> None:
        self.items: collections.deque[Any] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None

    def push(self, item: Any) -> None:
        self.items.append(item)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self, timeout: float = 30.0) -> Any:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(self.waiter, timeout)
        return self.items.popleft()


def _batch_for(packet: Any) -> int:
    size = len(encode_frame(packet))
    return max(1, min(1000, (1 << 20) // size))


# --- raw asyncio baseline ---------------------------------------------------------------------


class _RawClient(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = FrameReader()
        self.inbox = _Inbox()
        self.paused = False
        self.drain: asyncio.Future[None] | None = None
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        for body in self.reader.feed(data):
            self.inbox.push(body)

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        if self.drain is not None and not self.drain.done():
            self.drain.set_result(None)


async def _raw_connect(port: int) -> tuple[asyncio.Transport, _RawClient]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(_RawClient, "127.0.0.1", port)
    return transport, proto  # type: ignore[return-value]


async def _raw_oneway(
    transport: asyncio.Transport, proto: _RawClient, n: int, packet: Any
) -> float:
    batch = _batch_for(["m", packet])
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    sent = 0
    while sent < n:
        k = min(batch, n - sent)
        # One encode per message (as a framework does), one write per batch.
        transport.write(b"".join([encode_frame(["m", packet]) for _ in range(k)]))
        sent += k
        if proto.paused:
            proto.drain = loop.create_future()
            await proto.drain
        else:
            await asyncio.sleep(0)
    transport.write(encode_frame(["end"]))
    reply = await proto.inbox.get()
    elapsed = time.perf_counter() - start
    assert reply == ["got", n], reply
    return n / elapsed


async def _raw_pingpong(transport: asyncio.Transport, proto: _RawClient, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        transport.write(encode_frame(["ping", i]))
        await proto.inbox.get()
    return n / (time.perf_counter() - start)


async def baseline(cfg: Any, loop: str, sizes: list[str], progress: Progress) -> dict[str, float]:
    out: dict[str, float] = {}
    async with worker("raw", loop=loop) as sink:
        transport, proto = await _raw_connect(sink.info["port"])
        await _raw_oneway(transport, proto, cfg.warmup, packet_for("40 B"))
        for size in sizes:
            n = cfg.oneway_n[size]
            out[f"oneway {size}"] = max(
                [
                    await _raw_oneway(transport, proto, n, packet_for(size))
                    for _ in range(cfg.repeat)
                ]
            )
            progress(f"raw one-way {size}: {out[f'oneway {size}']:,.0f} msgs/s")
        await _raw_pingpong(transport, proto, cfg.warmup // 10)
        out["pingpong"] = max(
            [await _raw_pingpong(transport, proto, cfg.rtt_n) for _ in range(cfg.repeat)]
        )
        progress(f"raw ping-pong: {out['pingpong']:,.0f} round trips/s")
        transport.close()
    return out


# --- transport ----------------------------------------------------------------------------------


async def _node_client(uris: list[str]) -> tuple[Any, list[str], _Inbox]:
    from transport import Node

    node = Node("bench-driver")
    inbox = _Inbox()
    node.on("message", lambda peer, packet: inbox.push((peer, packet)))
    await node.start()
    peers = [await node.connect(uri) for uri in uris]
    return node, peers, inbox


async def _node_oneway(node: Any, peers: list[str], inbox: _Inbox, n: int, packet: Any) -> float:
    """``n`` sends (to one peer or, multi-dispatch, to all ``peers``); returns sends/s."""
    target: Any = peers[0] if len(peers) == 1 else peers
    want = 1 if len(peers) == 1 else len(peers)
    batch = _batch_for(["m", packet])
    send = node.send
    body = ["m", packet]
    start = time.perf_counter()
    sent = 0
    while sent < n:
        k = min(batch, n - sent)
        for _ in range(k):
            while send(target, body) != want:
                # Past the high-water mark: wait for the slowest peer to drain. A partial
                # multi-dispatch cannot happen here since every peer gets the same stream.
                for peer in peers:
                    await node.drained(peer)
        sent += k
        await asyncio.sleep(0)
    for peer in peers:
        while not node.send(peer, ["end"]):
            await node.drained(peer)
    for _ in peers:
        _, reply = await inbox.get()
        assert reply == ["got", n], reply
    return n / (time.perf_counter() - start)


async def _node_pingpong(node: Any, peer: str, inbox: _Inbox, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        node.send(peer, ["ping", i])
        await inbox.get()
    return n / (time.perf_counter() - start)


async def transport_runs(
    cfg: Any, loop: str, sizes: list[str], progress: Progress
) -> dict[str, float]:
    out: dict[str, float] = {}
    async with worker("nodes", loop=loop) as sink:
        node, peers, inbox = await _node_client(sink.info["uris"])
        try:
            await _node_oneway(node, peers, inbox, cfg.warmup, packet_for("40 B"))
            for size in sizes:
                n = cfg.oneway_n[size]
                out[f"oneway {size}"] = max(
                    [
                        await _node_oneway(node, peers, inbox, n, packet_for(size))
                        for _ in range(cfg.repeat)
                    ]
                )
                progress(f"transport one-way {size}: {out[f'oneway {size}']:,.0f} msgs/s")
            await _node_pingpong(node, peers[0], inbox, cfg.warmup // 10)
            out["pingpong"] = max(
                [await _node_pingpong(node, peers[0], inbox, cfg.rtt_n) for _ in range(cfg.repeat)]
            )
            progress(f"transport ping-pong: {out['pingpong']:,.0f} round trips/s")
        finally:
            await node.close()
    return out


async def multi_dispatch(
    cfg: Any, loop: str, fanouts: list[int], progress: Progress
) -> dict[str, float]:
    from transport import _node

    out: dict[str, float] = {}
    original = _node.encode_data  # type: ignore[attr-defined]
    encoded = [0, 0]

    def counting_encode(packet: Any) -> bytes:
        frame = original(packet)
        encoded[0] += 1
        encoded[1] += len(frame)
        return frame

    async with worker("nodes", "--count", str(max(fanouts)), loop=loop) as sink:
        node, peers, inbox = await _node_client(sink.info["uris"])
        _node.encode_data = counting_encode  # type: ignore[attr-defined]
        try:
            for k in fanouts:
                n = cfg.multi_n
                await _node_oneway(node, peers[:k], inbox, cfg.warmup // 10, packet_for("40 B"))
                encoded[:] = [0, 0]
                rate = max(
                    [
                        await _node_oneway(node, peers[:k], inbox, n, packet_for("40 B"))
                        for _ in range(cfg.repeat)
                    ]
                )
                out[f"{k} sends"] = rate
                out[f"{k} deliveries"] = rate * k
                # Bytes encoded per send(): the "end" markers are sent one peer at a time.
                sends = cfg.repeat * n
                out[f"{k} bytes"] = (encoded[1] - cfg.repeat * k * len(original(["end"]))) / sends
                progress(
                    f"multi-dispatch to {k}: {rate:,.0f} sends/s, {rate * k:,.0f} deliveries/s, "
                    f"{out[f'{k} bytes']:.0f} B encoded per send"
                )
        finally:
            _node.encode_data = original  # type: ignore[attr-defined]
            await node.close()
    return out


# --- actors -------------------------------------------------------------------------------------


async def _tell_run(system: Any, targets: list[str], n: int) -> float:
    from ._messages import Count, Sample

    before = [(await system.ask(t, "sink", Count())).total for t in targets]
    sample = Sample(seq=1, name="benchmark", value=2.5)
    target: Any = targets[0] if len(targets) == 1 else targets
    want: Any = True if len(targets) == 1 else len(targets)
    tell = system.tell
    start = time.perf_counter()
    sent = 0
    while sent < n:
        k = min(1000, n - sent)
        for _ in range(k):
            while tell(target, "sink", sample) != want:
                for peer in targets:
                    await system.node.drained(peer)
        sent += k
        await asyncio.sleep(0)
    for peer in targets:
        await system.node.drained(peer)
    after = [(await system.ask(t, "sink", Count(), timeout=60)).total for t in targets]
    elapsed = time.perf_counter() - start
    assert [a - b for a, b in zip(after, before, strict=True)] == [n] * len(targets)
    return n / elapsed


async def _ask_run(system: Any, target: str, n: int) -> float:
    from ._messages import Ping

    ask = system.ask
    start = time.perf_counter()
    for i in range(n):
        await ask(target, "sink", Ping(seq=i))
    return n / (time.perf_counter() - start)


async def actor_runs(cfg: Any, loop: str, full: bool, progress: Progress) -> dict[str, float]:
    from actors import ActorSystem

    from ._messages import Sink

    out: dict[str, float] = {}
    async with (
        worker("raw", loop=loop) as raw,
        worker("actors", loop=loop) as sink,
        ActorSystem("bench-driver") as system,
    ):
        peer = await system.connect(sink.info["uris"][0])
        raw_transport, raw_proto = await _raw_connect(raw.info["port"])
        await _tell_run(system, [peer], cfg.warmup)
        await _raw_oneway(raw_transport, raw_proto, cfg.warmup, packet_for("40 B"))
        # Tell and the raw one-way in turn, each keeping its best: both see the same load.
        tells, raws = [], []
        for _ in range(cfg.repeat):
            tells.append(await _tell_run(system, [peer], cfg.tell_n))
            raws.append(await _raw_oneway(raw_transport, raw_proto, cfg.tell_n, packet_for("40 B")))
        raw_transport.close()
        out["tell"] = max(tells)
        out["raw oneway"] = max(raws)
        progress(
            f"actor tell, two processes: {out['tell']:,.0f} msgs/s "
            f"(raw one-way in turn: {out['raw oneway']:,.0f} msgs/s)"
        )
        await _ask_run(system, peer, cfg.warmup // 10)
        out["ask"] = max([await _ask_run(system, peer, cfg.rtt_n) for _ in range(cfg.repeat)])
        progress(f"actor ask, two processes: {out['ask']:,.0f} round trips/s")
    async with ActorSystem("bench-a") as a, ActorSystem("bench-b") as b:
        b.spawn("sink", Sink())
        a.spawn("sink", Sink())
        peer = await a.connect(b.info())
        await _ask_run(a, peer, cfg.warmup // 10)
        out["ask 1proc"] = max([await _ask_run(a, peer, cfg.rtt_n) for _ in range(cfg.repeat)])
        progress(f"actor ask, two systems in one process: {out['ask 1proc']:,.0f} round trips/s")
        if full:
            out["ask local"] = max([await _ask_run(a, a.id, cfg.rtt_n) for _ in range(cfg.repeat)])
            progress(f"actor ask, same system: {out['ask local']:,.0f} round trips/s")
            await _tell_run(a, [a.id], cfg.warmup)
            out["tell local"] = max(
                [await _tell_run(a, [a.id], cfg.tell_n) for _ in range(cfg.repeat)]
            )
            progress(f"actor tell, same system: {out['tell local']:,.0f} msgs/s")
    return out


# --- scale --------------------------------------------------------------------------------------


async def _mesh(n: int, limit: int = 48) -> tuple[list[Any], float]:
    """Start ``n`` nodes and dial every pair once; return them and the seconds to settle."""
    from transport import Node

    nodes = [Node(f"mesh-{i:03d}", heartbeat_timeout=30.0) for i in range(n)]
    for node in nodes:
        await node.start()
    gate = asyncio.Semaphore(limit)

    async def dial(a: Any, b: Any) -> None:
        async with gate:
            await a.connect(b.info(), timeout=30)

    start = time.perf_counter()
    await asyncio.gather(*(dial(nodes[i], nodes[j]) for i in range(n) for j in range(i + 1, n)))
    while any(len(node.peers) != n - 1 for node in nodes):  # noqa: ASYNC110 - polled on purpose
        await asyncio.sleep(0.005)
    return nodes, time.perf_counter() - start


async def _burst(nodes: list[Any], per_pair: int, timeout: float) -> tuple[int, int]:
    """Every node sends ``per_pair`` packets to every other; return (expected, lost)."""
    received = [0]

    def on_message(peer: str, packet: Any) -> None:
        received[0] += 1

    for node in nodes:
        node.on("message", on_message)
    ids = [node.id for node in nodes]
    expected = 0
    for round_ in range(per_pair):
        for node in nodes:
            others = [i for i in ids if i != node.id]
            while True:
                handed = node.send(others, ["burst", node.id, round_])
                if handed == len(others):
                    break
                raise RuntimeError(f"{node.id} handed a burst packet to {handed}/{len(others)}")
            expected += len(others)
        await asyncio.sleep(0)
    deadline = time.perf_counter() + timeout
    while received[0] < expected and time.perf_counter() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    return expected, expected - received[0]


async def scale(cfg: Any, progress: Progress) -> dict[str, float]:
    out: dict[str, float] = {}
    for n in cfg.mesh_sizes:
        nodes, settle = await _mesh(n)
        try:
            out[f"settle {n}"] = settle
            expected, lost = await _burst(nodes, cfg.burst_per_pair, timeout=30)
            out[f"burst {n}"] = expected
            out[f"lost {n}"] = lost
            progress(
                f"{n}-node mesh: settled in {settle:.2f} s; burst of {expected:,} msgs, {lost} lost"
            )
        finally:
            await asyncio.gather(*(node.close() for node in nodes))
    out.update(await _memory(cfg, progress))
    return out


async def _memory(cfg: Any, progress: Progress) -> dict[str, float]:
    from actors import ActorSystem

    from ._messages import Idle

    out: dict[str, float] = {}
    n = cfg.memory_mesh
    gc.collect()
    tracemalloc.start()
    try:
        from transport import Node

        # Start the nodes first: only what the connections add is counted.
        warm, _ = await _mesh(2)
        await asyncio.gather(*(node.close() for node in warm))
        del warm
        gc.collect()
        before = tracemalloc.get_traced_memory()[0]
        nodes, _ = await _mesh(n)
        await asyncio.sleep(0.2)  # let handshake leftovers go
        gc.collect()
        listening = sum(1 for _ in nodes)
        after = tracemalloc.get_traced_memory()[0]
        # Subtract what the nodes themselves cost: one extra unconnected node, measured alone.
        gc.collect()
        lone_before = tracemalloc.get_traced_memory()[0]
        lone = Node("mesh-lone")
        await lone.start()
        gc.collect()
        per_node = tracemalloc.get_traced_memory()[0] - lone_before
        await lone.close()
        pairs = n * (n - 1) // 2
        out["bytes per connection"] = (after - before - listening * per_node) / pairs
        progress(
            f"memory per idle connection (both ends, {pairs} connections): "
            f"{out['bytes per connection'] / 1024:.1f} KiB"
        )
        await asyncio.gather(*(node.close() for node in nodes))
        del nodes

        async with ActorSystem("bench-memory") as system:
            system.spawn("warm", Idle())
            await asyncio.sleep(0.05)
            gc.collect()
            before = tracemalloc.get_traced_memory()[0]
            for i in range(cfg.memory_actors):
                system.spawn(f"idle-{i}", Idle())
            await asyncio.sleep(0.2)
            gc.collect()
            after = tracemalloc.get_traced_memory()[0]
            out["bytes per actor"] = (after - before) / cfg.memory_actors
            progress(
                f"memory per idle actor ({cfg.memory_actors} actors): "
                f"{out['bytes per actor'] / 1024:.2f} KiB"
            )
    finally:
        tracemalloc.stop()
    return out
