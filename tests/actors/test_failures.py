"""Failures are visible: the ``actor_failed`` event, per-actor counters, one shutdown line."""

from __future__ import annotations

import asyncio
import logging

import pytest
from actor_helpers import Block, Boom, GetState, Ping, Recorder, Route, State, wait_until, within

from actors import ActorFailed, ActorStats, ActorSystem, RemoteError


async def test_actor_failed_reports_tell_and_ask_failures(route: Route) -> None:
    failures: list[ActorFailed] = []
    changed = asyncio.Event()

    def on_failed(failure: ActorFailed) -> None:
        failures.append(failure)
        changed.set()

    route.host.on("actor_failed", on_failed)
    route.host.spawn("rec", Recorder)
    assert route.sender.tell(route.node_id, "rec", Boom(text="told"))
    await wait_until(lambda: len(failures) == 1, changed)
    with pytest.raises(RemoteError, match="asked"):
        await within(route.sender.ask(route.node_id, "rec", Boom(text="asked")))
    await wait_until(lambda: len(failures) == 2, changed)
    assert [(f.actor, f.message_type, type(f.exception)) for f in failures] == [
        ("rec", Boom, ValueError),
        ("rec", Boom, ValueError),
    ]
    assert [str(f.exception) for f in failures] == ["told", "asked"]


async def test_per_actor_counters(route: Route) -> None:
    route.host.spawn("rec", Recorder, supervision="restart")
    route.host.spawn("idle", Recorder())
    for seq in range(3):
        assert route.sender.tell(route.node_id, "rec", Ping(seq=seq))
    with pytest.raises(RemoteError):
        await within(route.sender.ask(route.node_id, "rec", Boom(text="x")))
    state = await within(route.sender.ask(route.node_id, "rec", GetState(), reply_type=State))
    assert state.seen == []  # restarted: a fresh instance
    stats = route.host.stats().by_actor
    assert stats["rec"] == ActorStats(
        handled=5, failed=1, restarts=1, mailbox_depth=0, mailbox_size=None
    )
    assert stats["idle"] == ActorStats(handled=0, failed=0, restarts=0, mailbox_depth=0)


async def test_mailbox_depth_counts_waiting_messages(route: Route) -> None:
    release = asyncio.Event()
    recorder = Recorder(release)
    route.host.spawn("rec", recorder)
    route.host.spawn("sync", Recorder())
    route.sender.tell(route.node_id, "rec", Block())
    for seq in range(5):
        route.sender.tell(route.node_id, "rec", Ping(seq=seq))
    # Packets from one node arrive in order: once "sync" answers, the Pings are queued.
    await within(route.sender.ask(route.node_id, "sync", Ping(seq=99)))
    assert route.host.stats().by_actor["rec"].mailbox_depth == 5
    release.set()
    await within(route.sender.ask(route.node_id, "rec", GetState()))
    assert route.host.stats().by_actor["rec"].mailbox_depth == 0
    assert recorder.seen == [0, 1, 2, 3, 4]


async def test_shutdown_with_queued_mail_logs_one_summary_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    system = ActorSystem("closing")
    await system.start()
    release = asyncio.Event()
    system.spawn("rec", Recorder(release))
    system.spawn("other", Recorder(release))
    system.tell("closing", "rec", Block())
    system.tell("closing", "other", Block())
    for seq in range(1000):
        system.tell("closing", "rec", Ping(seq=seq))
        system.tell("closing", "other", Ping(seq=seq))
    assert system.stats().by_actor["rec"].mailbox_depth == 1001
    caplog.set_level(logging.DEBUG, logger="actors")
    closing = asyncio.ensure_future(system.close())
    await asyncio.sleep(0)  # one loop turn: close() has asked every actor to stop
    assert system.closed
    release.set()
    await within(closing, 30)
    warnings = [
        r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("actors")
    ]
    summary = [r.getMessage() for r in warnings if "queued" in r.getMessage()]
    assert len(summary) == 1, summary
    assert "2000 queued message(s)" in summary[0]
    assert "rec: 1000" in summary[0] and "other: 1000" in summary[0]
    assert system.stats().dead_letters_by_reason["actor_stopped"] == 2000
    assert [r for r in warnings if r.getMessage().startswith("dead letter on")] == []
