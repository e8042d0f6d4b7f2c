"""ActorSystem: lifecycle, spawn/stop, node events, multi-dispatch, ordering, failures."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from actor_helpers import (
    Block,
    DeadLetterLog,
    GetState,
    Ping,
    Pong,
    Recorder,
    State,
    SystemFactory,
    connect,
    wait_until,
    within,
)

import actors._envelope
import transport
from actors import (
    Actor,
    ActorNotFoundError,
    ActorSystem,
    ActorUsageError,
    DeadLetterError,
    NodeDown,
    NodeDownError,
    NodeError,
    NodeUp,
    RemoteError,
    SpawnError,
    SystemClosedError,
    handler,
)

# --- identity and lifecycle ------------------------------------------------------------------


async def test_identity_properties_and_repr() -> None:
    system = ActorSystem("ident", port=0)
    assert system.info() is None
    assert isinstance(system.node, transport.Node)
    async with system:
        assert system.id == "ident"
        uri = system.info()
        assert uri is not None and uri.startswith("tcp://127.0.0.1:")
        assert int(uri.rsplit(":", 1)[1]) > 0
        assert "ident" in repr(system) and "running" in repr(system)
    assert "closed" in repr(system)
    assert system.closed


async def test_spawn_refuses_duplicates_and_bad_arguments(make_system: SystemFactory) -> None:
    system = await make_system("spawner")
    system.spawn("rec", Recorder)
    with pytest.raises(SpawnError, match="already runs"):
        system.spawn("rec", Recorder)
    with pytest.raises(SpawnError, match="factory"):
        system.spawn("restart", Recorder(), supervision="restart")
    with pytest.raises(SpawnError, match="supervision"):
        system.spawn("policy", Recorder, supervision="explode")  # type: ignore[arg-type]

    def broken() -> Recorder:
        raise RuntimeError("cannot build")

    with pytest.raises(SpawnError, match="cannot build") as caught:
        system.spawn("broken", broken)
    assert isinstance(caught.value.__cause__, RuntimeError)
    with pytest.raises(SpawnError, match="not an Actor"):
        system.spawn("odd", lambda: "nope")  # type: ignore[arg-type,return-value]
    instance = Recorder()
    system.spawn("once", instance)
    with pytest.raises(SpawnError, match="already spawned"):
        system.spawn("twice", instance)
    assert set(system.actors) == {"rec", "once"}


async def test_stop_runs_on_stop_and_later_messages_are_dead_letters(
    make_system: SystemFactory,
) -> None:
    system = await make_system("stopper")
    log = DeadLetterLog(system)
    recorder = Recorder()
    system.spawn("rec", recorder)
    assert await within(system.ask("stopper", "rec", Ping(seq=1))) == Pong(seq=1)
    await within(system.stop("rec"))
    assert recorder.stopped == 1
    assert system.tell("stopper", "rec", Ping(seq=2)) is False
    assert [letter.reason for letter in await log.wait_for(1)] == ["unknown_actor"]
    with pytest.raises(ActorNotFoundError, match="rec"):
        await system.stop("rec")
    # the name is free again
    system.spawn("rec", Recorder)
    assert await within(system.ask("stopper", "rec", Ping(seq=3))) == Pong(seq=3)


async def test_close_stops_actors_and_fails_pending_asks(make_system: SystemFactory) -> None:
    a = ActorSystem("closing-a")
    await a.start()
    b = await make_system("closing-b")
    await connect(a, b)
    release = asyncio.Event()
    entered: list[str] = []
    both_entered = asyncio.Event()

    class Stuck(Actor):
        def __init__(self) -> None:
            self.stopped = 0

        @handler
        async def on_block(self, msg: Block) -> None:
            entered.append(self.context.name)
            if len(entered) == 2:
                both_entered.set()
            await release.wait()

        def on_stop(self) -> None:
            self.stopped += 1

    local = Stuck()
    a.spawn("local", local)
    b.spawn("remote", Stuck())
    ask_local = asyncio.ensure_future(a.ask("closing-a", "local", Block(), timeout=30))
    ask_remote = asyncio.ensure_future(a.ask("closing-b", "remote", Block(), timeout=30))
    await within(both_entered.wait())
    assert a.pending_asks == 2

    async def close_then_release() -> None:
        closing = asyncio.ensure_future(a.close())
        # the blocked local handler would keep close() waiting: pending asks fail first,
        # then the actor finishes once released
        with pytest.raises(SystemClosedError, match="closed while waiting"):
            await within(ask_local)
        with pytest.raises(SystemClosedError):
            await within(ask_remote)
        release.set()
        await within(closing)

    started = time.monotonic()
    await within(close_then_release())
    assert time.monotonic() - started < 5
    assert local.stopped == 1
    assert a.pending_asks == 0
    assert a.actors == ()
    with pytest.raises(SystemClosedError):
        a.spawn("late", Recorder)
    with pytest.raises(SystemClosedError):
        await a.ask("closing-b", "remote", Ping(seq=1))
    dead_before = a.dead_letters
    for target in ("closing-a", "closing-b", ["closing-a", "closing-b"]):
        with pytest.raises(SystemClosedError):
            a.tell(target, "local", Ping(seq=1))  # type: ignore[call-overload]
    assert a.dead_letters == dead_before  # refused, not counted as dead letters
    await within(a.close())  # idempotent


# --- node events -----------------------------------------------------------------------------


async def test_node_up_and_down_reach_callbacks_and_actors(make_system: SystemFactory) -> None:
    a = await make_system("events-a")
    b = await make_system("events-b")
    sync_events: list[tuple[str, str]] = []
    async_events: list[tuple[str, str]] = []
    changed = asyncio.Event()

    def on_up(node_id: str, uri: str) -> None:
        sync_events.append(("up", node_id))
        changed.set()

    async def on_down(node_id: str, reason: str) -> None:
        await asyncio.sleep(0)
        async_events.append(("down", node_id))
        changed.set()

    class Watcher(Actor):
        def __init__(self) -> None:
            self.events: list[Any] = []

        @handler
        def on_node_up(self, msg: NodeUp) -> None:
            self.events.append(msg)
            changed.set()

        @handler
        def on_node_down(self, msg: NodeDown) -> None:
            self.events.append(msg)
            changed.set()

    watcher = Watcher()
    a.spawn("watcher", watcher)
    a.on("node_up", on_up)
    a.on("node_down", on_down)
    with pytest.raises(ActorUsageError, match="unknown event") as caught:
        a.on("node_sideways", on_up)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)  # what it raised before ActorUsageError
    await connect(a, b)
    await wait_until(lambda: len(watcher.events) == 1 and len(sync_events) == 1, changed)
    assert sync_events == [("up", "events-b")]
    assert watcher.events[0].node_id == "events-b"
    await b.close()
    await wait_until(lambda: len(watcher.events) == 2 and len(async_events) == 1, changed)
    assert async_events == [("down", "events-b")]
    assert isinstance(watcher.events[1], NodeDown)
    assert watcher.events[1].node_id == "events-b"
    assert watcher.events[1].reason


# --- ask failures ----------------------------------------------------------------------------


async def test_ask_to_unconnected_node_fails_at_once(make_system: SystemFactory) -> None:
    a = await make_system("lonely")
    with pytest.raises(NodeDownError, match="not connected") as caught:
        await within(a.ask("nowhere", "rec", Ping(seq=1), timeout=30), 5)
    assert caught.value.node_id == "nowhere"
    assert a.pending_asks == 0
    assert a.tell("nowhere", "rec", Ping(seq=1)) is False


async def test_ask_fails_promptly_when_the_node_drops_mid_flight(
    make_system: SystemFactory,
) -> None:
    a = await make_system("drop-a")
    b = await make_system("drop-b")
    await connect(a, b)
    arrived = asyncio.Event()
    release = asyncio.Event()

    class Stuck(Actor):
        @handler
        async def on_block(self, msg: Block) -> None:
            arrived.set()
            await release.wait()

    b.spawn("stuck", Stuck())
    asking = asyncio.ensure_future(a.ask("drop-b", "stuck", Block(), timeout=30))
    await within(arrived.wait())
    started = time.monotonic()
    await b.node.close()  # the peer's node goes away while the ask is in flight
    with pytest.raises(NodeDownError, match="went down") as caught:
        await within(asking)
    assert time.monotonic() - started < 5
    assert caught.value.node_id == "drop-b"
    assert a.pending_asks == 0
    release.set()


async def test_reply_that_cannot_be_serialized_is_a_remote_encode_error(
    make_system: SystemFactory,
) -> None:
    a = await make_system("badreply")

    class Sloppy(Actor):
        @handler
        def on_ping(self, msg: Ping) -> object:
            return object()

    a.spawn("sloppy", Sloppy())
    with pytest.raises(RemoteError) as caught:
        await within(a.ask("badreply", "sloppy", Ping(seq=1)))
    assert caught.value.type_name == "EncodeError"
    assert "object" in caught.value.remote_message


async def test_tell_refuses_non_messages(make_system: SystemFactory) -> None:
    a = await make_system("typed")
    with pytest.raises(ActorUsageError, match="Message") as caught:
        a.tell("typed", "x", {"seq": 1})  # type: ignore[call-overload]
    assert isinstance(caught.value, TypeError)  # what it raised before ActorUsageError
    with pytest.raises(ActorUsageError, match="Message"):
        await a.ask("typed", "x", {"seq": 1})  # type: ignore[arg-type]


def test_bad_node_options_are_actor_usage_errors_chained_to_the_transport() -> None:
    with pytest.raises(ActorUsageError) as caught:
        ActorSystem("open", host="0.0.0.0")  # a non-loopback bind without a cookie
    assert isinstance(caught.value.__cause__, transport.TransportError)
    with pytest.raises(ActorUsageError) as caught:
        ActorSystem("typo", heartbeat_intervall=1.0)
    assert isinstance(caught.value.__cause__, TypeError)


async def test_connect_failure_is_a_node_error_chained_to_the_transport_error(
    make_system: SystemFactory,
) -> None:
    gone = ActorSystem("gone")
    await gone.start()
    uri = gone.info()
    await gone.close()
    a = await make_system("dialer")
    assert uri is not None
    with pytest.raises(NodeError) as caught:
        await within(a.connect(uri))
    assert isinstance(caught.value.__cause__, transport.TransportError)


# --- dead letters from the wire --------------------------------------------------------------


async def test_bad_packets_are_dead_letters_and_the_node_keeps_working(
    make_system: SystemFactory,
) -> None:
    a = await make_system("raw-a")
    b = await make_system("raw-b")
    await connect(a, b)
    log = DeadLetterLog(b)
    recorder = Recorder()
    b.spawn("rec", recorder)
    raw_replies: list[Any] = []
    got_reply = asyncio.Event()

    def on_raw(peer_id: str, packet: Any) -> None:
        if packet[0] == actors.EnvelopeKind.ERROR:
            raw_replies.append(packet)
            got_reply.set()

    a.node.on("message", on_raw)
    tell, ask = actors.EnvelopeKind.TELL, actors.EnvelopeKind.ASK
    bad_packets = [
        [tell, "rec", "test.Ping", {"seq": "not a number"}, "raw-a", None, None],
        [tell, "rec", "no.such.tag", {}, "raw-a", None, None],
        [tell, "rec", "test.Ping", {"seq": 1, "surprise": True}, "raw-a", None, None],
        "not an envelope",
        [99, "rec", "test.Ping", {"seq": 1}, "raw-a", None, None],
        [ask, "rec", "test.Ping", {"seq": []}, "raw-a", None, 1001],
        [ask, "rec", "no.such.tag", {}, "raw-a", None, 1002],
    ]
    for packet in bad_packets:
        assert a.node.send("raw-b", packet)
    letters = await log.wait_for(len(bad_packets))
    assert [letter.reason for letter in letters] == [
        "invalid_payload",
        "unknown_tag",
        "invalid_payload",
        "malformed_envelope",
        "malformed_envelope",
        "invalid_payload",
        "unknown_tag",
    ]
    assert b.dead_letters == len(bad_packets)
    await wait_until(lambda: len(raw_replies) == 2, got_reply)
    by_correlation = {packet[6]: packet for packet in raw_replies}
    assert by_correlation[1001][2:4] == ["DeadLetter", ["invalid_payload", letters[5].detail]]
    assert by_correlation[1002][3][0] == "unknown_tag"
    # the target actor never saw the bad messages and still handles good ones
    assert await within(a.ask("raw-b", "rec", Ping(seq=5))) == Pong(seq=5)
    state = await within(a.ask("raw-b", "rec", GetState()))
    assert isinstance(state, State) and state.seen == [5]


async def test_ask_with_an_invalid_payload_fails_with_a_dead_letter_error(
    make_system: SystemFactory,
) -> None:
    """Same check through the public ask: a message the peer cannot validate."""
    a = await make_system("strict-a")
    b = await make_system("strict-b")
    await connect(a, b)
    b.spawn("rec", Recorder)
    real_encode = actors._envelope.encode_message

    def corrupting_encode(message: Any) -> tuple[str, Any]:
        tag, _ = real_encode(message)
        return tag, {"seq": "garbage"}

    original = actors._envelope.encode_message
    actors._envelope.encode_message = corrupting_encode  # type: ignore[assignment]
    try:
        with pytest.raises(DeadLetterError) as caught:
            await within(a.ask("strict-b", "rec", Ping(seq=1)))
    finally:
        actors._envelope.encode_message = original
    assert caught.value.reason == "invalid_payload"
    assert b.stats().dead_letters_by_reason == {"invalid_payload": 1}


# --- multi-dispatch and ordering -------------------------------------------------------------


async def test_multi_dispatch_encodes_once_and_reaches_every_node(
    make_system: SystemFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    a = await make_system("md-a")
    peers = [await make_system(f"md-{name}") for name in "bcd"]
    recorders = {}
    for system in [a, *peers]:
        recorders[system.id] = Recorder()
        system.spawn("counter", recorders[system.id])
    for peer in peers:
        await connect(a, peer)

    encodes: list[Any] = []
    real_encode = actors._envelope.encode_message

    def counting_encode(message: Any) -> tuple[str, Any]:
        encodes.append(message)
        return real_encode(message)

    sends: list[Any] = []
    real_send = a.node.send

    def counting_send(peer: Any, packet: Any) -> Any:
        sends.append(peer)
        return real_send(peer, packet)

    monkeypatch.setattr(actors._envelope, "encode_message", counting_encode)
    monkeypatch.setattr(a.node, "send", counting_send)

    handed = a.tell(["md-b", "md-c", "md-d", "md-a"], "counter", Ping(seq=1))
    assert handed == 4
    assert len(encodes) == 1
    assert sends == [["md-b", "md-c", "md-d"]]  # one transport call for all peers

    for recorder in recorders.values():
        await wait_until(lambda r=recorder: r.seen == [1], recorder.changed)  # type: ignore[misc]

    # an unknown peer is not counted; duplicates are sent once
    assert a.tell(["md-b", "nowhere", "md-b"], "counter", Ping(seq=2)) == 1
    assert a.tell(("md-c",), "counter", Ping(seq=3)) == 1
    assert a.tell({"md-a"}, "counter", Ping(seq=4)) == 1
    assert len(encodes) == 3  # the local-only tell encoded nothing
    await wait_until(lambda: recorders["md-b"].seen == [1, 2], recorders["md-b"].changed)


async def test_ten_thousand_tells_arrive_in_order(make_system: SystemFactory) -> None:
    a = await make_system("order-a")
    b = await make_system("order-b")
    await connect(a, b)
    total = 10_000
    done = asyncio.Event()

    class Sequencer(Actor):
        def __init__(self) -> None:
            self.seen: list[int] = []

        @handler
        def on_ping(self, msg: Ping) -> None:
            self.seen.append(msg.seq)
            if len(self.seen) == total:
                done.set()

    sequencer = Sequencer()
    b.spawn("seq", sequencer)
    results = [a.tell("order-b", "seq", Ping(seq=seq)) for seq in range(total)]
    assert all(results)
    await within(done.wait(), 30)
    assert sequencer.seen == list(range(total))
    assert b.dead_letters == 0


async def test_start_failure_is_a_node_error_and_unstarted_close_is_fine(
    make_system: SystemFactory,
) -> None:
    taken = await make_system("taken")
    uri = taken.info()
    assert uri is not None
    clash = ActorSystem("clash", port=int(uri.rsplit(":", 1)[1]))
    with pytest.raises(NodeError, match="could not start") as caught:
        async with clash:
            pass
    assert isinstance(caught.value.__cause__, transport.TransportError)
    never_started = ActorSystem("never")
    await within(never_started.close())
    assert never_started.closed


async def test_close_cancels_an_actor_stuck_past_stop_timeout() -> None:
    entered = asyncio.Event()
    stopped: list[str] = []

    class Stubborn(Actor):
        @handler
        async def on_block(self, msg: Block) -> None:
            entered.set()
            await asyncio.Event().wait()  # never released

        def on_stop(self) -> None:
            stopped.append("stop")

    system = ActorSystem("stubborn", stop_timeout=0.2)
    await system.start()
    system.spawn("stuck", Stubborn())
    system.tell("stubborn", "stuck", Block())
    await within(entered.wait())
    started = time.monotonic()
    await within(system.close())
    assert time.monotonic() - started < 5
    assert system.actors == ()
    assert stopped == ["stop"]  # on_stop still ran after the handler was cancelled
