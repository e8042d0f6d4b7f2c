"""Fixtures: actor systems on 127.0.0.1 with port 0, connected over the real transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from actor_helpers import Route, SystemFactory, connect

from actors import ActorSystem


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


@pytest.fixture(params=["local", "remote"])
async def route(request: pytest.FixtureRequest, make_system: SystemFactory) -> Route:
    """The pykka-style switch: the same test runs with the target on this node and on a peer."""
    sender = await make_system("alpha")
    if request.param == "local":
        return Route("local", sender, sender)
    host = await make_system("beta")
    await connect(sender, host)
    return Route("remote", sender, host)
