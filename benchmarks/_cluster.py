"""Cluster membership at scale: N members spread over P worker processes join through one seed.

Every size runs the same way: the members are split evenly over ``P`` processes
(``benchmarks._cluster_worker``; 4 in the full run, more only when a process would need more
than three quarters of the hard file-descriptor limit), member 0 in process 0 is the seed and
every other member is started with ``seeds=[its uri]``, all of a process's members at once.
Three figures per size (30, 100, 200 members in the full run):

- **converge**: from the moment the driver tells the processes to start their members (the
  seed already runs) until every member in every process sees all ``size`` members
  (``Node.wait_for_members``), which over one connection per pair is the full mesh; a size
  that has not converged ``deadline`` seconds after the start (120 s) is reported as not
  converged, with how far each process got, instead of a figure. Each process stamps the
  moment its last member converged with ``time.monotonic()`` (one clock for the whole host on
  Linux) and the figure is the latest stamp minus the driver's start stamp;
- **raw mesh** (the converge figure's baseline): the same processes, one raw asyncio listener
  per member, dial every pair once (at most 64 dials in flight per process) with no handshake
  and no gossip; from the driver's go until every dial has connected and every listener has
  accepted its share, timed the same way: the floor of opening the connections a full mesh
  needs;
- **idle gossip**: membership bytes (``[4, body]`` frames, framing included, counted by
  wrapping ``Node._send_membership``) sent per member per second over a quiet window after
  convergence (2 s after it, to let the joins' last anti-entropy rounds finish), summed over
  all processes; heartbeats are the mesh's, not counted;
- **detect**: from SIGKILL of a member running in its own process until ``member_down`` has
  fired on every other member (all of them in the driver; measured once, on the smallest size).

The worker processes are bounded in time (``--lifetime``, and a timeout on every answer the
driver waits for) and killed with their process group at the end whatever happens; a worker
that fails or dies is reported with its error or the last line of its stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import IO, Any

from transport import Member, Node

from ._cluster_worker import raise_fd_limit
from ._util import ROOT, kill_group

PROCESSES = 4
MAX_PROCESSES = 16
LIFETIME = 900.0
SLOW_SCALE = 6.0
"""A join that does not converge at the default timeouts is run again with the handshake,
heartbeat and down_after timeouts multiplied by this."""

_MEMBER_PROGRAM = """
import asyncio, json, sys
from transport import Node
async def main():
    interval, timeout = float(sys.argv[2]), float(sys.argv[3])
    node = Node(
        "victim", seeds=[sys.argv[1]], heartbeat_interval=interval, heartbeat_timeout=timeout
    )
    async with node:
        print(json.dumps({"uri": node.info()}), flush=True)
        await asyncio.Event().wait()
