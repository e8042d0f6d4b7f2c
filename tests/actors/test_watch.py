"""Death watch: ``context.watch(ref)`` gives one `Terminated` per watch, local and remote."""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Ping, Pong, Recorder, Route, SystemFactory, connect, wait_until, within

from actors import Actor, ActorRef, ActorSystem, Message, Terminated, handler


class Watch(Message, tag="test.watch.Watch"):
    ref: ActorRef
    times: int = 1


class Unwatch(Message, tag="test.watch.Unwatch"):
    ref: ActorRef


class Watcher(Actor):
    """Watches what it is told to; records every Terminated it receives."""

    def __init__(self) -> None:
        self.terminated: list[Terminated] = []
        self.changed = asyncio.Event()

    @handler
    def on_watch(self, msg: Watch) -> None:
        for _ in range(msg.times):
            self.context.watch(msg.ref)

    @handler
    def on_unwatch(self, msg: Unwatch) -> None:
        self.context.unwatch(msg.ref)

    @handler
    def on_terminated(self, msg: Terminated) -> None:
        self.terminated.append(msg)
        self.changed.set()

    @handler
    def on_ping(self, msg: Ping) -> Pong:
        return Pong(seq=msg.seq)


def entries(*systems: ActorSystem) -> int:
    """Watch-table entries held by these systems (0 when nothing is watched)."""
    distinct = {id(system): system for system in systems}.values()
    return sum(system._watches.size for system in distinct)


async def sync(route: Route) -> None:
    """A round trip sender -> host -> sender: whatever either sent before has arrived."""
    route.host.spawn("sync", Recorder) if "sync" not in route.host.actors else None
    assert await within(route.sender.ask(route.node_id, "sync", Ping(seq=0))) == Pong(seq=0)


async def watching(route: Route, watcher: Watcher, target: str, times: int = 1) -> ActorRef:
    """Make the watcher (on the sender) watch ``target`` on the host; return the ref."""
    route.sender.spawn("watcher", watcher) if "watcher" not in route.sender.actors else None
    ref = route.sender.ref(route.node_id, target)
    await within(route.sender.ask(route.sender.id, "watcher", Watch(ref=ref, times=times)))
    await sync(route)  # the watch notice reached the host
    return ref


async def test_stop_gives_one_terminated_stopped(route: Route) -> None:
    watcher = Watcher()
    route.host.spawn("target", Recorder())
    ref = await watching(route, watcher, "target", times=3)  # idempotent
    await route.host.stop("target")
    await wait_until(lambda: len(watcher.terminated) >= 1, watcher.changed)
    assert watcher.terminated == [Terminated(ref=ref, reason="stopped")]
    assert watcher.terminated[0].ref.system is route.sender
    # Nothing else is on its way: a round trip later there is still one, and no entry is left.
    await sync(route)
    assert await within(route.sender.ask(route.sender.id, "watcher", Ping(seq=1))) == Pong(seq=1)
    assert len(watcher.terminated) == 1
    assert entries(route.sender, route.host) == 0


async def test_a_missing_actor_gives_not_found(route: Route) -> None:
    watcher = Watcher()
    ref = await watching(route, watcher, "nobody")
    await wait_until(lambda: len(watcher.terminated) >= 1, watcher.changed)
    assert watcher.terminated == [Terminated(ref=ref, reason="not_found")]
    assert entries(route.sender, route.host) == 0


async def test_unwatch_means_no_terminated(route: Route) -> None:
    watcher = Watcher()
    route.host.spawn("target", Recorder())
    route.host.spawn("other", Recorder())
    ref = await watching(route, watcher, "target")
    other = await watching(route, watcher, "other")
    await within(route.sender.ask(route.sender.id, "watcher", Unwatch(ref=ref)))
    await sync(route)  # the unwatch notice reached the host
    await route.host.stop("target")
    await route.host.stop("other")
    # Notices from the host arrive in order: "other"'s comes after any for "target" would.
    await wait_until(lambda: len(watcher.terminated) >= 1, watcher.changed)
    assert watcher.terminated == [Terminated(ref=other, reason="stopped")]
    assert entries(route.sender, route.host) == 0


async def test_watch_again_after_terminated_is_a_new_watch(route: Route) -> None:
    watcher = Watcher()
    route.host.spawn("target", Recorder())
    ref = await watching(route, watcher, "target")
    await route.host.stop("target")
    await wait_until(lambda: len(watcher.terminated) >= 1, watcher.changed)
    await watching(route, watcher, "target")
    await wait_until(lambda: len(watcher.terminated) >= 2, watcher.changed)
    assert [t.reason for t in watcher.terminated] == ["stopped", "not_found"]
    assert {t.ref for t in watcher.terminated} == {ref}


async def test_a_stopping_watcher_leaves_no_entry_behind(route: Route) -> None:
    watcher = Watcher()
    recorder = Recorder()
    route.host.spawn("target", recorder)
    await watching(route, watcher, "target")
    assert entries(route.sender, route.host) == 2  # the watcher's half and the target's half
    await route.sender.stop("watcher")
    await sync(route)  # the unwatch notice reached the host
    assert entries(route.sender, route.host) == 0
    await route.host.stop("target")
    assert watcher.terminated == []
    assert route.sender.dead_letters == route.host.dead_letters == 0


