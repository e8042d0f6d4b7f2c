"""Fault-injection suite: the ``soak`` marker and shared fixtures."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from fault_helpers import FaultProxy, NodeProcess, Proxies


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "soak: long-running randomized fault test (SOAK_SECONDS sets its length)"
    )


@pytest.fixture
async def proxies() -> AsyncIterator[Proxies]:
    """Start fault proxies to given target uris; all are closed at teardown."""
    started: list[FaultProxy] = []

    async def make(target: str) -> FaultProxy:
        proxy = FaultProxy(target)
        await proxy.__aenter__()
        started.append(proxy)
        return proxy

    yield make
    for proxy in reversed(started):
        await proxy.__aexit__(None, None, None)


@pytest.fixture
async def processes() -> AsyncIterator[Callable[..., Awaitable[NodeProcess]]]:
    """Start nodes in subprocesses; every one still running is stopped at teardown."""
    started: list[NodeProcess] = []

    async def make(node_id: str, **options: Any) -> NodeProcess:
        process = await NodeProcess.start(node_id, **options)
        started.append(process)
        return process

    yield make
    for process in reversed(started):
        await process.kill()
