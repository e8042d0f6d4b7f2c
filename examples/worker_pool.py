"""A worker pool across three processes, each run by the ``masterless`` command.

One coordinator, which is also the seed, and two workers that join through it::

    masterless run examples.worker_pool:coordinator --id coordinator --port 9100
    masterless run examples.worker_pool:worker --id worker-1 --seed tcp://127.0.0.1:9100
    masterless run examples.worker_pool:worker --id worker-2 --seed tcp://127.0.0.1:9100

Once ``WORKER_POOL_WORKERS`` workers (default 2) are up, the coordinator asks them to square
the numbers 1 to ``WORKER_POOL_JOBS`` (default 20), round-robin, and prints who did what and
the sum. Stop every process with Ctrl-C or SIGTERM: each worker's ``on_stop`` prints how many
jobs it did, and the coordinator sees its workers leave cleanly (``closed``).
``examples/worker_pool_demo.py`` (``make demo-cluster``) starts the three and stops them.

The factories run inside ``masterless run``: each receives the started `ActorSystem`.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter

from actors import Actor, ActorSystem, Message, handler

WORKER_PREFIX = "worker"


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
    """``masterless run`` factory of a worker node: one ``worker`` actor."""
    system.spawn("worker", Worker())


class Pool:
    """The coordinator's side: tracks the workers that are up and hands out the jobs."""

    def __init__(self, system: ActorSystem, workers: int, jobs: int) -> None:
        self.system = system
        self.wanted = workers
        self.jobs = jobs
        self.workers: list[str] = []
        self.started = False

    async def node_up(self, node_id: str, uri: str | None) -> None:
        if not node_id.startswith(WORKER_PREFIX) or node_id in self.workers:
            return
        self.workers.append(node_id)
        print(f"{node_id} joined ({len(self.workers)}/{self.wanted})", flush=True)
        if len(self.workers) >= self.wanted and not self.started:
            self.started = True
            await self.run()

    def node_down(self, node_id: str, reason: str) -> None:
        if node_id in self.workers:
            self.workers.remove(node_id)
            print(f"{node_id} left ({reason})", flush=True)

    async def run(self) -> None:
        workers = list(self.workers)
        asks = [
            self.system.ask(workers[i % len(workers)], "worker", Square(n=n), timeout=10.0)
            for i, n in enumerate(range(1, self.jobs + 1))
        ]
        results = [r for r in await asyncio.gather(*asks) if isinstance(r, Squared)]
        done_by = Counter(r.worker for r in results)
        split = ", ".join(f"{w}: {done_by[w]}" for w in sorted(done_by))
        total = sum(r.square for r in results)
        print(f"done: {len(results)} jobs ({split}), sum of squares {total}", flush=True)


def coordinator(system: ActorSystem) -> None:
    """``masterless run`` factory of the coordinator: waits for workers, hands out the jobs."""
    pool = Pool(
        system,
        workers=int(os.environ.get("WORKER_POOL_WORKERS", "2")),
        jobs=int(os.environ.get("WORKER_POOL_JOBS", "20")),
    )
    system.on("node_up", pool.node_up)
    system.on("node_down", pool.node_down)
    print(f"coordinator listening at {system.info()}", flush=True)
