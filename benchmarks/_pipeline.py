"""Pipelined asks, latency percentiles and group dispatch, each beside a raw-asyncio twin.

The raw twins use the baseline's framing (length-prefixed msgpack over asyncio ``Protocol``s,
the same worker process): a request/response client that resolves one future per request,
a timestamped one-way stream, and one frame written to several connections.

*In flight* means ``depth`` coroutines, gathered with ``asyncio.gather``, each awaiting its
requests one after the other: what a pool of workers does. The harness is the same function for
raw asyncio and for ``ask``; only the awaited call differs.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._util import FrameReader, encode_frame, packet_for, percentiles, worker

Progress = Callable[[str], None]

# Timestamps that cross processes: CLOCK_MONOTONIC is one clock for the whole host on Linux.
clock = time.monotonic


def depth_n(cfg: Any, depth: int) -> int:
    """How many requests to make at ``depth`` in flight: enough for every lane to repeat."""
    return max(cfg.rtt_n, min(cfg.pipeline_n, depth * cfg.pipeline_per_lane))


async def in_flight(call: Callable[[int], Awaitable[Any]], depth: int, n: int) -> float:
    """``n`` calls, ``depth`` at a time (``depth`` lanes of sequential calls); returns calls/s."""
    per_lane = max(1, n // depth)

    async def lane(first: int) -> None:
        for i in range(first, first + per_lane):
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*(lane(k * per_lane) for k in range(depth)))
    return depth * per_lane / (time.perf_counter() - start)


async def task_per_call(call: Callable[[int], Awaitable[Any]], depth: int, n: int) -> float:
    """``n`` calls, each in a task of its own as `open_loop` starts them, ``depth`` at a time.

    The maximum rate the open-loop runs are a fraction of: it pays for the same task per call.
    """
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(depth)

    async def one(i: int) -> None:
        try:
            await call(i)
        finally:
            gate.release()

    tasks = []
    start = time.perf_counter()
    for i in range(n):
        await gate.acquire()
        tasks.append(loop.create_task(one(i)))
    await asyncio.gather(*tasks)
    return n / (time.perf_counter() - start)


async def open_loop(
    call: Callable[[int], Awaitable[Any]], rate: float, seconds: float, timeout: float = 30.0
) -> tuple[list[float], float]:
    """Start calls at ``rate`` per second for ``seconds``, whatever the replies do.

    Each call is a task started by a pacing loop that wakes about every millisecond and starts
    the calls that are due (the same pacing for every system measured). A call's latency runs
    from the moment its task is created to its reply.

    Returns:
        The latencies in seconds, and the rate at which calls were actually started.
    """
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    tasks: set[asyncio.Task[None]] = set()
    perf = time.perf_counter

    async def timed(i: int, started: float) -> None:
        await call(i)
        latencies.append(perf() - started)

    total = max(1, int(rate * seconds))
    issued = 0
    start = perf()
    while issued < total:
        due = min(total, int((perf() - start) * rate) + 1)
        while issued < due:
            task = loop.create_task(timed(issued, perf()))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            issued += 1
        await asyncio.sleep(0.001)
    achieved = issued / (perf() - start)
    if tasks:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout)
    return latencies, achieved


async def paced(send: Callable[[int], int], rate: float, seconds: float) -> tuple[int, int, float]:
    """Call ``send(k)`` with the ``k`` messages due, about every millisecond, at ``rate``/s.

    Returns:
        Messages due, messages refused by ``send`` (it returns how many it handed over), and
        the rate actually offered.
    """
    total = max(1, int(rate * seconds))
    sent = refused = 0
    perf = time.perf_counter
    start = perf()
    while sent < total:
        due = min(total, int((perf() - start) * rate) + 1)
        if due > sent:
            handed = send(due - sent)
            refused += due - sent - handed
            sent = due
        await asyncio.sleep(0.001)
    return sent, refused, sent / (perf() - start)


# --- raw asyncio twins ------------------------------------------------------------------------


class RawRequester(asyncio.Protocol):
    """A request/response client: one future per request, resolved by the reply's id."""

    def __init__(self) -> None:
        self.reader = FrameReader()
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.transport: asyncio.Transport | None = None
        self.replies: asyncio.Queue[Any] = asyncio.Queue()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        pending = self.pending
        for body in self.reader.feed(data):
            if body[0] == "pong":
                future = pending.pop(body[1], None)
                if future is not None and not future.done():
                    future.set_result(body)
            else:
                self.replies.put_nowait(body)

    async def request(self, i: int) -> Any:
        future = asyncio.get_running_loop().create_future()
        self.pending[i] = future
        assert self.transport is not None
        self.transport.write(encode_frame(["ping", i]))
        return await future


async def _raw_requester(port: int) -> tuple[asyncio.Transport, RawRequester]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_connection(RawRequester, "127.0.0.1", port)
    return transport, proto  # type: ignore[return-value]


