"""Behaviour every actor shows whether it lives on this node or a peer (pykka style).

Each test runs twice through the ``route`` fixture: ``local`` (target on the sender's own
system, delivered without the network) and ``remote`` (target on a peer over loopback TCP).
"""

from __future__ import annotations

import asyncio
import time

import pytest
from actor_helpers import (
    Block,
    Boom,
    DeadLetterLog,
    GetState,
    Ping,
    Pong,
    Recorder,
    Route,
    SpecialPing,
    State,
    Unhandled,
    wait_until,
    within,
)

from actors import (
    Actor,
    ActorUsageError,
    AskTimeoutError,
    DeadLetterError,
    RemoteError,
    handler,
)


async def test_tell_reaches_the_actor(route: Route) -> None:
    recorder = Recorder()
    route.host.spawn("rec", recorder)
    assert route.sender.tell(route.node_id, "rec", Ping(seq=7)) is True
    await wait_until(lambda: recorder.seen == [7], recorder.changed)


async def test_ref_tell_and_ask(route: Route) -> None:
    recorder = Recorder()
    route.host.spawn("rec", recorder)
    ref = route.sender.ref(route.node_id, "rec")
    assert ref.tell(Ping(seq=1))
    assert await within(ref.ask(Ping(seq=2))) == Pong(seq=2)
    assert recorder.seen == [1, 2]


async def test_ask_returns_the_handler_result(route: Route) -> None:
    route.host.spawn("rec", Recorder)
    reply = await within(route.sender.ask(route.node_id, "rec", Ping(seq=3), timeout=5))
    assert reply == Pong(seq=3)
    assert type(reply) is Pong
    assert route.sender.pending_asks == 0


async def test_ask_of_a_handler_returning_none_gets_none(route: Route) -> None:
    release = asyncio.Event()
    release.set()
    route.host.spawn("rec", Recorder(release))
    assert await within(route.sender.ask(route.node_id, "rec", Block())) is None


async def test_subclass_message_falls_back_to_base_handler(route: Route) -> None:
    recorder = Recorder()
    route.host.spawn("rec", recorder)
    reply = await within(route.sender.ask(route.node_id, "rec", SpecialPing(seq=5)))
    assert reply == Pong(seq=5)
    assert recorder.seen == [5]


async def test_handler_exception_becomes_remote_error_and_actor_resumes(route: Route) -> None:
    recorder = Recorder()
    route.host.spawn("rec", recorder)
    route.host.tell(route.node_id, "rec", Ping(seq=1))
    with pytest.raises(RemoteError) as caught:
        await within(route.sender.ask(route.node_id, "rec", Boom(text="kaput")))
    assert caught.value.type_name == "ValueError"
    assert caught.value.remote_message == "kaput"
    assert "ValueError: kaput" in str(caught.value)
    # resume (the default) keeps the same instance and its state
    state = await within(route.sender.ask(route.node_id, "rec", GetState()))
    assert isinstance(state, State)
    assert state.seen == [1]
    assert state.instance_id == recorder.instance_id


async def test_ask_timeout_drops_late_reply_and_leaks_nothing(route: Route) -> None:
    release = asyncio.Event()
    recorder = Recorder(release)
    route.host.spawn("rec", recorder)
    started = time.monotonic()
    with pytest.raises(asyncio.TimeoutError) as caught:
        await within(route.sender.ask(route.node_id, "rec", Block(), timeout=0.2))
    assert isinstance(caught.value, AskTimeoutError)
    assert time.monotonic() - started < 5
    assert route.sender.pending_asks == 0
    # Let the blocked handler finish: its (late) reply must be dropped without harm, and the
    # next ask is answered normally.
    release.set()
    assert await within(route.sender.ask(route.node_id, "rec", Ping(seq=9))) == Pong(seq=9)
    assert route.sender.pending_asks == 0
    assert route.sender.dead_letters == 0


async def test_a_cancelled_ask_leaves_no_pending_ask_and_no_timer(route: Route) -> None:
    release = asyncio.Event()
    route.host.spawn("rec", Recorder(release))
    # wait_for cancels the ask (its own timeout is a minute) while it waits for the reply.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(route.sender.ask(route.node_id, "rec", Block(), timeout=60), 0.2)
    assert route.sender.pending_asks == 0
    # Nor does it wait in its timeout's queue any more (the table is private: test-only peek).
    assert route.sender._pending.armed == 0
    release.set()
    assert await within(route.sender.ask(route.node_id, "rec", Ping(seq=1))) == Pong(seq=1)


async def test_a_nan_ask_timeout_is_refused(route: Route) -> None:
    route.host.spawn("rec", Recorder())
    with pytest.raises(ActorUsageError, match="NaN") as caught:
        await within(route.sender.ask(route.node_id, "rec", Ping(seq=1), timeout=float("nan")))
    assert isinstance(caught.value, ValueError)  # what it raised before ActorUsageError
    assert route.sender.pending_asks == 0


async def test_messages_are_handled_one_at_a_time_in_arrival_order(route: Route) -> None:
    class Overlap(Actor):
        def __init__(self) -> None:
            self.active = 0
            self.max_active = 0
            self.order: list[int] = []

        @handler
        async def on_ping(self, msg: Ping) -> None:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            self.order.append(msg.seq)
            self.active -= 1

    actor = Overlap()
    route.host.spawn("overlap", actor)
    for seq in range(200):
        route.sender.tell(route.node_id, "overlap", Ping(seq=seq))
    await within(route.sender.ask(route.node_id, "overlap", Ping(seq=200)))
    assert actor.order == list(range(201))
    assert actor.max_active == 1


