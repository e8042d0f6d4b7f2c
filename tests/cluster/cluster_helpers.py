"""Helpers of the cluster tests: fast timings, event logs, a blackhole proxy, member processes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transport import Member, Node

# Fast timings for tests: a member silent for 1 s is lost, checked after 2 s, declared after a
# check of at most 0.2 s. Loaded CI machines stay well inside these.
FAST: dict[str, Any] = {
    "heartbeat_interval": 0.2,
    "heartbeat_timeout": 1.0,
    "handshake_timeout": 1.0,
    "reconnect_initial": 0.05,
    "reconnect_max": 0.5,
}
HEARTBEAT_TIMEOUT = FAST["heartbeat_timeout"]
DOWN_AFTER = HEARTBEAT_TIMEOUT + 1.0  # the default: heartbeat timeout + one re-dial attempt
CHECK_TIMEOUT = FAST["heartbeat_interval"]  # the default: the heartbeat interval
DEADLINE = 20.0
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def cluster_node(node_id: str, **options: Any) -> Node:
    """A clustered node on 127.0.0.1, port 0, with the fast timings."""
    settings = {**FAST, **options}
    if "seeds" not in settings:
        settings["cluster"] = True
    node = Node(node_id, **settings)
    watch(node)
    return node


class Events:
    """Records member_up / member_down of one node with the loop time of each."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.log: list[tuple[float, str, str, str]] = []  # (time, kind, member id, reason)
        self.changed = asyncio.Event()
        node.on("member_up", self._up)
        node.on("member_down", self._down)

    def _up(self, member: Member) -> None:
        self.log.append((time.monotonic(), "up", member.id, ""))
        self.changed.set()

    def _down(self, member: Member, reason: str) -> None:
        self.log.append((time.monotonic(), "down", member.id, reason))
        self.changed.set()

    def of(self, member_id: str) -> list[tuple[str, str]]:
        return [(kind, reason) for _, kind, who, reason in self.log if who == member_id]

    def downs(self) -> list[tuple[str, str]]:
        return [(who, reason) for _, kind, who, reason in self.log if kind == "down"]

    def first(self, kind: str, member_id: str) -> float | None:
        for at, what, who, _ in self.log:
            if what == kind and who == member_id:
                return at
        return None


_EVENTS = ("connect", "disconnect", "message", "member_up", "member_down", "member_updated")
_changed: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}


def _changed_event() -> asyncio.Event:
    loop = asyncio.get_running_loop()
    if loop not in _changed:
        _changed.clear()  # one test's loop at a time
        _changed[loop] = asyncio.Event()
    return _changed[loop]


def watch(*nodes: Node) -> None:
    """Wake :func:`wait_until` on every event of ``nodes`` (handlers run on the test's loop)."""
    for node in nodes:
        for event in _EVENTS:
            node.on(event, lambda *args: _changed_event().set())  # type: ignore[arg-type]


async def wait_until(condition: Callable[[], bool], timeout: float = DEADLINE) -> None:
    """Wait until ``condition`` holds; fail after ``timeout`` seconds.

    The condition is re-checked on every event of a watched node, and at least every 0.1 s
    for state that changes without an event (a duplicate socket closing).
    """
    async with asyncio.timeout(timeout):
        while not condition():
            changed = _changed_event()
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 0.1)


async def full_mesh(nodes: list[Node], timeout: float = DEADLINE) -> None:
    """Wait until every node sees every other as an up member over exactly one connection."""
    ids = {node.id for node in nodes}

    def settled() -> bool:
        for node in nodes:
            if set(node.members) != ids or set(node.peers) != ids - {node.id}:
                return False
            if any(member.status != "up" for member in node.members.values()):
                return False
            if len(node._links) != len(nodes) - 1:  # duplicates closed: one socket per pair
                return False
        return True

    await wait_until(settled, timeout)


class BlackholeProxy:
    """A TCP relay to ``target`` that can be blackholed: bytes are then silently dropped.

    A blackhole keeps every socket open and accepts new connections, like a firewall that
    drops packets: the ends see silence, not a reset, until their heartbeats time out.
    """

    def __init__(self, target: str | None = None) -> None:
        self.target = target  # may be set after the proxy started (its uri advertised)
        self.blackholed = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.uri = ""

    async def __aenter__(self) -> BlackholeProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.uri = f"tcp://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        assert self.target is not None
        host, port = self.target.removeprefix("tcp://").rsplit(":", 1)
        try:
            up_reader, up_writer = await asyncio.open_connection(host, int(port))
        except OSError:
            writer.close()
            self._writers.discard(writer)
            return
        self._writers.add(up_writer)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.get_running_loop().create_task(self._pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        try:
            while data := await source.read(65536):
                if not self.blackholed:
                    sink.write(data)
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sink.close()
            self._writers.discard(sink)


class MemberProcess:
    """A clustered transport node in a child process (``member_process.py``), to SIGKILL."""

    def __init__(self, node_id: str, seeds: list[str], options: dict[str, Any]) -> None:
        self.node_id = node_id
        self.seeds = seeds
        self.options = options
        self.process: asyncio.subprocess.Process | None = None
        self.uri = ""
        self.incarnation = 0

    async def start(self) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / "member_process.py"),
            json.dumps({"id": self.node_id, "seeds": self.seeds, "options": self.options}),
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        assert self.process.stdout is not None
        async with asyncio.timeout(DEADLINE):
            line = await self.process.stdout.readline()
        ready = json.loads(line)
        self.uri = ready["uri"]
        self.incarnation = ready["incarnation"]

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()

    async def stop(self) -> None:
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()
        self.process = None