def _raw_stamps(transport: asyncio.Transport) -> Callable[[int], int]:
    def send(k: int) -> int:
        transport.write(b"".join([encode_frame(["t", clock()]) for _ in range(k)]))
        return k

    return send


async def _raw_stats(transport: asyncio.Transport, proto: RawRequester) -> dict[str, float]:
    transport.write(encode_frame(["stats"]))
    reply = await asyncio.wait_for(proto.replies.get(), 30)
    assert reply[0] == "stats", reply
    stats: dict[str, float] = reply[1]
    return stats


# --- pipelined asks -----------------------------------------------------------------------------


async def pipeline_runs(cfg: Any, progress: Progress) -> dict[str, float]:
    """Raw request/response and ``ask`` between two processes at each depth in flight.

    The two are measured in turn, run after run (raw, ask, raw, ask...), and each keeps its
    best: on a shared machine the load changes within seconds, and interleaving puts both
    under the same spells. At depth 1 the baseline's ping-pong (which waits on each answer
    through ``asyncio.wait_for``) is interleaved too: the sequential-ask target uses it.
    """
    from actors import ActorSystem

    from ._messages import Ping
    from ._suite import _raw_connect, _raw_pingpong

    out: dict[str, float] = {}
    async with (
        worker("raw") as raw,
        worker("actors") as sink,
        ActorSystem("bench-driver") as system,
    ):
        transport, proto = await _raw_requester(raw.info["port"])
        ping_transport, ping_proto = await _raw_connect(raw.info["port"])
        peer = await system.connect(sink.info["uris"][0])
        ask = system.ask

        def call(i: int) -> Awaitable[Any]:
            return ask(peer, "sink", Ping(seq=i))

        await in_flight(proto.request, 16, cfg.warmup // 10)
        await in_flight(call, 16, cfg.warmup // 10)
        for depth in cfg.depths:
            n = depth_n(cfg, depth)
            raws, asks, pings = [], [], []
            for _ in range(cfg.repeat):
                raws.append(await in_flight(proto.request, depth, n))
                asks.append(await in_flight(call, depth, n))
                if depth == 1:
                    pings.append(await _raw_pingpong(ping_transport, ping_proto, n))
            out[f"raw {depth}"] = max(raws)
            out[f"ask {depth}"] = max(asks)
            progress(
                f"{depth} in flight: raw request/response {max(raws):,.0f} req/s, "
                f"ask {max(asks):,.0f} asks/s"
            )
            if pings:
                out["pingpong"] = max(pings)
                progress(f"raw ping-pong (wait_for), interleaved: {max(pings):,.0f} rt/s")
        transport.close()
        ping_transport.close()
    return out


# --- latency percentiles ------------------------------------------------------------------------


async def latency_runs(cfg: Any, progress: Progress) -> dict[str, Any]:
    """Percentiles of ask round trips and of tell delivery at half the measured maximum rate.

    The maximum is measured here, in the same processes: for asks with a task per ask and
    ``cfg.latency_depth`` in flight (the open-loop runs start a task per ask too), for tells
    with the same stamped tells sent as fast as they go. The raw twin is offered the same rate,
    so both latencies are at one load.
    """
    from actors import ActorSystem

    from ._messages import Ping, Stamp, StampStats

    out: dict[str, Any] = {}
    seconds = cfg.latency_seconds
    async with worker("raw") as raw, worker("actors") as sink:
        transport, proto = await _raw_requester(raw.info["port"])
        async with ActorSystem("bench-driver") as system:
            peer = await system.connect(sink.info["uris"][0])
            ask = system.ask
            tell = system.tell

            def call(i: int) -> Awaitable[Any]:
                return ask(peer, "sink", Ping(seq=i))

            # Ask: the maximum, then the open-loop runs at half of it, ask and raw in turn.
            depth = cfg.latency_depth
            await task_per_call(call, depth, depth_n(cfg, depth) // 4)
            top = await task_per_call(call, depth, depth_n(cfg, depth))
            rate = top / 2
            out["ask max"] = top
            for label, fn in (("raw ask", proto.request), ("ask", call)):
                await open_loop(fn, rate, seconds / 4)  # warm-up
                samples, achieved = await open_loop(fn, rate, seconds)
                out[label] = {**percentiles(samples), "offered": rate, "achieved": achieved}
                progress(_describe(f"{label} at {rate:,.0f}/s", out[label]))

            # Tell: the maximum of the same stamped tells, then those (and raw frames) at half.
            def tells(k: int) -> int:
                handed = 0
                for _ in range(k):
                    handed += tell(peer, "sink", Stamp(sent=clock()))
                return handed

            await _stamp_max(system, peer, tells, cfg.tell_n // 4)
            top = await _stamp_max(system, peer, tells, cfg.tell_n)
            rate = top / 2
            out["tell max"] = top

            for label, send, stats in (
                ("raw tell", _raw_stamps(transport), lambda: _raw_stats(transport, proto)),
                ("tell", tells, lambda: _actor_stats(system, peer, StampStats)),
            ):
                await paced(send, rate, seconds / 4)
                await stats()  # drop the warm-up's samples
                sent, refused, achieved = await paced(send, rate, seconds)
                result = await stats()
                out[label] = {**result, "offered": rate, "achieved": achieved, "refused": refused}
                if result["count"] != sent - refused:
                    raise RuntimeError(f"{label}: {sent - refused} sent, {result['count']} seen")
                progress(_describe(f"{label} at {rate:,.0f}/s", out[label]))
        transport.close()
    return out


async def _stamp_max(system: Any, peer: str, tells: Callable[[int], int], n: int) -> float:
    """Stamped tells as fast as the sender goes (batches of 1000 a loop turn, waiting on
    ``drained`` past the high-water mark) until the sink has counted them all; returns msgs/s.
    """
    from ._messages import StampStats

    start = time.perf_counter()
    sent = 0
    while sent < n:
        k = min(1000, n - sent)
        handed = tells(k)
        sent += handed
        if handed < k:
            await system.node.drained(peer)
        else:
            await asyncio.sleep(0)
    stats = await _actor_stats(system, peer, StampStats)
    elapsed = time.perf_counter() - start
    if stats["count"] != sent:
        raise RuntimeError(f"stamped tells: {sent} sent, {stats['count']} seen")
    return sent / elapsed


async def _actor_stats(system: Any, peer: str, query: Any) -> dict[str, float]:
    reply = await system.ask(peer, "sink", query(), timeout=60)
    return {"count": reply.count, "p50": reply.p50, "p99": reply.p99, "p99.9": reply.p999}


def _describe(label: str, stats: dict[str, float]) -> str:
    return (
        f"{label}: p50 {stats['p50'] * 1e6:,.0f} us, p99 {stats['p99'] * 1e6:,.0f} us, "
        f"p99.9 {stats['p99.9'] * 1e6:,.0f} us ({stats['count']:,.0f} samples, "
        f"{stats['achieved']:,.0f}/s achieved)"
    )


# --- group dispatch -----------------------------------------------------------------------------


async def _raw_group(
    transports: list[asyncio.Transport], protos: list[Any], n: int, packet: Any
) -> float:
    """Raw multi-dispatch: each frame encoded once, the same bytes written to every connection.

    Returns:
        Sends per second, a send counted once whatever the fan-out.
    """
    from ._suite import _batch_for

    batch = _batch_for(["m", packet])
    loop = asyncio.get_running_loop()
    start = time.perf_counter()
    sent = 0
    while sent < n:
        k = min(batch, n - sent)
        data = b"".join([encode_frame(["m", packet]) for _ in range(k)])
        for transport in transports:
            transport.write(data)
        sent += k
        waited = False
        for proto in protos:
            if proto.paused:
                proto.drain = loop.create_future()
                await proto.drain
                waited = True
        if not waited:
            await asyncio.sleep(0)
    for transport in transports:
        transport.write(encode_frame(["end"]))
    for proto in protos:
        reply = await proto.inbox.get()
        assert reply == ["got", n], reply
    return n / (time.perf_counter() - start)


async def group_runs(cfg: Any, progress: Progress) -> dict[str, float]:
    """One message to ``cfg.fanout`` nodes in one worker process: raw, transport, actors."""
    from actors import ActorSystem

    from ._suite import _node_client, _node_oneway, _raw_connect, _tell_run

    k = cfg.fanout
    n = cfg.fanout_n
    packet = packet_for("40 B")
    out: dict[str, float] = {}
    async with worker("raw", "--count", str(k)) as sink:
        pairs = [await _raw_connect(port) for port in sink.info["ports"]]
        transports = [t for t, _ in pairs]
        protos = [p for _, p in pairs]
        await _raw_group(transports, protos, cfg.warmup // 10, packet)
        out["raw"] = max(
            [await _raw_group(transports, protos, n, packet) for _ in range(cfg.repeat)]
        )
        progress(f"raw multi-dispatch to {k} connections: {out['raw']:,.0f} sends/s")
        for transport in transports:
            transport.close()
    async with worker("nodes", "--count", str(k)) as sink:
        node, peers, inbox = await _node_client(sink.info["uris"])
        try:
            await _node_oneway(node, peers, inbox, cfg.warmup // 10, packet)
            out["transport"] = max(
                [await _node_oneway(node, peers, inbox, n, packet) for _ in range(cfg.repeat)]
            )
            progress(f"Node.send([{k} peers]): {out['transport']:,.0f} sends/s")
        finally:
            await node.close()
    async with (
        worker("actors", "--count", str(k)) as sink,
        ActorSystem("bench-driver") as system,
    ):
        peers = [await system.connect(uri) for uri in sink.info["uris"]]
        # tell([ids], ...) is today's group dispatch: one encode, one packet for every node.
        await _tell_run(system, peers, cfg.warmup // 10)
        out["actors"] = max([await _tell_run(system, peers, n) for _ in range(cfg.repeat)])
        progress(f"tell([{k} nodes]): {out['actors']:,.0f} tells/s")
    return out
