"""One process of a spread cluster run (``python -m benchmarks._cluster_worker``).

The driver (``benchmarks._cluster``) starts several of these, each hosting the members
``--first`` to ``--first + --count - 1`` of a cluster of ``--size``. Commands arrive as JSON
lines on stdin and each gets one JSON line on stdout; a command that fails answers
``{"error": ...}`` and the process exits. Closing stdin closes every member; ``--lifetime``
bounds the process whatever the driver does.

Commands:

- ``raw_listen``: one raw asyncio listener per hosted member; answers their ports.
- ``raw_dial`` (``ports``: every member's): the raw twin of a full mesh. Each pair is dialled
  once, by one end chosen so that every member dials about half of the others, at most 64
  dials in flight per process; answers ``done`` (``time.monotonic()``) once this process's
  dials have connected and its listeners have accepted every dial aimed at them.
- ``raw_close``: closes the raw connections and listeners.
- ``seed``: starts member 0 (``cluster=True``) and answers its uri.
- ``start`` (``seed``: its uri, ``timeout``): starts the other hosted members at once with that
  seed and answers ``converged`` (``time.monotonic()``) once every hosted member sees all
  ``size`` members, or ``unconverged`` (how far they got) when ``timeout`` passes first.
- ``idle`` (``settle``, ``seconds``): waits ``settle`` seconds, then answers the membership
  bytes the hosted members sent over the next ``seconds`` (``bytes``, ``elapsed``).

``--timing-scale`` multiplies the members' handshake, heartbeat and ``down_after`` timeouts.
``MASTERLESS_CLUSTER_LOG=PATH`` writes each worker's log (INFO) to ``PATH.<first member>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import resource
import sys
import threading
import time
from typing import Any

import msgpack

from transport import MembershipConfig, Node
from transport._config import DEFAULTS

_DIALS_IN_FLIGHT = 64


def count_membership_bytes(node: Node, counter: list[int]) -> None:
    """Add to ``counter[0]`` the bytes of every membership frame ``node`` sends (framed)."""
    send = node._send_membership

    def counting(peer_id: str, body: list[Any]) -> bool:
        counter[0] += len(msgpack.packb([4, body], use_bin_type=True)) + 4
        return send(peer_id, body)

    node._send_membership = counting  # type: ignore[method-assign]


def raise_fd_limit(needed: int) -> str | None:
    """Raise this process's soft file-descriptor limit to its hard one; why not enough, or None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = needed if hard == resource.RLIM_INFINITY else max(soft, hard)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        return f"needs {needed} file descriptors, the limit is {soft} (hard {hard})"
    return None


def dialer(i: int, j: int) -> int:
    """Which end of the pair ``(i, j)`` dials in the raw mesh: about half of the pairs each."""
    low, high = min(i, j), max(i, j)
    return low if (low + high) % 2 else high


class _Accepts(asyncio.Protocol):
    def __init__(self, mesh: _RawMesh) -> None:
        self.mesh = mesh

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.mesh.accepted(transport)


class _RawMesh:
    """The raw twin: listeners for the hosted members, and their share of the pairs' dials."""

    def __init__(self, first: int, count: int, size: int) -> None:
        self.local = range(first, first + count)
        self.size = size
        self.servers: list[asyncio.Server] = []
        self.transports: list[asyncio.BaseTransport] = []
        self.expected = sum(
            1 for j in self.local for i in range(size) if i != j and dialer(i, j) == i
        )
        self.count = 0
        self.all_accepted = asyncio.Event()

    def accepted(self, transport: asyncio.BaseTransport) -> None:
        self.transports.append(transport)
        self.count += 1
        if self.count >= self.expected:
            self.all_accepted.set()

    async def listen(self) -> list[int]:
        loop = asyncio.get_running_loop()
        for _ in self.local:
            server = await loop.create_server(lambda: _Accepts(self), "127.0.0.1", 0)
            self.servers.append(server)
        return [server.sockets[0].getsockname()[1] for server in self.servers]

    async def dial(self, ports: list[int]) -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Semaphore(_DIALS_IN_FLIGHT)
        if self.expected == 0:
            self.all_accepted.set()

        async def one(port: int) -> None:
            async with gate:
                transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port)
            self.transports.append(transport)

        pairs = [
            ports[j] for i in self.local for j in range(self.size) if j != i and dialer(i, j) == i
        ]
        await asyncio.gather(*(one(port) for port in pairs))
        await self.all_accepted.wait()

    def close(self) -> None:
        for transport in self.transports:
            transport.close()
        for server in self.servers:
            server.close()
        self.transports, self.servers = [], []


