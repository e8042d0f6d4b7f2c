"""Shared helpers: event-loop choice, bounded worker subprocesses, frame codec of the baseline."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import struct
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import msgpack

T = TypeVar("T")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEADER = struct.Struct(">I")
SMALL_PACKET: list[Any] = [1, "abcdefghij", 3.14159, b"0123456789abcdef"]
SIZES: dict[str, Any] = {
    "40 B": SMALL_PACKET,
    "4 KiB": [1, b"x" * 4096],
    "256 KiB": [1, b"x" * (256 * 1024)],
}


def packet_for(size: str) -> Any:
    return SIZES[size]


def have_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run(coro_fn: Callable[[], Coroutine[Any, Any, T]], loop: str = "asyncio") -> T:
    """Run ``coro_fn()`` on a fresh event loop of the given kind."""
    if loop == "uvloop":
        import uvloop

        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(coro_fn())
    with asyncio.Runner() as runner:
        return runner.run(coro_fn())


def encode_frame(body: Any) -> bytes:
    payload = msgpack.packb(body, use_bin_type=True)
    return HEADER.pack(len(payload)) + payload


class FrameReader:
    """Length-prefixed msgpack frames out of a byte stream (memoryview slicing, no copies)."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buffer = self.buffer
        buffer += data
        size = len(buffer)
        offset = 0
        out = []
        view = memoryview(buffer)
        unpack_from = HEADER.unpack_from
        try:
            while size - offset >= 4:
                (length,) = unpack_from(buffer, offset)
                end = offset + 4 + length
                if end > size:
                    break
                out.append(msgpack.unpackb(view[offset + 4 : end], raw=False))
                offset = end
        finally:
            view.release()
        if offset:
            del buffer[:offset]
        return out


class Worker:
    """A benchmark worker subprocess: prints one JSON line when ready, runs until stdin closes.

    It is started in its own session so that everything it spawns is killed with it, and it is
    bounded in time both by the worker itself (``--lifetime``) and by :meth:`close`.
    """

    def __init__(self, proc: asyncio.subprocess.Process, info: dict[str, Any]) -> None:
        self.proc = proc
        self.info = info

    async def close(self, timeout: float = 5.0) -> None:
        proc = self.proc
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                assert proc.stdin is not None
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), timeout)
            except TimeoutError:
                kill_group(proc.pid)
                await proc.wait()


def kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


@contextlib.asynccontextmanager
async def worker(
    *args: str, loop: str = "asyncio", lifetime: float = 120.0
) -> AsyncIterator[Worker]:
    """Start ``python -m benchmarks._worker ARGS`` and wait for its ready line."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks._worker",
        "--loop",
        loop,
        "--lifetime",
        str(lifetime),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if not line:
            raise RuntimeError(f"worker {args} exited before it was ready")
        handle = Worker(proc, json.loads(line))
        try:
            yield handle
        finally:
            await handle.close()
    finally:
        if proc.returncode is None:
            kill_group(proc.pid)
            await proc.wait()


async def timed(coro: Awaitable[T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = await coro
    return time.perf_counter() - start, result


def percentiles(samples: list[float]) -> dict[str, float]:
    """Sample count, p50, p99 and p99.9 (nearest rank) of ``samples``; zeros when empty."""
    ordered = sorted(samples)
    n = len(ordered)
    if not n:
        return {"count": 0, "p50": 0.0, "p99": 0.0, "p99.9": 0.0}

    def at(q: float) -> float:
        return ordered[min(n - 1, int(q * n))]

    return {"count": n, "p50": at(0.5), "p99": at(0.99), "p99.9": at(0.999)}


def best(values: list[float]) -> float:
    return max(values)
