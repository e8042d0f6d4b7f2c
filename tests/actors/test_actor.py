"""Actor classes: how @handler methods are found and checked, context, hooks."""

from __future__ import annotations

import asyncio

import pytest
from actor_helpers import Ping, Pong, SpecialPing, SystemFactory, Unhandled, within

from actors import (
    Actor,
    ContextError,
    DeadLetterError,
    HandlerDefinitionError,
    Message,
    handler,
)


class Left(Message, tag="actor.Left"):
    pass


class Right(Message, tag="actor.Right"):
    pass


def test_handlers_are_found_by_annotated_type() -> None:
    class Mixed(Actor):
        @handler
        def sync_ping(self, msg: Ping) -> None: ...

        @handler
        async def async_pong(self, msg: Pong) -> None: ...

        @handler
        def either(self, msg: Left | Right) -> None: ...

        def not_a_handler(self, msg: Unhandled) -> None: ...

    assert set(Mixed.handled_types()) == {Ping, Pong, Left, Right}
    assert Mixed._handler_for(Ping) is not None
    assert Mixed._handler_for(Ping).is_async is False  # type: ignore[union-attr]
    assert Mixed._handler_for(Pong).is_async is True  # type: ignore[union-attr]
    assert Mixed._handler_for(SpecialPing) is Mixed._handler_for(Ping)
    assert Mixed._handler_for(Unhandled) is None


def test_nearest_base_handler_wins_along_the_mro() -> None:
    class Layered(Actor):
        @handler
        def on_any(self, msg: Message) -> None: ...

        @handler
        def on_ping(self, msg: Ping) -> None: ...

    assert Layered._handler_for(SpecialPing).name == "on_ping"  # type: ignore[union-attr]
    assert Layered._handler_for(Unhandled).name == "on_any"  # type: ignore[union-attr]


def test_subclass_inherits_and_overrides_handlers() -> None:
    class Base(Actor):
        @handler
        def on_ping(self, msg: Ping) -> None: ...

        @handler
        def on_pong(self, msg: Pong) -> None: ...

    class Derived(Base):
        @handler
        def on_ping(self, msg: Ping) -> None: ...

    assert Derived._handler_for(Ping).function is Derived.on_ping  # type: ignore[union-attr]
    assert Derived._handler_for(Pong).function is Base.on_pong  # type: ignore[union-attr]


def test_handler_without_annotation_is_refused_at_class_definition() -> None:
    with pytest.raises(HandlerDefinitionError, match="annotate"):

        class NoAnnotation(Actor):
            @handler
            def on_it(self, msg) -> None:  # type: ignore[no-untyped-def]
                ...


def test_handler_for_a_non_message_type_is_refused() -> None:
    with pytest.raises(HandlerDefinitionError, match="not a Message"):

        class WrongType(Actor):
            @handler
            def on_int(self, msg: int) -> None: ...


def test_handler_with_wrong_arity_is_refused() -> None:
    with pytest.raises(HandlerDefinitionError, match="exactly one"):

        class TwoArgs(Actor):
            @handler
            def on_two(self, msg: Ping, other: Ping) -> None: ...


def test_two_handlers_for_one_type_are_refused() -> None:
    with pytest.raises(HandlerDefinitionError, match="both"):

        class Twice(Actor):
            @handler
            def first(self, msg: Ping) -> None: ...

            @handler
            def second(self, msg: Ping) -> None: ...


def test_context_before_spawn_raises() -> None:
    class Plain(Actor):
        pass

    with pytest.raises(ContextError, match="spawned"):
        _ = Plain().context


async def test_context_exposes_system_name_self_ref_and_sender(make_system: SystemFactory) -> None:
    system = await make_system("ctx")
    seen: dict[str, object] = {}

    class Inspector(Actor):
        @handler
        def on_ping(self, msg: Ping) -> Pong:
            context = self.context
            seen.update(
                system=context.system,
                name=context.name,
                self_ref=context.self_ref,
                sender=context.sender,
            )
            return Pong(seq=msg.seq)

    ref = system.spawn("inspector", Inspector())
    await within(system.ask("ctx", "inspector", Ping(seq=1)))
    assert seen["system"] is system
    assert seen["name"] == "inspector"
    assert seen["self_ref"] == ref == system.ref("ctx", "inspector")
    assert seen["sender"] is None  # asked from plain code, not from an actor
    assert "ctx/inspector" in repr(ref)


async def test_hooks_run_in_order_sync_and_async(make_system: SystemFactory) -> None:
    system = await make_system("hooks")
    events: list[str] = []
    stopped = asyncio.Event()

    class Hooked(Actor):
        async def on_start(self) -> None:
            await asyncio.sleep(0)
            events.append("start")

        @handler
        def on_ping(self, msg: Ping) -> None:
            events.append(f"ping {msg.seq}")

        def on_stop(self) -> None:
            events.append("stop")
            stopped.set()

    system.spawn("hooked", Hooked())
    system.tell("hooks", "hooked", Ping(seq=1))  # queued before on_start finished
    await within(system.stop("hooked"))
    assert stopped.is_set()
    assert events[0] == "start"
    assert events[-1] == "stop"
    assert events.count("stop") == 1


async def test_failing_on_start_stops_the_actor(make_system: SystemFactory) -> None:
    system = await make_system("badstart")
    stop_calls: list[int] = []

    class BadStart(Actor):
        def on_start(self) -> None:
            raise RuntimeError("no")

        def on_stop(self) -> None:
            stop_calls.append(1)

        @handler
        def on_ping(self, msg: Ping) -> Pong:
            return Pong(seq=msg.seq)

    ref = system.spawn("bad", BadStart())
    with pytest.raises(DeadLetterError):
        await within(ref.ask(Ping(seq=1)))
    assert "bad" not in system.actors
    assert stop_calls == []  # on_stop only runs after a successful on_start


async def test_unresolvable_annotations_are_reported_clearly(make_system: SystemFactory) -> None:
    system = await make_system("annotations")

    class LocalOnly(Message, tag="actor.LocalOnly"):
        pass

    class LocalReply(Actor):
        @handler
        def on_ping(self, msg: Ping) -> LocalOnly:  # the return type is not resolvable
            return LocalOnly()

    class LocalParam(Actor):
        @handler
        def on_local(self, msg: LocalOnly) -> None: ...

    assert LocalReply.handled_types() == (Ping,)
    system.spawn("reply", LocalReply())
    assert await within(system.ask("annotations", "reply", Ping(seq=1))) == LocalOnly()
    with pytest.raises(HandlerDefinitionError, match="module level"):
        system.spawn("param", LocalParam())
