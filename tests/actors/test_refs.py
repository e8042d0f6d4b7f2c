"""`ActorRef` as a message field type: alone, optional, in lists and maps, across nodes."""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Ping, Pong, Recorder, Route, SystemFactory, connect, wait_until, within

from actors import Actor, ActorRef, ActorSystem, ContextError, Message, handler
from actors._message import _ENCODERS, encode_message


class Intro(Message, tag="test.refs.Intro"):
    reply_to: ActorRef
    others: list[ActorRef] = []
    by_name: dict[str, ActorRef] = {}
    maybe: ActorRef | None = None


class Relay(Message, tag="test.refs.Relay"):
    """Ask the Introducer to ask ``target`` a Ping and answer with the Pong's seq."""

    target: ActorRef
    seq: int


class WhoAmI(Message, tag="test.refs.WhoAmI"):
    pass


class Found(Message, tag="test.refs.Found"):
    ref: ActorRef


class Introducer(Actor):
    """Tells a Ping through every ref it receives; asks through refs on request."""

    def __init__(self) -> None:
        self.received: list[Intro] = []
        self.changed = asyncio.Event()

    @handler
    def on_intro(self, msg: Intro) -> None:
        self.received.append(msg)
        refs = [msg.reply_to, *msg.others, *msg.by_name.values()]
        if msg.maybe is not None:
            refs.append(msg.maybe)
        for seq, ref in enumerate(refs):
            ref.tell(Ping(seq=seq))
        self.changed.set()

    @handler
    async def on_relay(self, msg: Relay) -> int:
        pong = await msg.target.ask(Ping(seq=msg.seq), reply_type=Pong)
        return pong.seq

    @handler
    def on_who(self, msg: WhoAmI) -> Found:
        return Found(ref=self.context.self_ref)


async def test_refs_in_every_field_shape_work_on_the_receiving_node(route: Route) -> None:
    introducer = Introducer()
    route.host.spawn("intro", introducer)
    recorders = [Recorder() for _ in range(4)]
    refs = [route.sender.spawn(f"rec{i}", recorder) for i, recorder in enumerate(recorders)]
    intro = Intro(reply_to=refs[0], others=[refs[1]], by_name={"x": refs[2]}, maybe=refs[3])
    assert route.sender.tell(route.node_id, "intro", intro)
    await wait_until(lambda: bool(introducer.received), introducer.changed)
    received = introducer.received[0]
    every = [received.reply_to, *received.others, *received.by_name.values(), received.maybe]
    assert [(ref.node_id, ref.name) for ref in every if ref is not None] == [
        ("alpha", "rec0"),
        ("alpha", "rec1"),
        ("alpha", "rec2"),
        ("alpha", "rec3"),
    ]
    # Bound to the system that received them, so they send from there.
    assert all(ref is not None and ref.system is route.host for ref in every)
    for seq, recorder in enumerate(recorders):
        await wait_until(lambda r=recorder, s=seq: r.seen == [s], recorder.changed)
        expected_sender = f"{route.host.id}/intro"
        assert recorder.senders == [expected_sender]


async def test_a_missing_optional_ref_stays_none(route: Route) -> None:
    introducer = Introducer()
    route.host.spawn("intro", introducer)
    ref = route.sender.spawn("rec", Recorder())
    assert route.sender.tell(route.node_id, "intro", Intro(reply_to=ref))
    await wait_until(lambda: bool(introducer.received), introducer.changed)
    assert introducer.received[0].maybe is None
    assert introducer.received[0].others == []


async def test_ask_through_a_received_ref(route: Route) -> None:
    route.host.spawn("intro", Introducer())
    target = route.sender.spawn("rec", Recorder())
    seq = await within(
        route.sender.ask(route.node_id, "intro", Relay(target=target, seq=41), reply_type=int)
    )
    assert seq == 41


