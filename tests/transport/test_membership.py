"""Unit tests of the sans-I/O membership core: scenarios with bodies in, actions out."""

from __future__ import annotations

import logging
import random
from collections import deque
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport._membership import (
    Action,
    ForgetPeer,
    KeepPeer,
    Member,
    MemberDown,
    Membership,
    MembershipConfig,
    MemberStatus,
    MemberUp,
    MemberUpdated,
    SendControl,
)
from transport.errors import ProtocolError

CONFIG = MembershipConfig(down_after=3.0, check_timeout=1.0, gossip_interval=1.0)


class Net:
    """Membership cores linked by in-order, lossless links (a fake wire per pair)."""

    def __init__(self, config: MembershipConfig = CONFIG) -> None:
        self.config = config
        self.now = 0.0
        self.nodes: dict[str, Membership] = {}
        self.links: set[frozenset[str]] = set()
        self.actions: dict[str, list[Action]] = {}
        self.wire: deque[tuple[str, str, bytes]] = deque()
        self.sent_bytes = 0

    def add(self, node_id: str, incarnation: int = 1, **kwargs: Any) -> Membership:
        membership = Membership(
            node_id,
            incarnation,
            f"tcp://{node_id}.test:{incarnation}",
            self.config,
            random.Random(node_id),
            self.now,
            **kwargs,
        )
        self.nodes[node_id] = membership
        self.actions[node_id] = []
        return membership

    def link(self, a: str, b: str) -> None:
        self.links.add(frozenset((a, b)))
        self.nodes[a].connection_up(b, self.nodes[b].incarnation, self.now)
        self.nodes[b].connection_up(a, self.nodes[a].incarnation, self.now)
        self.pump()

    def unlink(self, a: str, b: str, last_heard: float | None = None) -> None:
        self.links.discard(frozenset((a, b)))
        for x, y in ((a, b), (b, a)):
            if x in self.nodes:
                self.nodes[x].connection_down(y, self.now, last_heard)
        self.pump()

    def crash(self, node_id: str) -> None:
        self.nodes.pop(node_id)
        for key in [key for key in self.links if node_id in key]:
            (other,) = key - {node_id}
            self.unlink(node_id, other)

    def pump(self) -> None:
        for _ in range(10_000):
            for node_id, membership in list(self.nodes.items()):
                for action in membership.take_actions():
                    if isinstance(action, SendControl):
                        if frozenset((node_id, action.peer_id)) in self.links:
                            data = msgpack.packb(action.body, use_bin_type=True)
                            self.sent_bytes += len(data)
                            self.wire.append((node_id, action.peer_id, data))
                    else:
                        self.actions[node_id].append(action)
            if not self.wire:
                return
            sender, receiver, data = self.wire.popleft()
            if receiver in self.nodes and frozenset((sender, receiver)) in self.links:
                body = msgpack.unpackb(data, raw=False)
                self.nodes[receiver].receive(sender, body, self.now)
        raise AssertionError("membership messages never quiesce")

    def tick(self, seconds: float, step: float = 0.1) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now = min(end, self.now + step)
            for membership in list(self.nodes.values()):
                membership.tick(self.now)
            self.pump()

    def take(self, node_id: str, kind: type[Any]) -> list[Any]:
        found = [action for action in self.actions[node_id] if isinstance(action, kind)]
        self.actions[node_id] = [a for a in self.actions[node_id] if not isinstance(a, kind)]
        return found

    def full_mesh(self, *ids: str) -> None:
        for node_id in ids:
            self.add(node_id)
        for index, a in enumerate(ids):
            for b in ids[index + 1 :]:
                self.link(a, b)


def ups(net: Net, node_id: str) -> list[str]:
    return sorted(action.member.id for action in net.take(node_id, MemberUp))


def downs(net: Net, node_id: str) -> list[tuple[str, str]]:
    return [(a.member.id, a.reason) for a in net.take(node_id, MemberDown)]


# -- joining ---------------------------------------------------------------------------------------


def test_two_connected_nodes_become_members_of_each_other() -> None:
    net = Net()
    net.add("a")
    net.add("b")
    net.link("a", "b")
    assert ups(net, "a") == ["b"]
    assert ups(net, "b") == ["a"]
    assert set(net.nodes["a"].members) == {"a", "b"}
    assert net.nodes["a"].members["b"] == Member("b", "tcp://b.test:1", 1, "up", b"")
    assert net.nodes["a"].view_hash() == net.nodes["b"].view_hash()


