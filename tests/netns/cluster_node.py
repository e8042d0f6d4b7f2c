"""One cluster member for the multi-host test, run inside a host's network namespace.

Usage: ``python cluster_node.py --id h1 --host 192.0.2.1 --port 7000 [--seed URI] --cookie C``

Joins the cluster through the seed, then every ``--interval`` sends each member it is
connected to a packet ``["seq", n]`` numbered per destination, and checks what arrives: per
sender, sequence numbers must rise (a gap is a loss, allowed: delivery is at most once; a
repeat or a step back is a duplicate or a reordering, never allowed). Prints one JSON line
per event on stdout (``listening``, ``member_up``, ``member_down``, ``heard`` for the first
packet from a member after its ``member_up``, ``report``) and obeys
``{"op": "report"}`` and ``{"op": "close"}`` on stdin.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import defaultdict
from typing import Any

from transport import Member, Node


def emit(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


class Tally:
    """Sequence checks per sender, sequence numbers per destination."""

    def __init__(self) -> None:
        self.next_seq: dict[str, int] = defaultdict(int)
        self.last_seen: dict[str, int] = {}
        self.received: dict[str, int] = defaultdict(int)
        self.duplicates_or_reorders = 0
        self.awaited: set[str] = set()

    def member_up(self, peer: str) -> None:
        """Announce (once) the first packet from ``peer`` after it came up."""
        self.awaited.add(peer)

    def on_message(self, peer: str, packet: Any) -> None:
        if not (isinstance(packet, list) and len(packet) == 2 and packet[0] == "seq"):
            return
        seq = packet[1]
        if seq <= self.last_seen.get(peer, -1):
            self.duplicates_or_reorders += 1
        self.last_seen[peer] = seq
        self.received[peer] += 1
        if peer in self.awaited:
            self.awaited.discard(peer)
            emit("heard", id=peer)

    def report(self, node: Node) -> dict[str, Any]:
        return {
            "members": sorted(m.id for m in node.members.values() if m.status == "up"),
            "peers": sorted(node.peers),
            "received": dict(self.received),
            "sent": dict(self.next_seq),
            "bad": self.duplicates_or_reorders,
        }


async def send_forever(node: Node, tally: Tally, interval: float) -> None:
    while True:
        for peer in node.peers:
            if node.send(peer, ["seq", tally.next_seq[peer]]):
                tally.next_seq[peer] += 1
        await asyncio.sleep(interval)  # the traffic's pace, not a synchronization


async def serve(args: argparse.Namespace) -> None:
    node = Node(
        args.id,
        host=args.host,
        port=args.port,
        cookie=args.cookie,
        seeds=[args.seed] if args.seed else [],
        cluster=True,
        heartbeat_interval=0.2,
        heartbeat_timeout=1.0,
        reconnect_initial=0.1,
        reconnect_max=0.5,
    )
    tally = Tally()
    node.on("message", tally.on_message)

    def on_member_up(member: Member) -> None:
        emit("member_up", id=member.id)
        tally.member_up(member.id)

    node.on("member_up", on_member_up)
    node.on("member_down", lambda member, reason: emit("member_down", id=member.id, reason=reason))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    async with node:
        emit("listening", uri=node.info())
        sender = asyncio.ensure_future(send_forever(node, tally, args.interval))
        try:
            while line := await reader.readline():
                op = json.loads(line)["op"]
                if op == "close":
                    break
                if op == "report":
                    emit("report", **tally.report(node))
        finally:
            sender.cancel()
    emit("closed")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--id", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed")
    parser.add_argument("--cookie", required=True)
    parser.add_argument("--interval", type=float, default=0.05)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
