"""Tools of the fault-injection suite: a fault proxy, event logs, and nodes in subprocesses.

Nothing here sleeps to synchronize: waits are on events, futures or process output, under a
deadline. The proxy's ``delay`` and ``drip`` do sleep: the elapsed time is the fault itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from support import DEADLINE, Changed, EventRecorder, FaultProxy, uri_of

from transport import Node, parse_uri

__all__ = [
    "DEADLINE",
    "FAST",
    "Changed",
    "EventLog",
    "FaultProxy",
    "NodeProcess",
    "Proxies",
    "linked",
    "port_of",
    "uri_of",
]

NODE_SCRIPT = Path(__file__).with_name("node_process.py")

# Timings small enough that the whole fault suite runs in well under a minute.
FAST = {
    "heartbeat_interval": 0.05,
    "heartbeat_timeout": 0.4,
    "handshake_timeout": 0.5,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.2,
}


EventLog = EventRecorder
"""The fault tests' name for the shared recorder."""


def port_of(uri: str) -> int:
    return parse_uri(uri)[1]


# -- nodes in subprocesses ------------------------------------------------------------------


class NodeProcess:
    """A transport node in its own process (``node_process.py``), killable with SIGKILL.

    The child prints one JSON line per event; ``events`` collects them and ``wait_for``
    waits on them. ``command`` writes a JSON command to its stdin.
    """

    def __init__(self, process: asyncio.subprocess.Process, node_id: str) -> None:
        self.process = process
        self.node_id = node_id
        self.events: list[dict[str, Any]] = []
        self.changed = Changed()
        self.uri = ""
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def start(
        cls, node_id: str, *, port: int = 0, cookie: str | None = None, **options: Any
    ) -> NodeProcess:
        args = [sys.executable, str(NODE_SCRIPT), "--id", node_id, "--port", str(port)]
        if cookie is not None:
            args += ["--cookie", cookie]
        if options:
            args += ["--options", json.dumps(options)]
        process = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        node = cls(process, node_id)
        try:
            await node.wait_for(lambda: node.has("listening") or node.has("exit"), timeout=DEADLINE)
        except BaseException:
            await node.kill()
            raise
        if not node.has("listening"):
            await node.kill()
            raise RuntimeError(f"node process {node_id!r} exited before listening")
        node.uri = node.first("listening")["uri"]
        return node

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            self.events.append(json.loads(line))
            self.changed.notify()
        self.events.append({"event": "exit"})
        self.changed.notify()

    @property
    def port(self) -> int:
        return port_of(self.uri)

    def has(self, event: str, **fields: Any) -> bool:
        return any(self._matches(e, event, fields) for e in self.events)

    def first(self, event: str, **fields: Any) -> dict[str, Any]:
        return next(e for e in self.events if self._matches(e, event, fields))

    def messages(self, peer: str | None = None) -> list[Any]:
        return [
            e["packet"]
            for e in self.events
            if e["event"] == "message" and (peer is None or e["peer"] == peer)
        ]

    @staticmethod
    def _matches(event: dict[str, Any], name: str, fields: dict[str, Any]) -> bool:
        return event["event"] == name and all(event.get(k) == v for k, v in fields.items())

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = DEADLINE) -> None:
        await self.changed.wait_for(predicate, timeout)

    async def command(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    async def kill(self) -> None:
        """SIGKILL: no goodbye, no close; the kernel closes the sockets."""
        if self.process.returncode is None:
            self.process.kill()
        await self._finish()

    async def stop(self) -> None:
        """Ask the node to close cleanly; kill it if it does not exit in time."""
        if self.process.returncode is None:
            with contextlib.suppress(OSError):
                await self.command(op="close")
            try:
                async with asyncio.timeout(DEADLINE):
                    await self.process.wait()
            except TimeoutError:
                self.process.kill()
        await self._finish()

    async def _finish(self) -> None:
        if self.process.returncode is None:
            # A stopped (SIGSTOP) child must be continued for SIGKILL to be reaped promptly.
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGCONT)
        await self.process.wait()
        if self.process.stdin is not None:
            self.process.stdin.close()
            with contextlib.suppress(OSError):
                await self.process.stdin.wait_closed()
        await self._reader


Proxies = Callable[[str], Awaitable[FaultProxy]]
"""The ``proxies`` fixture: starts a fault proxy in front of a target uri."""


@asynccontextmanager
async def linked(
    proxies: Proxies, **options: Any
) -> AsyncIterator[tuple[Node, Node, EventLog, EventLog, FaultProxy]]:
    """Nodes a and b, a dialed b through a fault proxy (so a keeps b and re-dials the proxy)."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(Node("a", **options))
        b = await stack.enter_async_context(Node("b", **options))
        log_a, log_b = EventLog(a), EventLog(b)
        proxy = await proxies(uri_of(b))
        assert await a.connect(proxy.uri) == "b"
        await log_b.wait_event(("connect", "a"))
        yield a, b, log_a, log_b, proxy
