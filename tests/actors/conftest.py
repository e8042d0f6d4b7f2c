"""Fixtures: actor systems on 127.0.0.1 with port 0, connected over the real transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from actors import ActorSystem

SystemFactory = Callable[[str], Awaitable[ActorSystem]]


@pytest.fixture
async def make_system() -> AsyncIterator[SystemFactory]:
    """Start actor systems on demand; every one is closed at teardown."""
    systems: list[ActorSystem] = []

    async def make(node_id: str) -> ActorSystem:
        system = ActorSystem(node_id, host="127.0.0.1", port=0)
        await system.start()
        systems.append(system)
        return system

    yield make
    for system in reversed(systems):
        await system.close()


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


@pytest.fixture(params=["local", "remote"])
async def route(request: pytest.FixtureRequest, make_system: SystemFactory) -> Route:
    """The pykka-style switch: the same test runs with the target on this node and on a peer."""
    sender = await make_system("alpha")
    if request.param == "local":
        return Route("local", sender, sender)
    host = await make_system("beta")
    await connect(sender, host)
    return Route("remote", sender, host)
