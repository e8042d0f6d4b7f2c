"""An ActorCell on its own: it answers through the delivery's reply capability and reaches
its host only through the `CellHost` protocol (here a recording fake)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from actor_helpers import Boom, Ping, Pong, Recorder, Unhandled, within

from actors import ActorSystem, DeadLetterError, Message, RemoteError
from actors._actor import Context
from actors._envelope import LocalReply, ReplyTo, new_delivery
from actors._mailbox import ActorCell


class FakeHost:
    def __init__(self) -> None:
        self.letters: list[tuple[str, str | None, str | None, str | None]] = []
        self.stopped: list[ActorCell] = []
        self.ended: list[tuple[ActorCell, int]] = []
        self.failures: list[tuple[str, type[Message], Exception]] = []
        self.changed = asyncio.Event()

    def dead_letter(
        self,
        reason: str,
        target: str | None,
        tag: str | None,
        sender_node: str | None,
        detail: str,
        reply_to: ReplyTo | None,
        *,
        log: bool = True,
    ) -> None:
        self.letters.append((reason, target, tag, sender_node))
        if reply_to is not None:
            reply_to.dead_letter(reason, detail)
        self.changed.set()

    def cell_stopped(self, cell: ActorCell) -> None:
        self.stopped.append(cell)
        self.changed.set()

    def cell_ended(self, cell: ActorCell, discarded: int) -> None:
        self.ended.append((cell, discarded))
        self.changed.set()

    def actor_failed(self, cell: ActorCell, message_type: type[Message], exc: Exception) -> None:
        self.failures.append((cell.name, message_type, exc))


async def test_a_cell_answers_through_the_reply_capability_and_its_host() -> None:
    host = FakeHost()
    system = ActorSystem("cell-host")  # never started: it only names the context's node
    recorder = Recorder()
    cell = ActorCell(host, Context(system, "rec"), recorder, None, "resume")
    cell.start()
    loop = asyncio.get_running_loop()

    def ask(message: Any) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = loop.create_future()
        cell.put(new_delivery(message, "peer", "asker", LocalReply(future)))
        return future

    assert await within(ask(Ping(seq=1))) == Pong(seq=1)
    with pytest.raises(RemoteError) as caught:
        await within(ask(Boom(text="kaput")))
    assert (caught.value.type_name, caught.value.remote_message) == ("ValueError", "kaput")
    with pytest.raises(DeadLetterError) as dead:
        await within(ask(Unhandled()))
    assert dead.value.reason == "no_handler"
    assert host.letters == [("no_handler", "rec", "test.Unhandled", "peer")]
    assert recorder.seen == [1]
    cell.request_stop()
    assert cell.task is not None
    await within(cell.task)
    assert host.stopped == [cell]
    assert cell.stopped
    await system.close()
