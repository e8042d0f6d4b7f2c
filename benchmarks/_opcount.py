"""Interpreter work per request: Python opcodes executed per ask, per tell and per raw request.

Wall-clock figures on a shared machine move with everyone else's load; the number of bytecode
instructions a request makes the interpreter run does not (nearly all of our time is in the
interpreter: ``perf`` puts 85 % of a pipelined ask run in ``libpython``). Both ends run in one
process over loopback, under ``sys.settrace`` with opcode events, so every instruction of
both sides is counted, the event loop's included.

Tracing slows every step past the transport's 20 µs burst gap, which would make each send a
socket write of its own; untraced, pipelined sends coalesce (0.025 writes per ask at 256 in
flight). The gap is widened while counting so that writes coalesce as they do untraced.
"""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import Any

from ._pipeline import RawRequester, in_flight
from ._util import SMALL_PACKET as SMALL
from ._util import encode_frame

Progress = Callable[[str], None]


class _Counting:
    """Counts opcodes and Python calls while active, per code object too."""

    def __init__(self) -> None:
        self.opcodes = 0
        self.calls = 0
        self.by_function: Counter[tuple[str, str]] = Counter()

    def _trace(self, frame: FrameType, event: str, arg: Any) -> Any:
        frame.f_trace_opcodes = True
        self.calls += 1
        key = (frame.f_code.co_filename.rsplit("/", 1)[-1], frame.f_code.co_name)
        by_function = self.by_function

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            if event == "opcode":
                self.opcodes += 1
                by_function[key] += 1
            return local

        return local

    async def measure(self, work: Callable[[], Awaitable[Any]]) -> None:
        sys.settrace(self._trace)
        try:
            await work()
        finally:
            sys.settrace(None)


async def count(
    work: Callable[[], Awaitable[Any]], n: int
) -> tuple[float, float, list[tuple[str, float]]]:
    """Opcodes and Python calls per unit of ``work`` (which does ``n`` units), and the top
    functions by opcodes per unit."""
    counting = _Counting()
    await counting.measure(work)
    top = [
        (f"{file}:{name}", ops / n) for (file, name), ops in counting.by_function.most_common(12)
    ]
    return counting.opcodes / n, counting.calls / n, top


async def opcode_runs(cfg: Any, progress: Progress) -> dict[str, Any]:
    """Opcodes per raw request, per ask (at 1 and 256 in flight) and per tell."""
    import transport._node as node_module
    from actors import ActorSystem

    from ._messages import Count, Ping, Sample, Sink
    from ._worker import RawSink

    out: dict[str, Any] = {}
    n = cfg.opcode_n
    loop = asyncio.get_running_loop()
    server = await loop.create_server(RawSink, "127.0.0.1", 0)
    transport, proto = await loop.create_connection(
        RawRequester, "127.0.0.1", server.sockets[0].getsockname()[1]
    )
    gap = node_module._BURST_GAP
    try:
        for depth in (1, 256):
            await in_flight(proto.request, depth, n)  # warm-up
            ops, calls, _ = await count(lambda d=depth: in_flight(proto.request, d, n), n)
            out[f"raw {depth}"] = ops
            progress(f"raw request/response, {depth} in flight: {ops:,.0f} opcodes per request")

        async def oneway() -> None:
            for _ in range(n // 256):
                transport.write(b"".join([encode_frame(["m", SMALL]) for _ in range(256)]))
                await asyncio.sleep(0)
            transport.write(encode_frame(["end"]))
            await proto.replies.get()

        await oneway()
        ops, calls, _ = await count(oneway, n // 256 * 256)
        out["raw oneway"] = ops
        progress(f"raw one-way: {ops:,.0f} opcodes per message")
        node_module._BURST_GAP = 1.0  # type: ignore[attr-defined]
        async with ActorSystem("bench-a") as a, ActorSystem("bench-b") as b:
            b.spawn("sink", Sink())
            peer = await a.connect(b.info())  # type: ignore[arg-type]
            ask = a.ask

            def call(i: int) -> Awaitable[Any]:
                return ask(peer, "sink", Ping(seq=i))

            for depth in (1, 256):
                await in_flight(call, depth, n)
                ops, calls, top = await count(lambda d=depth: in_flight(call, d, n), n)
                out[f"ask {depth}"] = ops
                out[f"ask {depth} top"] = top
                progress(f"ask, {depth} in flight: {ops:,.0f} opcodes, {calls:.0f} calls per ask")

            tell = a.tell

            async def tells() -> None:
                # A message built per tell, as the asks above build one per ask.
                for i in range(n):
                    tell(peer, "sink", Sample(seq=i, name="benchmark", value=2.5))
                    if i % 256 == 255:
                        await asyncio.sleep(0)
                await ask(peer, "sink", Count())

            await tells()
            ops, calls, top = await count(tells, n)
            out["tell"] = ops
            out["tell top"] = top
            progress(f"tell: {ops:,.0f} opcodes, {calls:.0f} calls per message")
    finally:
        node_module._BURST_GAP = gap  # type: ignore[attr-defined]
        transport.close()
        server.close()
    return out