def test_a_node_joining_through_one_seed_learns_and_keeps_the_others() -> None:
    net = Net()
    net.full_mesh("a", "b")
    net.add("c")
    net.link("c", "a")
    # The lower id of a pair dials first; the higher one keeps the other a gossip interval
    # later (had the lower one not got through by then), so most pairs open one connection.
    assert KeepPeer("c", "tcp://c.test:1") in net.take("b", KeepPeer)
    assert KeepPeer("b", "tcp://b.test:1") not in net.take("c", KeepPeer)
    net.tick(CONFIG.gossip_interval)
    assert KeepPeer("b", "tcp://b.test:1") in net.take("c", KeepPeer)
    # c hears of b through a, but announces it only once connected to it.
    assert ups(net, "c") == ["a"]
    assert set(net.nodes["c"].members) == {"a", "c"}
    net.link("c", "b")
    assert ups(net, "c") == ["b"]
    assert set(net.nodes["b"].members) == {"a", "b", "c"}
    hashes = {membership.view_hash() for membership in net.nodes.values()}
    assert len(hashes) == 1


def test_a_peer_that_never_speaks_membership_is_not_a_member() -> None:
    net = Net()
    a = net.add("a")
    a.connection_up("plain", 7, net.now)
    net.pump()
    assert set(a.members) == {"a"}
    assert not a.is_member("plain")


def test_gossip_from_a_peer_that_is_not_connected_is_ignored() -> None:
    net = Net()
    a = net.add("a")
    before = a.view_hash()
    a.receive("stranger", ["entries", [["x", "tcp://x:1", 1, 0, 0, b""]]], net.now)
    assert a.view_hash() == before
    assert not a.is_member("x")


# -- leaving, restarting, refuting -----------------------------------------------------------------


def test_leave_is_member_down_left_everywhere_at_once() -> None:
    net = Net()
    net.full_mesh("a", "b", "c")
    for node_id in "abc":
        net.take(node_id, MemberUp)
    net.nodes["a"].leave()
    net.pump()
    for node_id in "bc":
        assert downs(net, node_id) == [("a", "left")]
        assert ForgetPeer("a") in net.take(node_id, ForgetPeer)
        assert "a" not in net.nodes[node_id].members


def test_a_restart_is_member_down_restarted_then_member_up_with_a_higher_version() -> None:
    net = Net()
    net.full_mesh("a", "b", "c")
    for node_id in "abc":
        net.take(node_id, MemberUp)
    net.crash("b")
    net.take("a", MemberDown)
    net.take("c", MemberDown)
    # b comes back at once (before anyone declared it down), with a new incarnation.
    b = net.add("b", incarnation=2)
    net.link("b", "a")
    assert downs(net, "a") == [("b", "restarted")]
    assert downs(net, "c") == [("b", "restarted")]
    assert b.version >= 1, "the new incarnation supersedes the old entry with a higher version"
    assert ups(net, "a") == ["b"]
    assert net.nodes["a"].members["b"].incarnation == 2
    # c learned of the new incarnation through a, and announces it once connected.
    net.link("b", "c")
    assert ups(net, "c") == ["b"]
    assert net.nodes["c"].members["b"].incarnation == 2


def test_a_node_refutes_a_claim_that_it_is_down() -> None:
    net = Net()
    net.full_mesh("a", "b")
    a = net.nodes["a"]
    version = a.version
    claim = ["a", "tcp://a.test:1", 1, version, int(MemberStatus.DOWN), b""]
    a.receive("b", ["entries", [claim]], net.now)
    assert a.version == version + 1
    assert a.stats.refutations == 1
    net.pump()
    assert net.nodes["b"].is_member("a")


# -- failure detection -----------------------------------------------------------------------------