asyncio.run(main())
"""


def member_fds(members: int, size: int) -> int:
    """File descriptors a process hosting ``members`` of a ``size``-member mesh needs."""
    # One socket per other member each, plus duplicates while two members dial each other,
    # the listeners and the event loop's own.
    return members * (size - 1) + 4 * members + 64


def _hard_limit() -> int:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else hard


def plan(size: int, processes: int) -> tuple[list[tuple[int, int]], int] | str:
    """The ``(first, count)`` of each process and the fds each needs, or why none fits.

    ``processes`` is raised (up to :data:`MAX_PROCESSES`, and one member per process) until a
    process needs at most three quarters of the hard limit, the rest kept as headroom.
    """
    limit = _hard_limit()
    most = max(processes, min(size, MAX_PROCESSES))
    for count in range(min(processes, size), most + 1):
        per = -(-size // count)
        needed = member_fds(per, size)
        if needed <= limit * 3 // 4:
            sizes = [size // count + (1 if i < size % count else 0) for i in range(count)]
            firsts = [sum(sizes[:i]) for i in range(count)]
            return list(zip(firsts, sizes, strict=True)), needed
    per = -(-size // most)
    return (
        f"even over {most} processes one needs {member_fds(per, size)} file descriptors, "
        f"more than 3/4 of the hard limit {limit} (raise it: `ulimit -Hn`)"
    )


def _last_line(stream: IO[bytes]) -> str:
    stream.seek(0)
    lines = stream.read().decode(errors="replace").strip().splitlines()
    return lines[-1] if lines else "(nothing on stderr)"


class _Process:
    """One cluster worker: JSON commands on its stdin, one JSON answer line each."""

    def __init__(self, index: int, proc: asyncio.subprocess.Process, stderr: IO[bytes]) -> None:
        self.index = index
        self.proc = proc
        self.stderr = stderr

    @classmethod
    async def spawn(
        cls, index: int, first: int, count: int, size: int, fds: int, scale: float
    ) -> _Process:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop()
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "benchmarks._cluster_worker",
            f"--first={first}",
            f"--count={count}",
            f"--size={size}",
            f"--fds={fds}",
            f"--lifetime={LIFETIME}",
            f"--timing-scale={scale}",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr,
            start_new_session=True,
            cwd=ROOT,
        )
        return cls(index, proc, stderr)

    def send(self, command: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")

    async def reply(self, what: str, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            line = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except TimeoutError:
            raise RuntimeError(
                f"cluster worker {self.index}: no answer to {what} within {timeout:.0f} s "
                f"(stderr: {_last_line(self.stderr)})"
            ) from None
        if not line:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 5.0)
            raise RuntimeError(
                f"cluster worker {self.index} exited ({self.proc.returncode}) before answering "
                f"{what}: {_last_line(self.stderr)}"
            )
        data: dict[str, Any] = json.loads(line)
        if "error" in data:
            raise RuntimeError(f"cluster worker {self.index}, {what}: {data['error']}")
        return data

    async def ask(self, command: dict[str, Any], timeout: float) -> dict[str, Any]:
        self.send(command)
        return await self.reply(command["op"], timeout)

    async def stop(self) -> None:
        """Close stdin (the worker closes its members), then kill the process group anyway."""
        if self.proc.returncode is None:
            with contextlib.suppress(Exception):
                assert self.proc.stdin is not None
                self.proc.stdin.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 15.0)
        kill_group(self.proc.pid)
        await self.proc.wait()
        self.stderr.close()


async def _each(
    procs: list[_Process], call: Callable[[_Process], Awaitable[dict[str, Any]]]
) -> list[dict[str, Any]]:
    """``call`` on every process at once; the first failure cancels the others' waits."""
    tasks = [asyncio.ensure_future(call(proc)) for proc in procs]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()


async def _converge(
    size: int,
    processes: int,
    idle_seconds: float,
    deadline: float,
    progress: Callable[[str], None],
    scale: float = 1.0,
) -> dict[str, Any]:
    planned = plan(size, processes)
    if isinstance(planned, str):
        return {"skip": planned}
    spans, fds = planned
    procs: list[_Process] = []
    try:
        for index, (first, count) in enumerate(spans):
            procs.append(await _Process.spawn(index, first, count, size, fds, scale))
        await _each(procs, lambda p: p.reply("ready", 60.0))
        spread = f"{size} members over {len(procs)} processes (up to {fds} fds each)"
        if scale != 1:
            spread += f", timeouts x{scale:g}"

        listened = await _each(procs, lambda p: p.ask({"op": "raw_listen"}, 30.0))
        ports = [port for answer in listened for port in answer["ports"]]
        started = time.monotonic()
        for proc in procs:
            proc.send({"op": "raw_dial", "ports": ports})
        done = await _each(procs, lambda p: p.reply("raw_dial", 300.0))
        raw = max(answer["done"] for answer in done) - started
        await _each(procs, lambda p: p.ask({"op": "raw_close"}, 30.0))
        progress(f"{spread}: raw mesh of {size * (size - 1) // 2} connections in {raw:.2f} s")

        uri = (await procs[0].ask({"op": "seed"}, 30.0))["uri"]
        started = time.monotonic()
        for proc in procs:
            proc.send({"op": "start", "seed": uri, "timeout": deadline})
        converged = await _each(procs, lambda p: p.reply("start", deadline + 60.0))
        behind = [
            f"process {proc.index}: {answer['unconverged']}"
            for proc, answer in zip(procs, converged, strict=True)
            if "unconverged" in answer
        ]
        if behind:
            why = f"not converged within {deadline:.0f} s; " + "; ".join(behind)
            progress(f"{spread}: {why}")
            return {"raw": raw, "unconverged": why, "processes": len(procs)}
        converge = max(answer["converged"] for answer in converged) - started
        progress(f"{spread}: converged in {converge:.2f} s")

        command = {"op": "idle", "settle": 2.0, "seconds": idle_seconds}
        idles = await _each(procs, lambda p: p.ask(command, idle_seconds + 60.0))
        idle = sum(answer["bytes"] / answer["elapsed"] for answer in idles) / size
        progress(f"{size} members idle: {idle:.0f} B/s of gossip per member")
        return {"converge": converge, "raw": raw, "idle": idle, "processes": len(procs)}
    finally:
        await asyncio.gather(*(proc.stop() for proc in procs))


