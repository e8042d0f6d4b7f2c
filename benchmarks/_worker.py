"""Worker processes started by the benchmark driver (``python -m benchmarks._worker ROLE``).

Each role prints one JSON line with where to reach it, then serves until its stdin closes or
its ``--lifetime`` runs out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import threading
import time
from typing import Any

from ._util import FrameReader, encode_frame, percentiles, run


class RawSink(asyncio.Protocol):
    """Counts ``["m", ...]`` frames; answers ``["end"]`` with the count and pings with pongs."""

    def __init__(self) -> None:
        self.reader = FrameReader()
        self.count = 0
        self.delays: list[float] = []
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        replies = []
        for body in self.reader.feed(data):
            tag = body[0]
            if tag == "m":
                self.count += 1
            elif tag == "ping":
                replies.append(encode_frame(["pong", body[1]]))
            elif tag == "t":
                # A timestamped one-way frame (time.monotonic(), one clock for the host).
                self.delays.append(time.monotonic() - body[1])
            elif tag == "end":
                replies.append(encode_frame(["got", self.count]))
                self.count = 0
            elif tag == "stats":
                replies.append(encode_frame(["stats", percentiles(self.delays)]))
                self.delays = []
        if replies and self.transport is not None:
            self.transport.write(b"".join(replies))


async def serve_raw(count: int) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    servers = [await loop.create_server(RawSink, "127.0.0.1", 0) for _ in range(count)]
    ports = [server.sockets[0].getsockname()[1] for server in servers]
    return {"port": ports[0], "ports": ports, "keep": servers}


async def serve_nodes(count: int) -> dict[str, Any]:
    from transport import Node

    nodes = []
    for index in range(count):
        node = Node(f"sink-{index}")
        counter = [0]

        def on_message(
            peer: str, packet: Any, node: Node = node, counter: list[int] = counter
        ) -> None:
            tag = packet[0]
            if tag == "m":
                counter[0] += 1
            elif tag == "ping":
                node.send(peer, ["pong", packet[1]])
            elif tag == "end":
                node.send(peer, ["got", counter[0]])
                counter[0] = 0

        node.on("message", on_message)
        await node.start()
        nodes.append(node)
    return {"uris": [node.info() for node in nodes], "keep": nodes}


async def serve_actors(count: int) -> dict[str, Any]:
    from actors import ActorSystem

    from ._messages import Sink

    systems = []
    for index in range(count):
        system = ActorSystem(f"asink-{index}")
        await system.start()
        system.spawn("sink", Sink())
        systems.append(system)
    return {"uris": [system.info() for system in systems], "keep": systems}


async def main(args: argparse.Namespace) -> None:
    if args.role == "raw":
        state = await serve_raw(args.count)
    elif args.role == "nodes":
        state = await serve_nodes(args.count)
    else:
        state = await serve_actors(args.count)
    keep = state.pop("keep")
    sys.stdout.write(json.dumps(state) + "\n")
    sys.stdout.flush()
    loop = asyncio.get_running_loop()
    stdin_closed = loop.create_future()

    def watch_stdin() -> None:
        sys.stdin.buffer.read()
        loop.call_soon_threadsafe(lambda: stdin_closed.done() or stdin_closed.set_result(None))

    threading.Thread(target=watch_stdin, daemon=True).start()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stdin_closed, args.lifetime)
    for item in keep:
        if args.role == "raw":
            item.close()
        else:
            await item.close()


def cli() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("role", choices=["raw", "nodes", "actors"])
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--loop", default="asyncio")
    parser.add_argument("--lifetime", type=float, default=120.0)
    args = parser.parse_args()
    run(lambda: main(args), args.loop)


if __name__ == "__main__":
    cli()