def test_a_lone_peer_is_declared_down_after_down_after() -> None:
    net = Net()
    net.full_mesh("a", "b")
    net.take("a", MemberUp)
    net.crash("b")
    net.tick(CONFIG.down_after - 0.2)
    assert downs(net, "a") == []
    assert "b" in net.nodes["a"].members
    assert net.nodes["a"].members["b"].status == "unreachable"
    net.tick(0.3)
    [down] = net.take("a", MemberDown)
    assert (down.member.id, down.reason, down.detected) == ("b", "unreachable", True)


def test_down_after_counts_from_the_last_time_the_member_was_heard() -> None:
    net = Net()
    net.full_mesh("a", "b")
    net.take("a", MemberUp)
    net.tick(5.0)
    heard = net.now - 2.0  # a heartbeat timeout found the connection silent for 2 s
    net.nodes.pop("b")
    net.unlink("a", "b", last_heard=heard)
    net.tick(CONFIG.down_after - 2.0 - 0.2)
    assert downs(net, "a") == []
    net.tick(0.3)
    assert downs(net, "a") == [("b", "unreachable")]


def test_a_crashed_member_is_declared_down_after_the_others_confirm() -> None:
    net = Net()
    net.full_mesh("a", "b", "c")
    for node_id in "abc":
        net.take(node_id, MemberUp)
    net.crash("c")
    net.tick(CONFIG.down_after + 0.2)
    assert downs(net, "a") == [("c", "unreachable")]
    assert downs(net, "b") == [("c", "unreachable")]
    assert net.nodes["a"].entry_status("c") is MemberStatus.DOWN


def test_one_broken_link_makes_nobody_declare_either_end_down() -> None:
    net = Net()
    net.full_mesh("a", "b", "c")
    for node_id in "abc":
        net.take(node_id, MemberUp)
    net.unlink("a", "b")
    net.tick(CONFIG.down_after * 4)
    for node_id in "abc":
        assert downs(net, node_id) == []
    assert net.nodes["a"].members["b"].status == "unreachable"
    assert net.nodes["b"].members["a"].status == "unreachable"
    assert net.nodes["c"].members["a"].status == "up"
    assert net.nodes["a"].stats.declared_down == 0
    # The link heals: up again, no event (nobody ever saw it go down).
    net.link("a", "b")
    assert net.nodes["a"].members["b"].status == "up"
    assert ups(net, "a") == []


def test_a_check_nobody_answers_declares_at_its_deadline() -> None:
    net = Net()
    net.full_mesh("a", "b", "c")
    for node_id in "abc":
        net.take(node_id, MemberUp)
    net.nodes.pop("c")  # c crashes silently: its links stay "up" but carry nothing
    net.links.discard(frozenset(("a", "c")))
    net.nodes["a"].connection_down("c", net.now)
    # b still believes its link to c is up, but b's answer to the check is lost too.
    net.links.discard(frozenset(("a", "b")))
    net.tick(CONFIG.down_after + 0.05)
    assert downs(net, "a") == []
    net.tick(CONFIG.check_timeout + 0.1)
    assert downs(net, "a") == [("c", "unreachable")]


def test_a_member_not_dialled_yet_is_not_checked_until_a_dial_fails() -> None:
    # A large join: c learns of b through a but its dial to b waits its turn. Silence while
    # nobody tried is no evidence; it counts from the first failed dial.
    net = Net()
    net.full_mesh("a", "b")
    net.add("c")
    net.link("c", "a")
    net.take("c", MemberUp)
    c = net.nodes["c"]
    net.tick(CONFIG.down_after * 3)
    assert downs(net, "c") == [] and c.stats.checks_started == 0
    c.dial_failed("b", net.now)  # refused, or timed out
    net.tick(CONFIG.down_after - 0.2)
    assert c.stats.checks_started == 0, "down_after counts from the failure"
    net.tick(0.3)
    # a hears b, so b stays a member (unreachable from c) and nobody declares it down.
    assert c.stats.checks_started == 1 and c.stats.checks_alive == 1
    assert downs(net, "c") == [] and c.is_member("b")