def _room_for(size: int) -> str | None:
    """Why ``size`` members cannot all run in this process (file descriptors), or None."""
    return raise_fd_limit(member_fds(size, size))  # both ends of every pair live here


async def _detect(
    size: int, heartbeat: tuple[float, float], progress: Callable[[str], None]
) -> float:
    nodes = [
        Node("d000", cluster=True, heartbeat_interval=heartbeat[0], heartbeat_timeout=heartbeat[1])
    ]
    try:
        await nodes[0].start()
        with tempfile.TemporaryFile() as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _MEMBER_PROGRAM,
                nodes[0].info() or "",
                str(heartbeat[0]),
                str(heartbeat[1]),
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                start_new_session=True,
                cwd=ROOT,
                env={**os.environ, "PYTHONPATH": ROOT},
            )
            try:
                return await _detect_with(process, stderr, nodes, size, heartbeat, progress)
            finally:
                kill_group(process.pid)
                await process.wait()
    finally:
        await asyncio.gather(*(node.close() for node in nodes), return_exceptions=True)


async def _detect_with(
    process: asyncio.subprocess.Process,
    stderr: IO[bytes],
    nodes: list[Node],
    size: int,
    heartbeat: tuple[float, float],
    progress: Callable[[str], None],
) -> float:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60.0)
    if not line:
        raise RuntimeError(f"the detection victim exited: {_last_line(stderr)}")
    json.loads(line)
    uri = nodes[0].info() or ""
    for index in range(1, size - 1):
        node = Node(
            f"d{index:03}",
            seeds=[uri],
            heartbeat_interval=heartbeat[0],
            heartbeat_timeout=heartbeat[1],
        )
        await node.start()
        nodes.append(node)
    await asyncio.gather(*(n.wait_for_members(size, timeout=300.0) for n in nodes))
    downs: list[float] = []
    everyone = asyncio.Event()

    def on_down(member: Member, reason: str) -> None:
        if member.id == "victim":
            downs.append(time.perf_counter())
            if len(downs) == len(nodes):
                everyone.set()

    for node in nodes:
        node.on("member_down", on_down)
    killed = time.perf_counter()
    os.kill(process.pid, signal.SIGKILL)
    await asyncio.wait_for(everyone.wait(), 120.0)
    detect = max(downs) - killed
    progress(f"SIGKILL to member_down on all {len(nodes)} members: {detect:.2f} s")
    return detect


async def cluster_runs(
    sizes: list[int],
    idle_seconds: float,
    heartbeat: tuple[float, float],
    progress: Callable[[str], None],
    processes: int = PROCESSES,
    deadline: float = 120.0,
) -> dict[str, Any]:
    """Convergence, its raw twin and idle gossip for each size; detection on the smallest.

    ``heartbeat`` is the (interval, timeout) of the detection run; convergence and idle
    gossip run at the defaults. ``processes`` is how many worker processes share the members
    (more when the file-descriptor limit asks for it); a size whose members have not all
    converged ``deadline`` seconds after the start is reported as such (``unconverged N``).
    """
    results: dict[str, Any] = {}
    for size in sizes:
        got = await _converge(size, processes, idle_seconds, deadline, progress)
        if "skip" in got:
            progress(f"{size} members: SKIPPED: {got['skip']}")
            results[f"skip {size}"] = got["skip"]
            continue
        for key in ("converge", "raw", "idle", "processes", "unconverged"):
            if key in got:
                results[f"{key} {size}"] = got[key]
        if "unconverged" in got:
            # Is it the timeouts? The same join with the handshake, heartbeat and down_after
            # timeouts scaled up (see docs/benchmarks.md).
            slow = await _converge(size, processes, idle_seconds, deadline, progress, SLOW_SCALE)
            for key in ("converge", "idle", "unconverged"):
                if key in slow:
                    results[f"{key} {size} slow"] = slow[key]
    size = min(sizes)
    reason = _room_for(size)
    if reason is not None:
        progress(f"detection with {size} members: SKIPPED: {reason}")
        results["skip detect"] = reason
    else:
        results["detect"] = await _detect(size, heartbeat, progress)
    results["detect size"] = float(size)
    return results
