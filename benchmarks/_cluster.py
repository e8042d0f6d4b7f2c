"""Cluster membership at scale: N members in one process join through one seed.

Three figures per size (30, 100, 200 members in the full run):

- **converge**: from the first ``start()`` until every member sees every other (``members``
  complete on all nodes) over one connection per pair;
- **idle gossip**: membership bytes (``[4, body]`` frames, framing included) sent per member
  per second over a quiet window after convergence; heartbeats are the mesh's, not counted;
- **detect**: from SIGKILL of a member running in its own process until ``member_down`` has
  fired on every other member (measured once, on the smallest size).

All members share one event loop here, so the figures include the cost of running N nodes on
one core; a real cluster spreads that over N processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import msgpack

from transport import Member, Node

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


def _count_membership_bytes(node: Node, counter: list[int]) -> None:
    send = node._send_membership

    def counting(peer_id: str, body: list[Any]) -> bool:
        counter[0] += len(msgpack.packb([4, body], use_bin_type=True)) + 4
        return send(peer_id, body)

    node._send_membership = counting  # type: ignore[method-assign]


async def _converge(
    size: int, idle_seconds: float, progress: Callable[[str], None]
) -> dict[str, float]:
    seed = Node("m000", cluster=True)
    counter = [0]
    await seed.start()
    nodes = [seed]
    try:
        uri = seed.info() or ""
        others = [Node(f"m{i:03}", seeds=[uri]) for i in range(1, size)]
        nodes.extend(others)
        for node in nodes:
            _count_membership_bytes(node, counter)
        started = time.perf_counter()
        for node in others:
            await node.start()
        await asyncio.gather(*(node.wait_for_members(size, timeout=300.0) for node in nodes))
        # A member is announced once this node is connected to it: all views complete is
        # the full mesh.
        converged = time.perf_counter() - started
        progress(f"{size} members converged in {converged:.2f} s")
        await asyncio.sleep(2.0)  # let the joins' last anti-entropy rounds finish
        before = counter[0]
        await asyncio.sleep(idle_seconds)
        idle = (counter[0] - before) / size / idle_seconds
        progress(f"{size} members idle: {idle:.0f} B/s of gossip per member")
        return {"converge": converged, "idle": idle}
    finally:
        await asyncio.gather(*(node.close() for node in nodes), return_exceptions=True)


async def _detect(
    size: int, heartbeat: tuple[float, float], progress: Callable[[str], None]
) -> float:
    timings = {"heartbeat_interval": heartbeat[0], "heartbeat_timeout": heartbeat[1]}
    nodes = [Node("d000", cluster=True, **timings)]
    await nodes[0].start()
    uri = nodes[0].info() or ""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _MEMBER_PROGRAM,
        uri,
        str(heartbeat[0]),
        str(heartbeat[1]),
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))},
    )
    try:
        assert process.stdout is not None
        json.loads(await asyncio.wait_for(process.stdout.readline(), 60.0))
        for index in range(1, size - 1):
            node = Node(f"d{index:03}", seeds=[uri], **timings)
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
        process.kill()
        await asyncio.wait_for(everyone.wait(), 120.0)
        detect = max(downs) - killed
        progress(f"SIGKILL to member_down on all {len(nodes)} members: {detect:.2f} s")
        return detect
    finally:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        await asyncio.gather(*(node.close() for node in nodes), return_exceptions=True)


def _room_for(size: int) -> str | None:
    """Why ``size`` members cannot run in this process (file descriptors), or None."""
    # Both ends of every pair live in this process, plus sockets for duplicates and listeners.
    needed = size * (size - 1) + 4 * size + 64
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return None
    # Raising the hard limit needs CAP_SYS_RESOURCE (root here); otherwise up to it.
    limit = (needed, max(hard, needed)) if hard != resource.RLIM_INFINITY else (needed, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, limit)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed and (hard == resource.RLIM_INFINITY or hard >= needed):
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))
        soft = needed
    if soft < needed:
        return (
            f"needs {needed} file descriptors in one process, the limit is {soft} "
            f"(hard {hard}; raising it needs root or `ulimit -Hn {needed}`)"
        )
    return None


async def cluster_runs(
    sizes: list[int],
    idle_seconds: float,
    heartbeat: tuple[float, float],
    progress: Callable[[str], None],
) -> dict[str, Any]:
    """Convergence and idle gossip for each size, and detection time on the smallest.

    ``heartbeat`` is the (interval, timeout) of the detection run; convergence and idle
    gossip run at the defaults.
    """
    results: dict[str, Any] = {}
    for size in sizes:
        reason = _room_for(size)
        if reason is not None:
            progress(f"{size} members: SKIPPED: {reason}")
            results[f"skip {size}"] = reason
            continue
        got = await _converge(size, idle_seconds, progress)
        results[f"converge {size}"] = got["converge"]
        results[f"idle {size}"] = got["idle"]
    results["detect"] = await _detect(min(sizes), heartbeat, progress)
    results["detect size"] = float(min(sizes))
    return results
