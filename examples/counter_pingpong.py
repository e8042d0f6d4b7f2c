"""Counter ping-pong: a ``Count`` message bounces between two ``Counter`` actors on two nodes.

Each hop adds one to the count; every ``--every`` hops the receiving node prints progress, and at
``--limit`` hops both nodes print a summary (hops, elapsed, hops/s) and stop.

One process, two actor systems talking over loopback TCP (the default)::

    python examples/counter_pingpong.py --limit 10000

Two OS processes::

    python examples/counter_pingpong.py --role left --port 9000
    python examples/counter_pingpong.py --role right --connect tcp://127.0.0.1:9000

``examples/demo.py`` (``make demo``) starts both roles for you.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

from actors import Actor, ActorSystem, Message, NodeDown, handler


class Count(Message):
    """The ball: how many hops it has made so far."""

    total: int


class Serve(Message):
    """Tells a counter to start the game against the counter on ``peer``."""

    peer: str


class Done(Message):
    """Tells the other counter that the game ended at ``total`` hops."""

    total: int


class Counter(Actor):
    """Adds one to every ``Count`` and sends it back to whoever sent it."""

    def __init__(self, role: str, limit: int, every: int) -> None:
        self.role = role
        self.limit = limit
        self.every = every
        self.started_at: float | None = None
        self.finished: asyncio.Future[tuple[int, float]] = (
            asyncio.get_running_loop().create_future()
        )

    def _finish(self, total: int) -> None:
        if not self.finished.done():
            elapsed = time.perf_counter() - (self.started_at or time.perf_counter())
            self.finished.set_result((total, elapsed))

    @handler
    def on_serve(self, msg: Serve) -> None:
        self.started_at = time.perf_counter()
        # Told from inside a handler, so the peer sees this actor as the sender.
        self.context.system.tell(msg.peer, self.context.name, Count(total=0))

    @handler
    def on_count(self, msg: Count) -> None:
        if self.started_at is None:
            self.started_at = time.perf_counter()
        sender = self.context.sender
        assert sender is not None, "a Count always comes from the other counter"
        if msg.total >= self.limit:
            sender.tell(Done(total=msg.total))
            self._finish(msg.total)
            return
        if msg.total and msg.total % self.every == 0:
            print(f"[{self.role}] hop {msg.total}", flush=True)
        sender.tell(Count(total=msg.total + 1))

    @handler
    def on_done(self, msg: Done) -> None:
        self._finish(msg.total)

    @handler
    def on_node_down(self, msg: NodeDown) -> None:
        if not self.finished.done():
            self.finished.set_exception(
                RuntimeError(f"peer {msg.node_id} went away ({msg.reason}) before the end")
            )


def summary(role: str, total: int, elapsed: float) -> str:
    rate = total / elapsed if elapsed > 0 else float("inf")
    return f"[{role}] done: {total} hops in {elapsed:.3f} s ({rate:,.0f} hops/s)"


async def run_single(args: argparse.Namespace) -> int:
    async with (
        ActorSystem("left", host=args.host, port=0) as left,
        ActorSystem("right", host=args.host, port=0) as right,
    ):
        left_counter = Counter("left", args.limit, args.every)
        right_counter = Counter("right", args.limit, args.every)
        left.spawn("counter", left_counter)
        right.spawn("counter", right_counter)
        uri = left.info()
        assert uri is not None
        print(f"[left] listening on {uri}", flush=True)
        await right.connect(uri)
        print(f"[right] connected to {uri}", flush=True)
        right.tell(right.id, "counter", Serve(peer=left.id))
        async with asyncio.timeout(args.timeout):
            for role, counter in (("left", left_counter), ("right", right_counter)):
                total, elapsed = await counter.finished
                print(summary(role, total, elapsed), flush=True)
    return 0


async def run_left(args: argparse.Namespace) -> int:
    async with ActorSystem("left", host=args.host, port=args.port, cookie=args.cookie) as system:
        counter = Counter("left", args.limit, args.every)
        system.spawn("counter", counter)
        print(f"[left] listening on {system.info()}", flush=True)
        async with asyncio.timeout(args.timeout):
            total, elapsed = await counter.finished
        print(summary("left", total, elapsed), flush=True)
    return 0


async def run_right(args: argparse.Namespace) -> int:
    async with ActorSystem("right", host=args.host, port=0, cookie=args.cookie) as system:
        counter = Counter("right", args.limit, args.every)
        system.spawn("counter", counter)
        async with asyncio.timeout(args.timeout):
            peer = await system.connect(args.connect)
            print(f"[right] connected to {peer} at {args.connect}", flush=True)
            system.tell(system.id, "counter", Serve(peer=peer))
            total, elapsed = await counter.finished
        print(summary("right", total, elapsed), flush=True)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--role", choices=["single", "left", "right"], default="single")
    parser.add_argument("--limit", type=int, default=10_000, help="hops before stopping")
    parser.add_argument("--every", type=int, default=0, help="progress every N hops")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="left: port to listen on (0: any)")
    parser.add_argument("--connect", metavar="URI", help="right: the left node's uri")
    parser.add_argument("--cookie", default=None, help="shared secret of the mesh")
    parser.add_argument("--timeout", type=float, default=60.0, help="give up after seconds")
    args = parser.parse_args(argv)
    if args.limit < 1:
        parser.error("--limit must be at least 1")
    if args.every <= 0:
        args.every = max(1, args.limit // 10)
    if args.role == "right" and not args.connect:
        parser.error("--role right needs --connect URI")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    runner = {"single": run_single, "left": run_left, "right": run_right}[args.role]
    try:
        return asyncio.run(runner(args))
    except TimeoutError:
        print(f"[{args.role}] gave up after {args.timeout} s", file=sys.stderr)
    except Exception as exc:
        print(f"[{args.role}] failed: {exc}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
