"""A worker pool across three processes, each run by the ``masterless`` command.

One coordinator, which is also the seed, and two workers that join through it::

    masterless run examples.worker_pool:coordinator --id coordinator --port 9100
    masterless run examples.worker_pool:worker --id worker-1 --seed tcp://127.0.0.1:9100
    masterless run examples.worker_pool:worker --id worker-2 --seed tcp://127.0.0.1:9100

Every node is a cluster member; each worker's ``worker`` actor joins the ``workers`` group.
Once ``WORKER_POOL_WORKERS`` workers (default 2) are in the group, the coordinator asks its
members (``system.group("workers")``) to square the numbers 1 to ``WORKER_POOL_JOBS`` (default
20), round-robin, and prints who did what and the sum. Stop every process with Ctrl-C or
SIGTERM: each worker's ``on_stop`` prints how many jobs it did, and the coordinator sees its
workers leave the cluster cleanly (``left``).
``examples/worker_pool_demo.py`` (``make demo-cluster``) starts the three and stops them.

The factories run inside ``masterless run``: each receives the started `ActorSystem`.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from actors import Actor, ActorSystem, Message, handler
from transport import Member

GROUP = "workers"
"""The group every worker actor joins, cluster-wide."""


class Square(Message, tag="worker_pool.Square"):
    """A job: square ``n``."""

    n: int


class Squared(Message, tag="worker_pool.Squared"):
    """A job's result, and who computed it."""

    n: int
    square: int
    worker: str


class Worker(Actor):
    """Squares numbers and counts how many it did."""

    def __init__(self) -> None:
        self.jobs = 0

    @handler
    def on_square(self, msg: Square) -> Squared:
        self.jobs += 1
        return Squared(n=msg.n, square=msg.n * msg.n, worker=self.context.system.id)

    def on_stop(self) -> None:
        print(f"{self.context.system.id} stopping after {self.jobs} jobs", flush=True)


def worker(system: ActorSystem) -> None:
    """``masterless run`` factory of a worker node: one ``worker`` actor, in the group."""
    system.spawn("worker", Worker(), groups=[GROUP])


class Pool:
    """The coordinator's side: waits for the group to fill, then hands out the jobs."""

    def __init__(self, system: ActorSystem, workers: int, jobs: int) -> None:
        self.system = system
        self.wanted = workers
        self.jobs = jobs
        self.started = False

    async def member_up(self, member: Member) -> None:
        print(f"{member.id} joined the cluster", flush=True)
        await self.check()

    async def member_updated(self, member: Member) -> None:
        # A member's groups travel in its cluster entry: a worker whose actor joined the
        # group after its entry first arrived shows up in the group with an update.
        await self.check()

    async def check(self) -> None:
        if not self.started and len(self.system.group(GROUP)) >= self.wanted:
            self.started = True
            await self.run()

    def member_down(self, member: Member, reason: str) -> None:
        print(f"{member.id} is down ({reason})", flush=True)

    async def run(self) -> None:
        workers = self.system.group(GROUP)
        names = ", ".join(f"{ref.node_id}/{ref.name}" for ref in workers)
        print(f"group {GROUP}: {names}", flush=True)
        asks = [
            workers[i % len(workers)].ask(Square(n=n), timeout=10.0)
            for i, n in enumerate(range(1, self.jobs + 1))
        ]
        results = [r for r in await asyncio.gather(*asks) if isinstance(r, Squared)]
        done_by = Counter(r.worker for r in results)
        split = ", ".join(f"{w}: {done_by[w]}" for w in sorted(done_by))
        total = sum(r.square for r in results)
        print(f"done: {len(results)} jobs ({split}), sum of squares {total}", flush=True)


def coordinator(system: ActorSystem) -> None:
    """``masterless run`` factory of the coordinator: waits for the group, hands out the jobs."""
    pool = Pool(
        system,
        workers=int(os.environ.get("WORKER_POOL_WORKERS", "2")),
        jobs=int(os.environ.get("WORKER_POOL_JOBS", "20")),
    )
    system.on("member_up", pool.member_up)
    system.on("member_down", pool.member_down)
    system.node.on("member_updated", pool.member_updated)
    print(f"coordinator listening at {system.info()}", flush=True)