def timings(scale: float) -> dict[str, Any]:
    """Node options with the handshake, heartbeat and down_after timeouts times ``scale``."""
    if scale == 1:
        return {}
    return {
        "handshake_timeout": DEFAULTS.handshake_timeout * scale,
        "heartbeat_timeout": DEFAULTS.heartbeat_timeout * scale,
        "down_after": MembershipConfig().down_after * scale,
    }


class _Members:
    """The cluster members this process hosts, with one membership-byte counter for them all."""

    def __init__(self, first: int, count: int, size: int, scale: float) -> None:
        self.local = range(first, first + count)
        self.size = size
        self.options = timings(scale)
        self.nodes: list[Node] = []
        self.counter = [0]

    async def _start(self, node: Node) -> None:
        count_membership_bytes(node, self.counter)
        self.nodes.append(node)
        await node.start()

    async def seed(self) -> str:
        await self._start(Node("m000", cluster=True, **self.options))
        return self.nodes[0].info() or ""

    async def start(self, uri: str, timeout: float) -> dict[str, Any]:
        try:
            async with asyncio.timeout(timeout):
                await asyncio.gather(
                    *(
                        self._start(Node(f"m{index:03}", seeds=[uri], **self.options))
                        for index in self.local
                        if index != 0
                    )
                )
                await asyncio.gather(*(node.wait_for_members(self.size) for node in self.nodes))
        except TimeoutError:
            return {"unconverged": self.views()}
        # A member is announced once this node is connected to it: all views complete is
        # the full mesh.
        return {"converged": time.monotonic()}

    def views(self) -> str:
        """How far the hosted members got: members seen and peers connected, least to most."""
        seen = [len(node.members) for node in self.nodes] or [0]
        peers = [len(node.peers) for node in self.nodes] or [0]
        return (
            f"{len(self.nodes)} of {len(self.local)} members here started, they see "
            f"{min(seen)} to {max(seen)} members and are connected to {min(peers)} to "
            f"{max(peers)} peers"
        )

    async def idle(self, settle: float, seconds: float) -> dict[str, float]:
        await asyncio.sleep(settle)  # let the joins' last anti-entropy rounds finish
        before, started = self.counter[0], time.monotonic()
        await asyncio.sleep(seconds)
        return {"bytes": self.counter[0] - before, "elapsed": time.monotonic() - started}

    async def close(self) -> None:
        await asyncio.gather(*(node.close() for node in self.nodes), return_exceptions=True)


def _reply(data: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(data) + "\n")
    sys.stdout.flush()


async def serve(args: argparse.Namespace) -> None:
    """Answer the driver's commands until stdin closes."""
    loop = asyncio.get_running_loop()
    commands: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(commands.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(commands.put_nowait, None)

    threading.Thread(target=read_stdin, daemon=True).start()
    raw = _RawMesh(args.first, args.count, args.size)
    members = _Members(args.first, args.count, args.size, args.timing_scale)
    try:
        while (command := await commands.get()) is not None:
            op = command["op"]
            if op == "raw_listen":
                _reply({"ports": await raw.listen()})
            elif op == "raw_dial":
                await raw.dial(command["ports"])
                _reply({"done": time.monotonic()})
            elif op == "raw_close":
                raw.close()
                _reply({"closed": True})
            elif op == "seed":
                _reply({"uri": await members.seed()})
            elif op == "start":
                _reply(await members.start(command["seed"], command["timeout"]))
            elif op == "idle":
                _reply(await members.idle(command["settle"], command["seconds"]))
            else:
                raise ValueError(f"unknown command {op!r}")
    finally:
        raw.close()
        await asyncio.wait_for(members.close(), 30.0)


def cli() -> None:
    """Parse the arguments, raise the fd limit, answer commands within ``--lifetime``."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--first", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--fds", type=int, required=True)
    parser.add_argument("--lifetime", type=float, default=600.0)
    parser.add_argument("--timing-scale", type=float, default=1.0)
    args = parser.parse_args()
    log = os.environ.get("MASTERLESS_CLUSTER_LOG")
    if log:  # a debugging aid: each worker's transport log, at INFO, in LOG.<first member>
        logging.basicConfig(
            filename=f"{log}.{args.first}",
            level=logging.INFO,
            format="%(asctime)s %(levelname)s %(message)s",
        )
    reason = raise_fd_limit(args.fds)
    if reason is not None:
        _reply({"error": reason})
        sys.exit(1)
    _reply({"ready": True})
    try:
        asyncio.run(asyncio.wait_for(serve(args), args.lifetime))
    except Exception as exc:  # every failure goes to the driver as one line
        detail = str(exc) or f"(lifetime {args.lifetime:.0f} s, or a step's own timeout)"
        _reply({"error": f"{type(exc).__name__}: {detail}"})
        sys.exit(1)


if __name__ == "__main__":
    cli()