def test_a_member_that_died_before_it_was_reached_is_declared_down_after_a_failed_dial() -> None:
    # c joined through a and learned b; then a and b crash together, so nobody gossips a
    # verdict on b: c's own failed dials to b are what make it check (and find no helper).
    net = Net()
    net.full_mesh("a", "b")
    net.add("c")
    net.link("c", "a")
    net.crash("b")
    net.crash("a")
    c = net.nodes["c"]
    net.tick(CONFIG.down_after * 3)
    assert downs(net, "c") == [("a", "unreachable")], "a was reached and lost; b never was"
    assert c.stats.declared_down == 1
    c.dial_failed("b", net.now)
    net.tick(CONFIG.down_after - 0.2)
    assert c.stats.declared_down == 1
    net.tick(0.3)
    # b was never announced up here, so there is no member_down for it; its entry is down.
    assert c.stats.declared_down == 2 and downs(net, "c") == []
    assert not c.is_member("b")


def test_gossip_that_a_member_is_down_is_not_applied_by_a_node_that_hears_it() -> None:
    net = Net()
    net.full_mesh("a", "b", "c")
    for node_id in "abc":
        net.take(node_id, MemberUp)
    b = net.nodes["b"]
    wrong = ["b", "tcp://b.test:1", 1, b.version, int(MemberStatus.DOWN), b""]
    net.nodes["c"].receive("a", ["entries", [wrong]], net.now)
    net.pump()
    assert downs(net, "c") == []
    assert b.stats.refutations == 1, "c forwarded the claim to b, which refuted it"
    assert net.nodes["a"].is_member("b")


# -- metadata, limits, tombstones ------------------------------------------------------------------


def test_metadata_is_gossiped_and_bounded() -> None:
    net = Net()
    net.full_mesh("a", "b")
    net.nodes["a"].set_metadata(b"groups", net.now)
    net.pump()
    [updated] = net.take("b", MemberUpdated)
    assert updated.member.metadata == b"groups"
    assert net.nodes["b"].members["a"].metadata == b"groups"
    with pytest.raises(ValueError, match="max_metadata"):
        net.nodes["a"].set_metadata(b"x" * (CONFIG.max_metadata + 1), net.now)


def test_max_members_refuses_more_members_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    net = Net(MembershipConfig(max_members=3))
    a = net.add("a")
    net.add("b")
    net.link("a", "b")
    entries = [[f"x{i}", f"tcp://x{i}:1", 1, 0, 0, b""] for i in range(5)]
    with caplog.at_level(logging.WARNING, logger="transport"):
        a.receive("b", ["entries", entries], net.now)
    assert sum(1 for node_id in ("a", "b", *(f"x{i}" for i in range(5))) if a.is_member(node_id))
    assert [a.is_member(f"x{i}") for i in range(5)] == [True, False, False, False, False]
    assert a.stats.rejected["max_members"] == 4
    assert "max_members=3 reached" in caplog.text


def test_outgoing_gossip_is_split_by_max_gossip_bytes() -> None:
    net = Net(MembershipConfig(max_gossip_bytes=4096))
    for index in range(12):
        node = net.add(f"n{index:02}")
        node.set_metadata(bytes([index]) * 1000, net.now)
    for index in range(1, 12):
        net.link("n00", f"n{index:02}")
    net.add("late")
    sizes: list[int] = []
    late = net.nodes["late"]
    net.links.add(frozenset(("late", "n00")))
    late.connection_up("n00", 1, net.now)
    net.nodes["n00"].connection_up("late", 1, net.now)
    for action in net.nodes["n00"].take_actions():
        if isinstance(action, SendControl) and action.body[0] == "hello":
            late.receive("n00", msgpack.unpackb(msgpack.packb(action.body), raw=False), net.now)
    for action in late.take_actions():
        if isinstance(action, SendControl) and action.peer_id == "n00":
            net.nodes["n00"].receive("late", action.body, net.now)
    for action in net.nodes["n00"].take_actions():
        if isinstance(action, SendControl) and action.body[0] == "entries":
            sizes.append(len(msgpack.packb(action.body)))
    assert len(sizes) >= 3
    assert max(sizes) <= 4096 + 1200


def test_tombstones_are_not_spread_to_nodes_that_never_knew_the_member() -> None:
    net = Net()
    net.full_mesh("a", "b")
    net.crash("b")
    net.tick(CONFIG.down_after + 0.5)
    assert net.nodes["a"].entry_status("b") is MemberStatus.DOWN
    net.add("c")
    net.link("c", "a")
    net.tick(3.0)
    assert net.nodes["c"].entry_status("b") is None
    assert net.nodes["a"].view_hash() == net.nodes["c"].view_hash()


