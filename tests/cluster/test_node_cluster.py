"""Cluster membership of transport.Node over real sockets on 127.0.0.1 (port 0)."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import AsyncExitStack
from typing import Any

import pytest
from cluster_helpers import (
    CHECK_TIMEOUT,
    DEADLINE,
    DOWN_AFTER,
    FAST,
    BlackholeProxy,
    Events,
    MemberProcess,
    cluster_node,
    full_mesh,
    wait_until,
)

from transport import AuthenticationError, ConfigurationError, Node, NodeStateError

pytestmark = pytest.mark.timeout(90)


def bound_uri(node: Node) -> str:
    """The address ``node`` listens on, whatever it advertises."""
    assert node._server is not None
    return f"tcp://127.0.0.1:{node._server.sockets[0].getsockname()[1]}"


async def start_all(stack: AsyncExitStack, nodes: list[Node]) -> list[Node]:
    for node in nodes:
        await stack.enter_async_context(node)
    return nodes


async def test_nodes_that_know_one_seed_become_one_full_mesh() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(cluster_node("seed"))
        uri = seed.info()
        assert uri is not None
        others = [cluster_node(f"n{i}", seeds=[uri]) for i in range(5)]
        await start_all(stack, others)
        nodes = [seed, *others]
        for node in nodes:
            members = await node.wait_for_members(6, timeout=DEADLINE)
            assert len(members) >= 6
        await full_mesh(nodes)
        a, b = others[0], others[1]
        assert a.members[b.id].uri == b.info()
        assert a.members[b.id].incarnation == b.incarnation
        # The mesh carries traffic between members that were never introduced by hand.
        got: list[Any] = []
        b.on("message", lambda peer, packet: got.append((peer, packet)))
        assert a.send(b.id, "hi")
        await wait_until(lambda: got == [(a.id, "hi")])


async def test_join_returns_once_the_member_list_arrived() -> None:
    async with AsyncExitStack() as stack:
        a, b, c = await start_all(stack, [cluster_node("a"), cluster_node("b"), cluster_node("c")])
        assert await b.join(a.info() or "") == "a"
        assert await c.join(a.info() or "") == "a"
        await c.wait_for_members(3, timeout=DEADLINE)
        await full_mesh([a, b, c])


async def test_graceful_close_is_member_down_left_everywhere() -> None:
    async with AsyncExitStack() as stack:
        nodes = await start_all(stack, [cluster_node(f"n{i}") for i in range(4)])
        for node in nodes[1:]:
            await node.join(nodes[0].info() or "")
        await full_mesh(nodes)
        events = [Events(node) for node in nodes[:3]]
        leaving = nodes[3]
        await leaving.close()
        await wait_until(lambda: all(log.of("n3") == [("down", "left")] for log in events))
        for node in nodes[:3]:
            assert "n3" not in node.members
            assert not node.is_kept("n3"), "a member that left is not re-dialled"


async def test_sigkill_is_member_down_everywhere_within_the_stated_bound() -> None:
    async with AsyncExitStack() as stack:
        nodes = await start_all(stack, [cluster_node(f"n{i}") for i in range(3)])
        for node in nodes[1:]:
            await node.join(nodes[0].info() or "")
        victim = MemberProcess("victim", [nodes[0].info() or ""], FAST)
        stack.push_async_callback(victim.stop)
        await victim.start()
        await full_mesh(nodes)
        await wait_until(lambda: all("victim" in node.members for node in nodes))
        events = [Events(node) for node in nodes]
        killed_at = time.monotonic()
        victim.kill()
        await wait_until(lambda: all(log.of("victim") for log in events))
        for log in events:
            assert log.of("victim") == [("down", "unreachable")]
            elapsed = (log.first("down", "victim") or 0.0) - killed_at
            # Not before down_after of silence (the last heartbeat was at most one interval
            # before the kill), and within down_after + check_timeout; the extra 0.5 s is the
            # timer tick and event-loop delay on a shared machine, not protocol time.
            assert DOWN_AFTER - FAST["heartbeat_interval"] - 0.1 <= elapsed, elapsed
            assert elapsed <= DOWN_AFTER + CHECK_TIMEOUT + 0.5, elapsed


async def test_restart_with_a_new_incarnation_is_down_restarted_then_up() -> None:
    # A long down_after, so that the restart comes before anyone declares the crash.
    slow = {"down_after": 30.0}
    async with AsyncExitStack() as stack:
        nodes = await start_all(stack, [cluster_node(f"n{i}", **slow) for i in range(3)])
        for node in nodes[1:]:
            await node.join(nodes[0].info() or "")
        first = MemberProcess("phoenix", [nodes[0].info() or ""], {**FAST, **slow})
        stack.push_async_callback(first.stop)
        await first.start()
        await wait_until(lambda: all("phoenix" in node.members for node in nodes))
        events = [Events(node) for node in nodes]
        first.kill()
        await first.stop()
        second = MemberProcess("phoenix", [nodes[0].info() or ""], {**FAST, **slow})
        stack.push_async_callback(second.stop)
        await second.start()
        assert second.incarnation != first.incarnation
        await wait_until(
            lambda: all(
                node.members.get("phoenix") is not None
                and node.members["phoenix"].incarnation == second.incarnation
                and node.members["phoenix"].status == "up"
                for node in nodes
            )
        )
        for log in events:
            assert log.of("phoenix") == [("down", "restarted"), ("up", "")]


async def test_a_blackholed_link_makes_nobody_declare_either_end_down() -> None:
    async with AsyncExitStack() as stack:
        a, b, c = await start_all(stack, [cluster_node(n) for n in "abc"])
        to_a = await stack.enter_async_context(BlackholeProxy(a.info()))
        to_b = await stack.enter_async_context(BlackholeProxy(b.info()))
        # a and b reach each other only through the proxies (a uri dialled by hand beats the
        # advertised one); c reaches both directly.
        await a.connect(to_b.uri)
        await b.connect(to_a.uri)
        await c.join(a.info() or "")
        await full_mesh([a, b, c])
        events = [Events(node) for node in (a, b, c)]
        to_a.blackholed = to_b.blackholed = True
        await wait_until(lambda: "b" not in a.peers and "a" not in b.peers)
        # Past down_after, a and b each check the other through c, which hears both: wait
        # for three such checks on each side.
        stats = [a._cluster.membership.stats, b._cluster.membership.stats]  # type: ignore[union-attr]
        await wait_until(lambda: all(s.checks_alive >= 3 for s in stats), DEADLINE)
        assert all(log.downs() == [] for log in events), [log.downs() for log in events]
        assert all(s.declared_down == 0 for s in stats)
        assert a.members["b"].status == "unreachable"
        assert set(a.members) == set(b.members) == set(c.members) == {"a", "b", "c"}
        assert b.members["a"].status == "unreachable"
        assert c.members["a"].status == c.members["b"].status == "up"
        to_a.blackholed = to_b.blackholed = False
        await full_mesh([a, b, c])
        assert all(log.log == [] for log in events), "nobody saw anything go down or up"


async def test_a_healed_partition_is_member_up_on_both_sides() -> None:
    async with AsyncExitStack() as stack:
        proxies = {n: await stack.enter_async_context(BlackholeProxy()) for n in "abcd"}
        # Every node advertises its proxy, so every dial across the partition line goes
        # through the target's proxy; the two pairs on one side connect directly, by hand
        # (a uri dialled by hand beats the advertised one).
        nodes = await start_all(stack, [cluster_node(n, advertise=proxies[n].uri) for n in "abcd"])
        for node in nodes:
            proxies[node.id].target = bound_uri(node)
        left, right = nodes[:2], nodes[2:]
        await nodes[0].connect(bound_uri(nodes[1]))
        await nodes[2].connect(bound_uri(nodes[3]))
        await nodes[0].join(nodes[2].info() or "")
        await full_mesh(nodes)
        events = {node.id: Events(node) for node in nodes}
        for proxy in proxies.values():
            proxy.blackholed = True
        await wait_until(
            lambda: (
                all(set(node.members) == {n.id for n in left} for node in left)
                and all(set(node.members) == {n.id for n in right} for node in right)
            ),
            DEADLINE,
        )
        for node in left:
            assert sorted(events[node.id].downs()) == [("c", "unreachable"), ("d", "unreachable")]
        for node in right:
            assert sorted(events[node.id].downs()) == [("a", "unreachable"), ("b", "unreachable")]
        for proxy in proxies.values():
            proxy.blackholed = False
        await full_mesh(nodes, DEADLINE)
        for node in left:
            assert events[node.id].of("c")[-1] == ("up", "")
            assert events[node.id].of("d")[-1] == ("up", "")
        for node in right:
            assert events[node.id].of("a")[-1] == ("up", "")
            assert events[node.id].of("b")[-1] == ("up", "")
        got: list[Any] = []
        nodes[3].on("message", lambda peer, packet: got.append((peer, packet)))
        for n in range(10):
            assert nodes[0].send("d", n)
        await wait_until(lambda: got == [("a", n) for n in range(10)])


async def test_a_node_with_the_wrong_cookie_never_becomes_a_member() -> None:
    async with AsyncExitStack() as stack:
        a, b = await start_all(
            stack, [cluster_node("a", cookie="right"), cluster_node("b", cookie="right")]
        )
        await b.join(a.info() or "")
        intruder = await stack.enter_async_context(
            cluster_node("intruder", cookie="wrong", seeds=[a.info() or ""])
        )
        with pytest.raises(AuthenticationError):
            await intruder.join(b.info() or "")
        # A member whose seed list names the intruder does not let it in either.
        c = await stack.enter_async_context(
            cluster_node("c", cookie="right", seeds=[intruder.info() or "", a.info() or ""])
        )
        await full_mesh([a, b, c])
        for node in (a, b, c):
            assert "intruder" not in node.members
            assert "intruder" not in node.peers
            assert all(member.uri != intruder.info() for member in node.members.values())
        assert set(intruder.members) == {"intruder"}


async def test_a_seed_that_refuses_the_handshake_is_reported_by_seed_refused() -> None:
    async with AsyncExitStack() as stack:
        seed = await stack.enter_async_context(cluster_node("seed", cookie="right"))
        uri = seed.info() or ""
        intruder = cluster_node("intruder", cookie="wrong", seeds=[uri])
        refused: asyncio.Queue[tuple[str, BaseException]] = asyncio.Queue()
        intruder.on("seed_refused", lambda at, error: refused.put_nowait((at, error)))
        await stack.enter_async_context(intruder)
        at, error = await asyncio.wait_for(refused.get(), timeout=DEADLINE)
        assert at == uri
        assert isinstance(error, AuthenticationError)
        assert set(intruder.members) == {"intruder"}


async def test_max_members_bounds_the_view(caplog: pytest.LogCaptureFixture) -> None:
    async with AsyncExitStack() as stack:
        nodes = await start_all(stack, [cluster_node(f"n{i}") for i in range(4)])
        for node in nodes[1:]:
            await node.join(nodes[0].info() or "")
        await full_mesh(nodes)
        with caplog.at_level(logging.WARNING, logger="transport"):
            small = await stack.enter_async_context(
                cluster_node("small", max_members=3, seeds=[nodes[0].info() or ""])
            )
            await small.wait_for_members(3, timeout=DEADLINE)
            await wait_until(lambda: "max_members=3 reached" in caplog.text)
        assert len(small.members) == 3


async def test_metadata_is_gossiped_and_bounded() -> None:
    async with AsyncExitStack() as stack:
        a, b = await start_all(stack, [cluster_node("a"), cluster_node("b")])
        await b.join(a.info() or "")
        updated: list[bytes] = []
        b.on("member_updated", lambda member: updated.append(member.metadata))
        a.set_metadata(b"blob")
        await wait_until(lambda: b.members["a"].metadata == b"blob")
        assert updated == [b"blob"]
        with pytest.raises(ConfigurationError, match="max_metadata"):
            a.set_metadata(b"x" * (64 * 1024 + 1))


async def test_cluster_calls_on_a_plain_node_raise_a_clear_error() -> None:
    async with Node("plain") as plain:
        assert plain.members == {}
        with pytest.raises(NodeStateError, match="not in a cluster"):
            await plain.wait_for_members(1, timeout=1.0)


async def test_a_plain_node_and_a_cluster_node_still_talk() -> None:
    async with cluster_node("member") as member, Node("plain", **FAST) as plain:
        got: list[Any] = []
        plain.on("message", lambda peer, packet: got.append(packet))
        await member.connect(plain.info() or "")
        assert member.send("plain", "hello")
        await wait_until(lambda: got == ["hello"])
        assert "plain" not in member.members
        assert "plain" in member.peers


HOSTILE = [
    "not a list",
    [],
    ["entries", [["x", "tcp://127.0.0.1:1", -5, 0, 0, b""]]],
    ["entries", [["x" * 300, "tcp://127.0.0.1:1", 1, 0, 0, b""]]],
    ["entries", [["x", "ftp://nowhere", 1, 0, 0, b""]]],
    ["digest", [["x", 1, 0, 99]]],
    ["check_ack", 1, "x", "maybe"],
    ["bogus op"],
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
async def test_hostile_gossip_closes_that_connection_and_keeps_the_view(
    body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with AsyncExitStack() as stack:
        a, b, evil = await start_all(
            stack, [cluster_node("a"), cluster_node("b"), cluster_node("evil")]
        )
        await b.join(a.info() or "")
        await evil.join(a.info() or "")
        await full_mesh([a, b, evil])
        before = {member_id: (m.uri, m.incarnation) for member_id, m in a.members.items()}
        lost = asyncio.Event()
        a.on("disconnect", lambda peer, reason: lost.set() if peer == "evil" else None)
        with caplog.at_level(logging.WARNING, logger="transport"):
            assert evil._send_membership("a", body)
            evil._pump()
            async with asyncio.timeout(DEADLINE):
                await lost.wait()
        assert "closing connection to evil: malformed gossip" in caplog.text
        after = {member_id: (m.uri, m.incarnation) for member_id, m in a.members.items()}
        assert after == before
        assert "b" in a.peers
