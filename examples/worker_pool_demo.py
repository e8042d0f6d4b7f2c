"""The worker pool across three processes, run with ``masterless`` (``make demo-cluster``).

Starts ``masterless run examples.worker_pool:coordinator`` on a free port, reads the uri it
prints, starts two ``examples.worker_pool:worker`` nodes with ``--seed URI`` (they join the
cluster, their actors the ``workers`` group), relays every line they print, waits for the
coordinator's ``done:`` line (the jobs went to the group's members), then sends SIGTERM to
all three and checks that each stopped gracefully (exit status 0). Exits non-zero if any step
fails or the run exceeds ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URI_LINE = re.compile(r"coordinator listening at (tcp://\S+)")


class Child:
    """One ``masterless run`` process whose output is relayed with a name prefix."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.lines: asyncio.Queue[str | None] = asyncio.Queue()
        assert process.stdout is not None
        self.relay = asyncio.create_task(self._relay(process.stdout))

    async def _relay(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            line = raw.decode(errors="replace").rstrip()
            print(f"{self.name:>11} | {line}", flush=True)
            await self.lines.put(line)
        await self.lines.put(None)

    async def expect(self, pattern: str) -> re.Match[str]:
        """Wait for the first line matching ``pattern``."""
        while True:
            line = await self.lines.get()
            if line is None:
                raise RuntimeError(f"{self.name} exited before printing {pattern!r}")
            match = re.search(pattern, line)
            if match:
                return match

    async def stop(self) -> int:
        """SIGTERM, then the exit status (after its output is relayed)."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        status = await self.process.wait()
        await self.relay
        return status


async def start(name: str, factory: str, *args: str) -> Child:
    env = dict(os.environ)
    # The children import actors and examples from this checkout even when not installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "actors",
        "run",
        f"examples.worker_pool:{factory}",
        "--id",
        name,
        "--log-level",
        "warning",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=ROOT,
    )
    return Child(name, process)


async def demo() -> None:
    children: list[Child] = []
    try:
        coordinator = await start("coordinator", "coordinator", "--port", "0")
        children.append(coordinator)
        seed = (await coordinator.expect(URI_LINE.pattern))[1]
        for name in ("worker-1", "worker-2"):
            children.append(await start(name, "worker", "--seed", seed))
        await coordinator.expect(r"^done: ")
    finally:
        # Workers first, so the coordinator sees them leave; then the coordinator.
        statuses = {child.name: await child.stop() for child in reversed(children)}
    failed = {name: status for name, status in statuses.items() if status != 0}
    if failed:
        raise RuntimeError(f"nodes did not stop cleanly: {failed}")
    print("demo-cluster: three nodes ran the pool and stopped cleanly", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="limit for the whole run")
    args = parser.parse_args()
    try:
        asyncio.run(asyncio.wait_for(demo(), args.timeout))
    except (RuntimeError, TimeoutError) as exc:
        print(f"demo-cluster failed: {exc or 'timed out'}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
