"""A transport node in its own process, for tests that kill -9 and restart a peer.

Usage: ``python node_process.py --id b --port 0 [--cookie secret] [--options JSON]``

Prints one JSON line per event on stdout (``listening`` first, with the uri), echoes every
received packet back to its sender as ``["echo", packet]``, and obeys JSON commands on stdin:
``{"op": "connect", "uri": ...}``, ``{"op": "send", "peer": ..., "packet": ...}``,
``{"op": "close"}``. Packets must be JSON-representable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from transport import Node, TransportError


def report(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


async def serve(node_id: str, port: int, cookie: str | None, options: dict[str, Any]) -> None:
    node = Node(node_id, port=port, cookie=cookie, **options)
    node.on("listening", lambda uri: report("listening", uri=uri))
    node.on("connect", lambda peer, uri: report("connect", peer=peer, uri=uri))
    node.on("disconnect", lambda peer, reason: report("disconnect", peer=peer, reason=reason))

    def on_message(peer: str, packet: Any) -> None:
        report("message", peer=peer, packet=packet)
        node.send(peer, ["echo", packet])

    node.on("message", on_message)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with node:
        while line := await reader.readline():
            command = json.loads(line)
            op = command["op"]
            if op == "close":
                break
            if op == "connect":
                try:
                    peer = await node.connect(command["uri"])
                except TransportError as exc:
                    report("connect_failed", error=type(exc).__name__, message=str(exc))
                else:
                    report("connected", peer=peer)
            elif op == "send":
                report("sent", ok=node.send(command["peer"], command["packet"]))
    report("closed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cookie")
    parser.add_argument("--options", default="{}")
    args = parser.parse_args()
    asyncio.run(serve(args.id, args.port, args.cookie, json.loads(args.options)))


if __name__ == "__main__":
    main()
