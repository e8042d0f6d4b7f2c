"""What one hostile peer costs a good one: ask latency with and without a flood.

A worker process hosts the ``sink`` actor. The driver's `ActorSystem` (the good peer) asks it
``Ping`` one at a time and records every round trip. Then a raw socket, authenticated to the
worker by hand, sends the issue-14 case in a loop: an ask whose payload is a map of 500,000
keys (about 6 MB, every key an extra field), each sent once the previous one was answered; the
good peer's round trips are recorded again meanwhile. The figures are p50 and p99 of both runs;
the flood's ratio is against the quiet run of the same session.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Any

import msgpack

from ._util import FrameReader, encode_frame, worker

__all__ = ["COUNTS", "hostile_runs", "report_rows"]

Progress = Callable[[str], None]
HOSTILE_ID = "zz-hostile"  # sorts after the worker's id: the worker decides the connection
FLOOD_KEYS = 500_000
# (round trips per run, most seconds of flood) for a full run and for --smoke.
COUNTS: dict[bool, tuple[int, float]] = {False: (500, 30.0), True: (20, 3.0)}


def _hostile_frame(correlation_id: int) -> bytes:
    payload = {f"k{index}": index for index in range(FLOOD_KEYS)}
    envelope = [1, "sink", "bench.Ping", payload, HOSTILE_ID, None, correlation_id]
    return encode_frame([0, envelope])


class _Hostile:
    """A raw peer that completes an open handshake, then floods the 6 MB ask."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._frames = FrameReader()
        self._bodies: list[Any] = []
        self.sent = 0
        self.answered = 0
        self.largest_answer = 0

    @classmethod
    async def open(cls, uri: str) -> _Hostile:
        host, port = uri.removeprefix("tcp://").rsplit(":", 1)
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), 10)
        peer = cls(reader, writer)
        hello = {
            "op": "hello",
            "v": 1,
            "id": HOSTILE_ID,
            "inc": 1,
            "uri": None,
            "nonce": os.urandom(32),
            "role": "dialer",
            "auth": False,
        }
        writer.write(encode_frame(hello))
        answer = await peer._next()
        if answer.get("op") != "hello":
            raise RuntimeError(f"the worker refused the hostile peer: {answer}")
        writer.write(encode_frame({"op": "claim", "seq": 1, "alive": [], "keep": False}))
        commit = await peer._next()
        if commit.get("op") != "commit":
            raise RuntimeError(f"the worker did not commit the hostile peer: {commit}")
        return peer

    async def _next(self, timeout: float = 30.0) -> Any:
        async with asyncio.timeout(timeout):
            while not self._bodies:
                data = await self._reader.read(1 << 20)
                if not data:
                    raise EOFError("the worker closed the hostile connection")
                self._bodies.extend(self._frames.feed(data))
        return self._bodies.pop(0)

    async def flood(self, stop: asyncio.Event) -> None:
        frame = _hostile_frame(0)
        # Only the correlation id changes: patch its last byte rather than re-encode 6 MB.
        template = bytearray(frame)
        while not stop.is_set():
            self.sent += 1
            template[-1] = self.sent % 128  # a positive fixint
            self._writer.write(bytes(template))
            await self._writer.drain()
            while True:
                body = await self._next(timeout=60.0)
                if type(body) is list and len(body) == 2 and body[0] == 0:
                    self.answered += 1
                    self.largest_answer = max(
                        self.largest_answer, len(msgpack.packb(body, use_bin_type=True))
                    )
                    break

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()


async def _round_trips(
    system: Any, peer: str, count: int, budget: float
) -> tuple[list[float], int]:
    """``count`` sequential asks (fewer once ``budget`` seconds passed): the round trips of
    those answered, and how many failed (timed out, or the node was declared down)."""
    from actors import AskError, NodeDownError

    from ._messages import Ping

    ask = system.ask
    times: list[float] = []
    failed = 0
    deadline = time.perf_counter() + budget
    for seq in range(count):
        start = time.perf_counter()
        try:
            await ask(peer, "sink", Ping(seq=seq), timeout=10.0)
        except NodeDownError:
            failed += 1
            await asyncio.sleep(0.1)  # the kept peer is being re-dialled
        except AskError:
            failed += 1
        else:
            times.append(time.perf_counter() - start)
        if start > deadline:
            break
    return times, failed


def _percentile(values: list[float], fraction: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def hostile_runs(asks: int, flood_seconds: float, progress: Progress) -> dict[str, float]:
    """Measure the good peer's ask latency quiet, then under the 6 MB flood.

    Args:
        asks: Round trips per run (the flood run stops earlier after ``flood_seconds``).
        flood_seconds: The most seconds the flood run lasts.
        progress: Prints a progress line.

    Returns:
        ``quiet p50`` / ``quiet p99`` / ``flood p50`` / ``flood p99`` in milliseconds, the
        round trips answered and failed in each run, and the hostile asks answered during the
        flood.
    """
    from actors import ActorSystem

    out: dict[str, float] = {}
    async with worker("actors") as sink, ActorSystem("bench-good") as system:
        uri = sink.info["uris"][0]
        peer = await system.connect(uri)
        await _round_trips(system, peer, 200, 10.0)  # warm-up
        quiet, quiet_failed = await _round_trips(system, peer, asks, 60.0)
        out["quiet p50"] = _percentile(quiet, 0.50) * 1000
        out["quiet p99"] = _percentile(quiet, 0.99) * 1000
        out["quiet n"] = len(quiet)
        out["quiet failed"] = quiet_failed
        progress(f"good peer ask, quiet: p99 {out['quiet p99']:.2f} ms over {len(quiet)} asks")
        hostile = await _Hostile.open(uri)
        stop = asyncio.Event()
        flooding = asyncio.ensure_future(hostile.flood(stop))
        try:
            loaded, loaded_failed = await _round_trips(system, peer, asks, flood_seconds)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(flooding, 60.0)
            flooding.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await flooding
            await hostile.close()
        out["flood p50"] = _percentile(loaded, 0.50) * 1000
        out["flood p99"] = _percentile(loaded, 0.99) * 1000
        out["flood n"] = len(loaded)
        out["flood failed"] = loaded_failed
        out["hostile answered"] = hostile.answered
        out["hostile largest answer"] = hostile.largest_answer
        progress(
            f"good peer ask, flooded: p99 {out['flood p99']:.2f} ms over {len(loaded)} asks "
            f"({loaded_failed} failed); "
            f"{hostile.answered} hostile 6 MB asks answered (largest answer "
            f"{hostile.largest_answer} B)"
        )
    return out


def report_rows(report: Any, figures: dict[str, float]) -> None:
    """Add the section's rows to the suite's report: p50 and p99 of the flooded run, each
    against the quiet run's same percentile (lower is better)."""
    asked = figures["flood n"] + figures["flood failed"]
    for quantile in ("p50", "p99"):
        report.add(
            f"hostile quiet {quantile}",
            "hostile",
            f"good peer ask {quantile}, no hostile peer",
            figures[f"quiet {quantile}"],
            "ms",
        )
        report.add(
            f"hostile flood {quantile}",
            "hostile",
            f"good peer ask {quantile}, a peer flooding 6 MB asks",
            figures[f"flood {quantile}"],
            "ms",
            figures[f"quiet {quantile}"],
            note=(
                f"{figures['flood failed']:.0f} of {asked:.0f} asks failed; "
                f"{figures['hostile answered']:.0f} hostile asks answered"
            ),
            higher_is_better=False,
        )