async def test_refs_in_replies_bind_to_the_asking_system(route: Route) -> None:
    route.host.spawn("intro", Introducer())
    found = await within(route.sender.ask(route.node_id, "intro", WhoAmI(), reply_type=Found))
    assert (found.ref.node_id, found.ref.name) == (route.host.id, "intro")
    assert found.ref.system is route.sender
    # The received ref works: ask through it, handing it a ref to a third actor.
    route.host.spawn("rec", Recorder())
    relay = Relay(target=route.sender.ref(route.host.id, "rec"), seq=3)
    assert await within(found.ref.ask(relay, reply_type=int)) == 3


class RefEcho(Actor):
    @handler
    def on_who(self, msg: WhoAmI) -> ActorRef:
        return self.context.self_ref


async def test_a_bare_ref_reply_validates_into_a_bound_ref(route: Route) -> None:
    route.host.spawn("echo", RefEcho())
    native = await within(route.sender.ask(route.node_id, "echo", WhoAmI()))
    assert native == [route.host.id, "echo"]
    ref = await within(route.sender.ask(route.node_id, "echo", WhoAmI(), reply_type=ActorRef))
    assert ref == route.sender.ref(route.host.id, "echo")


async def test_a_ref_to_a_third_node_works_on_the_receiver(make_system: SystemFactory) -> None:
    a = await make_system("alpha")
    b = await make_system("beta")
    c = await make_system("gamma")
    await connect(a, b)
    await connect(a, c)
    await connect(b, c)
    introducer = Introducer()
    b.spawn("intro", introducer)
    recorder = Recorder()
    c.spawn("rec", recorder)
    on_c = a.ref("gamma", "rec")
    # a tells b about an actor on c; b tells it (and asks it) directly, not through a.
    assert a.tell("beta", "intro", Intro(reply_to=on_c))
    await wait_until(lambda: recorder.seen == [0], recorder.changed)
    assert recorder.senders == ["beta/intro"]
    assert await within(a.ask("beta", "intro", Relay(target=on_c, seq=9), reply_type=int)) == 9
    assert recorder.seen == [0, 9]
    assert recorder.senders == ["beta/intro", "beta/intro"]


def test_wire_form_and_schema() -> None:
    system = ActorSystem("wire")
    ref = system.ref("node-x", "worker")
    intro = Intro(reply_to=ref, others=[ref], by_name={"k": ref})
    tag, payload = encode_message(intro)
    assert tag == "test.refs.Intro"
    assert payload == {
        "reply_to": ["node-x", "worker"],
        "others": [["node-x", "worker"]],
        "by_name": {"k": ["node-x", "worker"]},
        "maybe": None,
    }
    assert _ENCODERS[Intro].__name__ == "native_payload"
    assert intro.model_dump(mode="json")["reply_to"] == ["node-x", "worker"]
    schema = Intro.model_json_schema()
    assert schema["properties"]["reply_to"]["type"] == "array"
    with pytest.raises(ValueError, match="reply_to"):
        Intro.model_validate({"reply_to": ["only-node"]})
    # Copies of a message share its refs (a ref is an immutable value holding its system).
    assert intro.model_copy(deep=True).reply_to is ref


async def test_an_unbound_ref_sends_through_the_handling_actors_system(route: Route) -> None:
    recorder = Recorder()
    route.host.spawn("rec", recorder)
    unbound = Intro.model_validate({"reply_to": [route.host.id, "rec"]}).reply_to
    assert "unbound" in repr(unbound)
    with pytest.raises(ContextError, match="not bound"):
        unbound.tell(Ping(seq=1))

    class UsesUnbound(Actor):
        @handler
        def on_ping(self, msg: Ping) -> bool:
            return unbound.tell(Ping(seq=msg.seq))

    route.sender.spawn("user", UsesUnbound())
    assert await within(route.sender.ask(route.sender.id, "user", Ping(seq=5))) is True
    await wait_until(lambda: recorder.seen == [5], recorder.changed)
    assert recorder.senders == [f"{route.sender.id}/user"]