async def test_an_actor_may_watch_itself_and_others_watch_each_other(route: Route) -> None:
    first, second = Watcher(), Watcher()
    route.host.spawn("second", second)
    await watching(route, first, "second")
    await within(
        route.host.ask(
            route.node_id, "second", Watch(ref=route.host.ref(route.sender.id, "watcher"))
        )
    )
    await route.sender.stop("watcher")
    await wait_until(lambda: len(second.terminated) >= 1, second.changed)
    assert [t.reason for t in second.terminated] == ["stopped"]
    assert first.terminated == []
    await sync(route)
    assert entries(route.sender, route.host) == 0


async def test_node_down_ends_every_watch_of_its_actors(make_system: SystemFactory) -> None:
    a = await make_system("alpha")
    b = ActorSystem("beta")
    await b.start()
    await connect(a, b)
    b.spawn("t1", Recorder())
    b.spawn("t2", Recorder())
    watcher = Watcher()
    a.spawn("watcher", watcher)
    refs = [a.ref("beta", "t1"), a.ref("beta", "t2")]
    for ref in refs:
        await within(a.ask("alpha", "watcher", Watch(ref=ref)))
    # b watches a's watcher too: that half must be dropped on both sides as well.
    b.spawn("back", Watcher())
    await within(b.ask("beta", "back", Watch(ref=b.ref("alpha", "watcher"))))
    assert await within(a.ask("beta", "t1", Ping(seq=1))) == Pong(seq=1)  # notices arrived
    down = asyncio.Event()
    a.on("node_down", lambda node_id, reason: down.set())
    await b.node.close()  # the node goes away without its actors stopping first
    await within(down.wait())
    await wait_until(lambda: len(watcher.terminated) >= 2, watcher.changed)
    assert sorted(watcher.terminated, key=lambda t: t.ref.name) == [
        Terminated(ref=refs[0], reason="node_down"),
        Terminated(ref=refs[1], reason="node_down"),
    ]
    assert entries(a) == 0
    await b.close()
    assert entries(b) == 0


async def test_watching_a_node_that_is_not_connected_gives_node_down(
    make_system: SystemFactory,
) -> None:
    a = await make_system("alpha")
    watcher = Watcher()
    a.spawn("watcher", watcher)
    ref = a.ref("nowhere", "x")
    await within(a.ask("alpha", "watcher", Watch(ref=ref)))
    await wait_until(lambda: len(watcher.terminated) >= 1, watcher.changed)
    assert watcher.terminated == [Terminated(ref=ref, reason="node_down")]
    assert entries(a) == 0


async def test_a_restarted_node_ends_the_old_watches(make_system: SystemFactory) -> None:
    a = await make_system("alpha")
    b = await make_system("beta")
    await connect(a, b)
    b.spawn("target", Recorder())
    watcher = Watcher()
    a.spawn("watcher", watcher)
    ref = a.ref("beta", "target")
    await within(a.ask("alpha", "watcher", Watch(ref=ref)))
    assert await within(a.ask("beta", "target", Ping(seq=1))) == Pong(seq=1)
    await b.close()
    # A new incarnation of beta (a new process, say): its actors are new, the watch is over.
    b2 = await make_system("beta")
    await connect(a, b2)
    b2.spawn("target", Recorder())
    await wait_until(lambda: len(watcher.terminated) >= 1, watcher.changed)
    # beta closed gracefully, so its "stopped" may arrive before the disconnect's "node_down".
    assert len(watcher.terminated) == 1
    assert watcher.terminated[0].ref == ref
    assert watcher.terminated[0].reason in ("stopped", "node_down")
    assert entries(a, b2) == 0
    # Watching the new incarnation's actor is a new watch, answered by the new node.
    await within(a.ask("alpha", "watcher", Watch(ref=ref)))
    assert await within(a.ask("beta", "target", Ping(seq=2))) == Pong(seq=2)
    assert entries(a, b2) == 2
    await b2.stop("target")
    await wait_until(lambda: len(watcher.terminated) >= 2, watcher.changed)
    assert watcher.terminated[1] == Terminated(ref=ref, reason="stopped")
    assert entries(a, b2) == 0


def test_watch_notices_on_the_wire() -> None:
    from actors._envelope import TERMINATED, UNWATCH, WATCH, Malformed, WatchNotice, decode
    from actors._envelope import watch_packet as packet

    assert decode(packet(WATCH, "t", "w", "a")) == WatchNotice(WATCH, "t", "w", None)
    assert decode(packet(UNWATCH, "t", "w", "a")) == WatchNotice(UNWATCH, "t", "w", None)
    assert decode(packet(TERMINATED, "t", "w", "a", "stopped")) == WatchNotice(
        TERMINATED, "t", "w", "stopped"
    )
    assert isinstance(decode(packet(TERMINATED, "t", "w", "a", "bored")), Malformed)
    assert isinstance(decode([WATCH, "t", None, None, "a", None, None]), Malformed)
    assert isinstance(decode([WATCH, 3, None, None, "a", "w", None]), Malformed)


async def test_watch_needs_a_ref(make_system: SystemFactory) -> None:
    from actors import ActorUsageError

    a = await make_system("alpha")
    watcher = Watcher()
    a.spawn("watcher", watcher)
    with pytest.raises(ActorUsageError, match="ActorRef"):
        watcher.context.watch("alpha/watcher")  # type: ignore[arg-type]
    with pytest.raises(ActorUsageError, match="ActorRef"):
        watcher.context.unwatch(None)  # type: ignore[arg-type]
    assert entries(a) == 0