def test_tombstones_are_forgotten_after_forget_after() -> None:
    net = Net(MembershipConfig(down_after=1.0, forget_after=5.0))
    net.full_mesh("a", "b")
    net.crash("b")
    net.tick(1.5)
    assert net.nodes["a"].entry_status("b") is MemberStatus.DOWN
    net.take("a", ForgetPeer)
    net.tick(5.0)
    assert net.nodes["a"].entry_status("b") is None
    assert net.take("a", ForgetPeer) == [ForgetPeer("b")]


def test_anti_entropy_sync_is_one_small_frame_per_interval_when_idle() -> None:
    net = Net()
    net.full_mesh("a", "b", "c")
    net.tick(2.0)
    before = net.sent_bytes
    net.tick(10.0)
    per_node_per_second = (net.sent_bytes - before) / 3 / 10.0
    assert 0 < per_node_per_second < 40


# -- hostile input ---------------------------------------------------------------------------------

MALFORMED = [
    None,
    [],
    [1],
    ["nope"],
    ["hello"],
    ["hello", ["c", "tcp://c:1", 1, 0, 0, b""], b""],  # not the sender's own entry
    ["hello", ["b", "tcp://b.test:1", 9, 0, 0, b""], b""],  # not its incarnation
    ["entries", "x"],
    ["entries", [["x"]]],
    ["entries", [["x", "tcp://x:1", -1, 0, 0, b""]]],
    ["entries", [["x", "tcp://x:1", 1, 0, 9, b""]]],
    ["entries", [["x", "tcp://x:1", 1, 0, 0, "str"]]],
    ["entries", [["", "tcp://x:1", 1, 0, 0, b""]]],
    ["entries", [["x" * 300, "tcp://x:1", 1, 0, 0, b""]]],
    ["entries", [["x", "u" * 2000, 1, 0, 0, b""]]],
    ["entries", [["x", "tcp://x:1", 1, 0, 0, b""], ["x", "tcp://x:1", 1, 1, 0, b""]]],
    ["entries", [["y", "tcp://y:1", 1, 0, 0, b""], ["x", "tcp://x:1", 2**64, 0, 0, b""]]],
    ["digest", [["x", 1, 0]]],
    ["digest", [["x", 1, 0, 0], ["x", 1, 0, 0]]],
    ["want", [1]],
    ["want", "x"],
    ["check", "1", "x"],
    ["check_ack", 1, "x", "yes"],
    ["sync", "not bytes"],
    ["entries", [[f"x{i}", "tcp://x:1", 1, 0, 0, b""] for i in range(2_100)]],
]


@pytest.mark.parametrize("body", MALFORMED, ids=range(len(MALFORMED)))
def test_malformed_gossip_raises_and_changes_nothing(body: Any) -> None:
    net = Net()
    net.full_mesh("a", "b")
    a = net.nodes["a"]
    before = (a.members, a.view_hash(), a.version)
    with pytest.raises(ProtocolError):
        a.receive("b", body, net.now)
    assert (a.members, a.view_hash(), a.version) == before


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**65), 2**65),
    st.text(max_size=5),
    st.binary(max_size=5),
    st.sampled_from(["a", "b", "x", "tcp://x:1", "hello", "entries", "digest", "want"]),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=6), max_leaves=30)
_ops = st.sampled_from(["hello", "sync", "digest", "entries", "want", "check", "check_ack"])


@settings(max_examples=300, deadline=None)
@given(op=_ops, rest=st.lists(_values, max_size=4))
def test_fuzzed_gossip_never_corrupts_the_view(op: str, rest: list[Any]) -> None:
    net = Net()
    net.full_mesh("a", "b")
    a = net.nodes["a"]
    before = a.members
    try:
        a.receive("b", [op, *rest], net.now)
    except ProtocolError:
        assert a.members == before
    members = a.members
    assert members["a"] == before["a"]
    for member_id, member in members.items():
        assert isinstance(member_id, str) and 0 < len(member_id) <= 255
        assert isinstance(member.incarnation, int) and 0 <= member.incarnation < 2**64
        assert isinstance(member.metadata, bytes)
    net.pump()  # whatever a answered is well-formed for b
