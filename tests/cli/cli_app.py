"""Factories for the CLI tests, imported by ``masterless run cli_app:...`` (cwd: tests/cli)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from actors import Actor, ActorSystem, Message, handler


class Echo(Message, tag="cli_app.Echo"):
    text: str


class Recorder(Actor):
    """Echoes; on stop writes "stopped" to the file named by $CLI_TEST_STOP_FILE."""

    @handler
    def on_echo(self, msg: Echo) -> Echo:
        return msg

    def on_stop(self) -> None:
        path = os.environ.get("CLI_TEST_STOP_FILE")
        if path:
            Path(path).write_text(f"stopped {self.context.system.id}\n", encoding="utf-8")


def recorder(system: ActorSystem) -> None:
    system.spawn("recorder", Recorder())


def grouped_recorder(system: ActorSystem) -> None:
    system.spawn("recorder", Recorder())
    system.join_group("recorders", "recorder")


async def async_recorder(system: ActorSystem) -> None:
    await asyncio.sleep(0)
    system.spawn("recorder", Recorder())


def failing(system: ActorSystem) -> None:
    raise RuntimeError("the factory broke on purpose")


not_callable = 42