async def test_sender_is_the_asking_actor_and_can_be_replied_to(route: Route) -> None:
    done = asyncio.Event()

    class Bouncer(Actor):
        @handler
        def on_ping(self, msg: Ping) -> None:
            sender = self.context.sender
            assert sender is not None
            sender.tell(Pong(seq=msg.seq + 1))

    class Starter(Actor):
        def __init__(self) -> None:
            self.got: list[int] = []

        @handler
        def on_ping(self, msg: Ping) -> None:
            assert self.context.sender is None  # told from plain code
            self.context.system.tell(route.node_id, "bouncer", Ping(seq=msg.seq))

        @handler
        def on_pong(self, msg: Pong) -> None:
            sender = self.context.sender
            assert sender is not None
            assert (sender.node_id, sender.name) == (route.node_id, "bouncer")
            self.got.append(msg.seq)
            done.set()

    starter = Starter()
    route.host.spawn("bouncer", Bouncer())
    route.sender.spawn("starter", starter)
    route.sender.tell(route.sender.id, "starter", Ping(seq=41))
    await within(done.wait())
    assert starter.got == [42]


async def test_unknown_actor_is_a_dead_letter_and_ask_gets_an_error(route: Route) -> None:
    log = DeadLetterLog(route.host)
    route.sender.tell(route.node_id, "nobody", Ping(seq=1))
    with pytest.raises(DeadLetterError) as caught:
        await within(route.sender.ask(route.node_id, "nobody", Ping(seq=2)))
    assert caught.value.reason == "unknown_actor"
    letters = await log.wait_for(2)
    assert [letter.reason for letter in letters] == ["unknown_actor", "unknown_actor"]
    assert route.host.stats().dead_letters_by_reason == {"unknown_actor": 2}
    # the node keeps working
    route.host.spawn("rec", Recorder)
    assert await within(route.sender.ask(route.node_id, "rec", Ping(seq=3))) == Pong(seq=3)


async def test_message_without_handler_is_a_dead_letter_and_actor_goes_on(route: Route) -> None:
    log = DeadLetterLog(route.host)
    recorder = Recorder()
    route.host.spawn("rec", recorder)
    route.sender.tell(route.node_id, "rec", Unhandled())
    with pytest.raises(DeadLetterError) as caught:
        await within(route.sender.ask(route.node_id, "rec", Unhandled()))
    assert caught.value.reason == "no_handler"
    letters = await log.wait_for(2)
    assert {letter.reason for letter in letters} == {"no_handler"}
    assert letters[0].target == "rec"
    assert letters[0].tag == "test.Unhandled"
    assert route.host.dead_letters == 2
    assert await within(route.sender.ask(route.node_id, "rec", Ping(seq=4))) == Pong(seq=4)
    assert recorder.seen == [4]


async def test_supervision_resume_keeps_state(route: Route) -> None:
    recorder = Recorder()
    route.host.spawn("rec", recorder, supervision="resume")
    route.sender.tell(route.node_id, "rec", Ping(seq=1))
    route.sender.tell(route.node_id, "rec", Boom(text="x"))
    route.sender.tell(route.node_id, "rec", Ping(seq=2))
    state = await within(route.sender.ask(route.node_id, "rec", GetState()))
    assert state == State(seen=[1, 2], instance_id=recorder.instance_id, started=1)
    assert recorder.stopped == 0


async def test_supervision_restart_builds_a_fresh_instance(route: Route) -> None:
    instances: list[Recorder] = []

    def factory() -> Recorder:
        instances.append(Recorder())
        return instances[-1]

    route.host.spawn("rec", factory, supervision="restart")
    route.sender.tell(route.node_id, "rec", Ping(seq=1))
    with pytest.raises(RemoteError):
        await within(route.sender.ask(route.node_id, "rec", Boom(text="x")))
    route.sender.tell(route.node_id, "rec", Ping(seq=2))
    state = await within(route.sender.ask(route.node_id, "rec", GetState()))
    assert isinstance(state, State)
    assert len(instances) == 2
    assert state.instance_id == instances[1].instance_id
    assert state.seen == [2]  # the fresh instance did not inherit the old state
    assert state.started == 1  # on_start ran on the fresh instance
    assert instances[0].stopped == 1  # on_stop ran on the old one
    assert instances[0].seen == [1]


async def test_supervision_stop_removes_the_actor(route: Route) -> None:
    log = DeadLetterLog(route.host)
    recorder = Recorder()
    route.host.spawn("rec", recorder, supervision="stop")
    with pytest.raises(RemoteError):
        await within(route.sender.ask(route.node_id, "rec", Boom(text="x")))
    # The actor is removed before the failing ask is answered, so the next ask finds nobody.
    assert "rec" not in route.host.actors
    with pytest.raises(DeadLetterError) as caught:
        await within(route.sender.ask(route.node_id, "rec", Ping(seq=1)))
    assert caught.value.reason == "unknown_actor"
    assert recorder.stopped == 1
    assert recorder.seen == []
    letters = await log.wait_for(1)
    assert [(letter.reason, letter.target, letter.tag) for letter in letters] == [
        ("unknown_actor", "rec", "test.Ping")
    ]
    assert route.host.stats().dead_letters_by_reason == {"unknown_actor": 1}
