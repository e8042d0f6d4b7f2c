"""Messages, actors and systems shared by the actor tests (waiting helpers: tests/support.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from support import DEADLINE as DEADLINE
from support import wait_until
from support import within as within

from actors import Actor, ActorSystem, DeadLetter, Message, handler


class Ping(Message, tag="test.Ping"):
    seq: int


class Pong(Message, tag="test.Pong"):
    seq: int


class SpecialPing(Ping, tag="test.SpecialPing"):
    """A subclass with no handler of its own: dispatch falls back to Ping's handler."""

    flavour: str = "special"


class Boom(Message, tag="test.Boom"):
    text: str


class Unhandled(Message, tag="test.Unhandled"):
    pass


class Block(Message, tag="test.Block"):
    """Makes the Recorder wait until its release event is set."""


class GetState(Message, tag="test.GetState"):
    pass


class State(Message, tag="test.State"):
    seen: list[int]
    instance_id: int
    started: int


class Recorder(Actor):
    """Records Ping sequence numbers; answers asks; fails on Boom; blocks on Block."""

    instances = 0

    def __init__(self, release: asyncio.Event | None = None) -> None:
        Recorder.instances += 1
        self.instance_id = Recorder.instances
        self.seen: list[int] = []
        self.started = 0
        self.stopped = 0
        self.changed = asyncio.Event()
        self.release = release or asyncio.Event()
        self.senders: list[str | None] = []

    def on_start(self) -> None:
        self.started += 1

    def on_stop(self) -> None:
        self.stopped += 1

    @handler
    def on_ping(self, msg: Ping) -> Pong:
        self.seen.append(msg.seq)
        sender = self.context.sender
        self.senders.append(None if sender is None else f"{sender.node_id}/{sender.name}")
        self.changed.set()
        return Pong(seq=msg.seq)

    @handler
    async def on_boom(self, msg: Boom) -> None:
        await asyncio.sleep(0)
        raise ValueError(msg.text)

    @handler
    async def on_block(self, msg: Block) -> None:
        await self.release.wait()

    @handler
    def on_get_state(self, msg: GetState) -> State:
        return State(seen=list(self.seen), instance_id=self.instance_id, started=self.started)


class DeadLetterLog:
    """Collects dead letters of a system and lets a test wait for them."""

    def __init__(self, system: ActorSystem) -> None:
        self.letters: list[DeadLetter] = []
        self.changed = asyncio.Event()
        system.on("dead_letter", self._on_dead_letter)

    def _on_dead_letter(self, letter: DeadLetter) -> None:
        self.letters.append(letter)
        self.changed.set()

    async def wait_for(self, count: int) -> list[DeadLetter]:
        await wait_until(lambda: len(self.letters) >= count, self.changed)
        return self.letters


# --- systems and routes (used by conftest.py fixtures and by tests) ---------------------

SystemFactory = Callable[[str], Awaitable[ActorSystem]]


async def connect(a: ActorSystem, b: ActorSystem) -> None:
    """Connect a to b and wait until each lists the other as a peer."""
    b_saw_a = asyncio.Event()
    b.on("node_up", lambda node_id, uri: b_saw_a.set() if node_id == a.id else None)
    uri = b.info()
    assert uri is not None
    assert await asyncio.wait_for(a.connect(uri), 10) == b.id
    assert b.id in a.peers
    if a.id not in b.peers:
        await asyncio.wait_for(b_saw_a.wait(), 10)
    assert a.id in b.peers


@dataclass
class Route:
    """Where a behaviour test sends from, and where its target actor lives."""

    kind: str
    sender: ActorSystem
    host: ActorSystem

    @property
    def node_id(self) -> str:
        return self.host.id
