"""Cluster membership and groups through the actor layer, over real sockets."""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any

import pytest
from cluster_helpers import DEADLINE, FAST, wait_until, watch

import actors._message as message_module
from actors import (
    Actor,
    ActorRef,
    ActorSystem,
    GroupError,
    MemberDown,
    MemberUp,
    Message,
    handler,
)
from transport import Member

pytestmark = pytest.mark.timeout(90)


class Job(Message):
    n: int


class Worker(Actor):
    def __init__(self, inbox: list[tuple[str, int]]) -> None:
        self.inbox = inbox

    @handler
    def on_job(self, msg: Job) -> None:
        self.inbox.append((self.context.system.id, msg.n))


class Watcher(Actor):
    def __init__(self, seen: list[tuple[str, str]]) -> None:
        self.seen = seen

    @handler
    def on_up(self, msg: MemberUp) -> None:
        self.seen.append(("up", msg.member_id))

    @handler
    def on_down(self, msg: MemberDown) -> None:
        self.seen.append(("down", f"{msg.member_id}:{msg.reason}"))


def system(node_id: str, **options: Any) -> ActorSystem:
    settings = {**FAST, **options}
    if "seeds" not in settings:
        settings["cluster"] = True
    made = ActorSystem(node_id, **settings)
    watch(made.node)
    return made


async def cluster_of(stack: AsyncExitStack, count: int) -> list[ActorSystem]:
    first = await stack.enter_async_context(system("s0"))
    uri = first.info() or ""
    rest = [await stack.enter_async_context(system(f"s{i}", seeds=[uri])) for i in range(1, count)]
    systems = [first, *rest]
    for each in systems:
        await each.wait_for_members(count, timeout=DEADLINE)
    return systems


async def test_systems_that_know_one_seed_see_every_member() -> None:
    async with AsyncExitStack() as stack:
        systems = await cluster_of(stack, 3)
        for each in systems:
            assert set(each.members) == {"s0", "s1", "s2"}
            assert isinstance(each.members["s1"], Member)
            assert each.members["s1"].incarnation == systems[1].node.incarnation
        late = await stack.enter_async_context(system("late"))
        assert await late.join(systems[2].info() or "") == "s2"
        await late.wait_for_members(4, timeout=DEADLINE)


async def test_member_events_reach_callbacks_and_actors() -> None:
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(system("a"))
        seen: list[tuple[str, str]] = []
        a.spawn("watcher", Watcher(seen))
        ups: list[str] = []
        downs: list[tuple[str, str]] = []
        a.on("member_up", lambda member: ups.append(member.id))
        a.on("member_down", lambda member, reason: downs.append((member.id, reason)))
        b = system("b", seeds=[a.info() or ""])
        await b.start()
        await a.wait_for_members(2, timeout=DEADLINE)
        await wait_until(lambda: seen == [("up", "b")])
        assert ups == ["b"]
        await b.close()
        await wait_until(lambda: seen == [("up", "b"), ("down", "b:left")])
        assert downs == [("b", "left")]


async def test_a_group_spans_the_cluster_and_tell_group_delivers_once_per_member(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with AsyncExitStack() as stack:
        systems = await cluster_of(stack, 3)
        inbox: list[tuple[str, int]] = []
        for each in systems:
            each.spawn("w1", Worker(inbox), groups=["workers"])
        systems[2].spawn("w2", Worker(inbox), groups=["workers", "spare"])
        expected = [("s0", "w1"), ("s1", "w1"), ("s2", "w1"), ("s2", "w2")]
        for each in systems:
            await wait_until(
                lambda each=each: [(r.node_id, r.name) for r in each.group("workers")] == expected
            )
            assert all(isinstance(ref, ActorRef) for ref in each.group("workers"))
        # Count every encoding of a Job, wherever it happens (the per-class encoder table).
        encoded: list[int] = []
        message_module.encode_message(Job(n=0))  # builds Job's encoder
        real = message_module._ENCODERS[Job]

        def counting(message: Message) -> Any:
            encoded.append(1)
            return real(message)

        monkeypatch.setitem(message_module._ENCODERS, Job, counting)
        assert systems[0].tell_group("workers", Job(n=7)) == 4
        await wait_until(lambda: len(inbox) == 4)
        assert sorted(inbox) == [("s0", 7), ("s1", 7), ("s2", 7), ("s2", 7)]
        assert len(encoded) == 1, "the message is encoded once for the whole group"
        assert systems[1].tell_group("nobody", Job(n=1)) == 0


async def test_leave_group_and_a_stopped_actor_leave_the_group_everywhere() -> None:
    async with AsyncExitStack() as stack:
        systems = await cluster_of(stack, 3)
        inbox: list[tuple[str, int]] = []
        for each in systems:
            each.spawn("w", Worker(inbox))
            each.join_group("g", "w")
        for each in systems:
            await wait_until(lambda each=each: len(each.group("g")) == 3)
        systems[0].leave_group("g", "w")
        await systems[1].stop("w")
        for each in systems:
            await wait_until(
                lambda each=each: [(r.node_id, r.name) for r in each.group("g")] == [("s2", "w")]
            )
            assert each.group_names() == ["g"]
        # The last member leaves: the group is gone from every node's list of groups.
        systems[2].leave_group("g", "w")
        for each in systems:
            await wait_until(lambda each=each: each.group_names() == [])


async def test_a_member_that_goes_down_leaves_every_group() -> None:
    async with AsyncExitStack() as stack:
        systems = await cluster_of(stack, 3)
        for each in systems:
            each.spawn("w", Worker([]), groups=["g", "h"])
        for each in systems:
            await wait_until(lambda each=each: len(each.group("g")) == len(each.group("h")) == 3)
            assert each.group_names() == ["g", "h"]
        await systems[2].close()
        for each in systems[:2]:
            await wait_until(
                lambda each=each: (
                    {r.node_id for r in each.group("g")}
                    == {r.node_id for r in each.group("h")}
                    == {"s0", "s1"}
                )
            )


async def test_group_arguments_are_checked() -> None:
    async with system("solo") as solo:
        solo.spawn("w", Worker([]))
        with pytest.raises(GroupError):
            solo.join_group("", "w")
        with pytest.raises(GroupError):
            solo.join_group("g", "nobody")
        solo.leave_group("never-joined", "w")  # no error, like pg:leave of a non-member
        assert solo.group("g") == []


async def test_groups_work_on_a_system_outside_a_cluster() -> None:
    async with ActorSystem("alone", **FAST) as alone:
        inbox: list[tuple[str, int]] = []
        alone.spawn("w", Worker(inbox), groups=["g"])
        assert [(r.node_id, r.name) for r in alone.group("g")] == [("alone", "w")]
        assert alone.tell_group("g", Job(n=3)) == 1
        await wait_until(lambda: inbox == [("alone", 3)])
