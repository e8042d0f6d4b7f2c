"""Deterministic simulation of the sans-I/O membership protocol.

Up to seven :class:`transport._membership.Membership` instances run over a simulated mesh.
Connections are a link table (at most one link per pair, as the transport guarantees; the
transport's own simulation covers dedup): a link comes up when one side keeps the other (or
dials a seed) and nothing cuts the pair; it carries membership bodies in order, through a
msgpack round trip. Hypothesis chooses what happens: nodes start (joining through seeds),
crash (with a FIN, or silently), restart with a new incarnation, leave gracefully, publish
metadata; links are cut (blackholed) and healed one by one or as a partition; messages are
delivered one at a time or all at once; time passes.

The model of the network: a cut link holds its messages (TCP retransmits) and goes down on
both sides after ``HEARTBEAT_TIMEOUT`` (the transport's heartbeat), reporting the cut time as
the last time anything was heard. A silent crash looks the same; a crash with a FIN ends its
links at once. Time advances only after every message in flight on uncut links has been
delivered, so an uncut link's latency is below one step (``MAX_STEP`` < ``check_timeout``).

Invariants checked after every step:

* no node declares a member down while its own link to that member is up and uncut;
* no node declares a member down while some third node has had uncut links to both of them
  for the whole check window (the indirect check asks every connected member in these small
  clusters). This implies the issue's "no member declared down while reachable from a
  majority": if the member is linked to a majority of the other live nodes and so is the
  declaring node, the two majorities share a node;
* per node, ``member_up`` and ``member_down`` alternate for each member, and ``members`` holds
  exactly the members announced and not yet downed;
* no honest message is ever refused as malformed.

At the end of every run, every cut is healed and time passes: then every live node's member
list is exactly the set of live nodes at their current incarnations, all up, with every
member's current metadata, the view hashes agree, and every pair of live nodes is linked.

Set ``SIMULATION_EXAMPLES`` to run more examples than CI does.
"""

from __future__ import annotations

import os
import random
from collections import deque
from dataclasses import dataclass, field

import msgpack
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from transport._membership import (
    ForgetPeer,
    KeepPeer,
    Member,
    MemberDown,
    Membership,
    MembershipConfig,
    MemberUp,
    MemberUpdated,
    SendControl,
)

# The run is long by design (the examples are the coverage) and slow on a loaded machine;
# only the global timeout firing mid-run could fail it, and hypothesis then reports the
# interrupted example as flaky. Its own budget, sized for a loaded 2-core machine:
pytestmark = pytest.mark.timeout(240)

IDS = ["n0", "n1", "n2", "n3", "n4", "n5", "n6"]
CONFIG = MembershipConfig(
    down_after=2.0, check_timeout=0.6, gossip_interval=0.5, forget_after=10_000.0
)
HEARTBEAT_TIMEOUT = 1.0
MAX_STEP = 0.25
# A check starts at most MAX_STEP after it is due and ends at most check_timeout + MAX_STEP
# later: links clear for this long before a declaration would have answered the check.
CHECK_WINDOW = CONFIG.check_timeout + 2 * MAX_STEP
SETTLE_SECONDS = 40.0


def pair(a: str, b: str) -> frozenset[str]:
    return frozenset((a, b))


@dataclass
class SimNode:
    node_id: str
    generation: int
    incarnation: int
    membership: Membership
    seeds: set[str]
    wanted: dict[str, str] = field(default_factory=dict)  # KeepPeer: peer id -> uri
    up: dict[str, int] = field(default_factory=dict)  # from events: member id -> incarnation
    linked_once: bool = False

    @property
    def uri(self) -> str:
        return uri_of(self.node_id, self.generation)


def uri_of(node_id: str, generation: int) -> str:
    # Each start listens on a new port, as a restart on port 0 does.
    return f"tcp://{node_id}.sim:{1000 + generation}"


@dataclass
class SimLink:
    ends: dict[str, int]  # node id -> generation of that end
    queues: dict[str, deque[tuple[str, bytes]]]  # receiver id -> (sender id, encoded body)
    clear_since: float | None  # since when up and uncut; None while cut
    silent_since: float | None = None  # cut or one end crashed silently: heartbeat runs out


class MembershipSimulation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.nodes: dict[str, SimNode] = {}
        self.generations: dict[str, int] = {}
        self.links: dict[frozenset[str], SimLink] = {}
        self.cuts: set[frozenset[str]] = set()
        self.rng = random.Random(0)
        self.declarations = 0

    # -- plumbing ---------------------------------------------------------------------------------

    def owner(self, uri: str) -> SimNode | None:
        for node in self.nodes.values():
            if node.uri == uri:
                return node
        return None

    def pump(self, node: SimNode) -> None:
        for action in node.membership.take_actions():
            if isinstance(action, SendControl):
                link = self.links.get(pair(node.node_id, action.peer_id))
                if link is not None and link.ends.get(node.node_id) == node.generation:
                    encoded = msgpack.packb(action.body, use_bin_type=True)
                    link.queues[action.peer_id].append((node.node_id, encoded))
            elif isinstance(action, KeepPeer):
                node.wanted[action.peer_id] = action.uri
            elif isinstance(action, ForgetPeer):
                node.wanted.pop(action.peer_id, None)
            elif isinstance(action, MemberUp):
                member = action.member
                assert member.id not in node.up, f"{node.node_id}: member_up twice for {member}"
                node.up[member.id] = member.incarnation
            elif isinstance(action, MemberDown):
                member = action.member
                assert node.up.get(member.id) == member.incarnation, (
                    f"{node.node_id}: member_down for {member} that was not up"
                )
                del node.up[member.id]
                if action.reason != "left":
                    self.check_declaration(node, member, action.reason, action.detected)
            elif isinstance(action, MemberUpdated):
                assert action.member.id in node.up
            else:  # pragma: no cover - the action set is closed
                raise AssertionError(action)

    def check_declaration(self, node: SimNode, member: Member, reason: str, detected: bool) -> None:
        target = member.id
        target_node = self.nodes.get(target)
        if target_node is None or target_node.incarnation != member.incarnation:
            return  # that incarnation is gone: any reason is right
        link = self.links.get(pair(node.node_id, target))
        if link is not None and link.clear_since is not None:
            raise AssertionError(
                f"{node.node_id}: member_down({target}, {reason}) over a clear link to it "
                f"(detected={detected})"
            )
        if not detected or reason != "unreachable":
            return
        self.declarations += 1
        horizon = self.now - CHECK_WINDOW
        for other in self.nodes.values():
            if other.node_id in (node.node_id, target):
                continue
            first = self.links.get(pair(node.node_id, other.node_id))
            second = self.links.get(pair(other.node_id, target))
            if (
                first is not None
                and second is not None
                and first.clear_since is not None
                and second.clear_since is not None
                and first.clear_since <= horizon
                and second.clear_since <= horizon
            ):
                raise AssertionError(
                    f"{node.node_id} declared {target} down at {self.now:.2f} although "
                    f"{other.node_id} hears both (clear since {first.clear_since:.2f} and "
                    f"{second.clear_since:.2f})"
                )

    def linked(self, a: SimNode, b: SimNode) -> bool:
        link = self.links.get(pair(a.node_id, b.node_id))
        return link is not None and link.ends == {a.node_id: a.generation, b.node_id: b.generation}

    def open_link(self, a: SimNode, b: SimNode) -> None:
        key = pair(a.node_id, b.node_id)
        if self.linked(a, b) or key in self.cuts:
            return
        if key in self.links:
            # A new incarnation replaces the stale connection at once (the transport's rule).
            self.close_link(key, last_heard=None)
        self.links[key] = SimLink(
            ends={a.node_id: a.generation, b.node_id: b.generation},
            queues={a.node_id: deque(), b.node_id: deque()},
            clear_since=self.now,
        )
        a.linked_once = b.linked_once = True
        a.membership.connection_up(b.node_id, b.incarnation, self.now)
        b.membership.connection_up(a.node_id, a.incarnation, self.now)
        self.pump(a)
        self.pump(b)

    def close_link(self, key: frozenset[str], last_heard: float | None) -> None:
        link = self.links.pop(key)
        for node_id, generation in link.ends.items():
            node = self.nodes.get(node_id)
            if node is None or node.generation != generation:
                continue
            (peer_id,) = key - {node_id}
            node.membership.connection_down(peer_id, self.now, last_heard)
            self.pump(node)

    def deliverable(self) -> list[tuple[frozenset[str], str]]:
        return [
            (key, receiver)
            for key, link in self.links.items()
            if key not in self.cuts
            for receiver, queue in link.queues.items()
            if queue
        ]

    def deliver(self, key: frozenset[str], receiver_id: str) -> None:
        link = self.links[key]
        sender_id, encoded = link.queues[receiver_id].popleft()
        receiver = self.nodes.get(receiver_id)
        if receiver is None or receiver.generation != link.ends[receiver_id]:
            return  # the receiving end crashed silently: the bytes go nowhere
        body = msgpack.unpackb(encoded, raw=False)
        receiver.membership.receive(sender_id, body, self.now)
        self.pump(receiver)

    def deliver_all(self) -> None:
        for _ in range(100_000):
            ready = self.deliverable()
            if not ready:
                return
            key, receiver = ready[self.rng.randrange(len(ready))]
            self.deliver(key, receiver)
        raise AssertionError("membership messages never quiesce")

    def dial_all(self) -> None:
        for node in list(self.nodes.values()):
            if self.nodes.get(node.node_id) is not node:
                continue
            targets = sorted({*node.wanted.values(), *node.seeds})
            for uri in targets:
                target = self.owner(uri)
                if target is not None and target is not node:
                    self.open_link(node, target)
                    if self.linked(node, target):
                        node.seeds.discard(uri)
                        continue
                if target is not node:
                    # Refused, cut or gone: the transport reports a failed dial to a member.
                    for peer_id, wanted in node.wanted.items():
                        if wanted == uri:
                            node.membership.dial_failed(peer_id, self.now)
                            self.pump(node)

    def step(self, dt: float) -> None:
        self.deliver_all()
        self.dial_all()
        self.deliver_all()
        self.now += dt
        for key, link in list(self.links.items()):
            if link.silent_since is not None and self.now - link.silent_since >= HEARTBEAT_TIMEOUT:
                self.close_link(key, last_heard=link.silent_since)
        for node in list(self.nodes.values()):
            node.membership.tick(self.now)
            self.pump(node)

    def start(self, node_id: str, seed_count: int) -> None:
        generation = self.generations.get(node_id, -1) + 1
        self.generations[node_id] = generation
        alive = sorted(self.nodes)
        seeds = {self.nodes[i].uri for i in alive[:seed_count]}
        incarnation = self.rng.getrandbits(64)
        membership = Membership(
            node_id,
            incarnation,
            uri_of(node_id, generation),
            CONFIG,
            random.Random(self.rng.getrandbits(32)),
            self.now,
        )
        self.nodes[node_id] = SimNode(node_id, generation, incarnation, membership, seeds)

    def crash(self, node_id: str, fin: bool) -> None:
        self.nodes.pop(node_id)
        for key, link in list(self.links.items()):
            if node_id in key:
                if fin:
                    self.close_link(key, last_heard=None)
                elif link.silent_since is None:
                    link.silent_since = self.now

    # -- rules ------------------------------------------------------------------------------------

    @initialize(seed=st.integers(0, 2**32 - 1))
    def first_node(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.start("n0", 0)

    @precondition(lambda self: len(self.nodes) < len(IDS))
    @rule(data=st.data(), seed_count=st.integers(1, 2))
    def start_node(self, data: st.DataObject, seed_count: int) -> None:
        free = [i for i in IDS if i not in self.nodes]
        self.start(data.draw(st.sampled_from(free)), seed_count)

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(data=st.data(), fin=st.booleans())
    def crash_node(self, data: st.DataObject, fin: bool) -> None:
        self.crash(data.draw(st.sampled_from(sorted(self.nodes))), fin)

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(data=st.data())
    def leave_node(self, data: st.DataObject) -> None:
        node = self.nodes[data.draw(st.sampled_from(sorted(self.nodes)))]
        node.membership.leave()
        self.pump(node)
        # close() flushes the left entries before the goodbye; in order on each link.
        for key, link in self.links.items():
            if node.node_id in key and key not in self.cuts:
                (peer_id,) = key - {node.node_id}
                queue = link.queues[peer_id]
                while queue:
                    self.deliver(key, peer_id)
        self.crash(node.node_id, fin=True)

    @precondition(lambda self: len(self.nodes) > 1)
    @rule(data=st.data())
    def cut_link(self, data: st.DataObject) -> None:
        a, b = data.draw(st.lists(st.sampled_from(IDS), min_size=2, max_size=2, unique=True))
        self.cut(pair(a, b))

    def cut(self, key: frozenset[str]) -> None:
        if key in self.cuts:
            return
        self.cuts.add(key)
        link = self.links.get(key)
        if link is not None:
            link.clear_since = None
            if link.silent_since is None:
                link.silent_since = self.now

    @precondition(lambda self: len(self.nodes) > 2)
    @rule(data=st.data())
    def partition(self, data: st.DataObject) -> None:
        alive = sorted(self.nodes)
        side = data.draw(st.sets(st.sampled_from(alive), min_size=1, max_size=len(alive) - 1))
        for a in side:
            for b in IDS:
                if b not in side:
                    self.cut(pair(a, b))

    @precondition(lambda self: bool(self.cuts))
    @rule(data=st.data())
    def heal_link(self, data: st.DataObject) -> None:
        self.heal(data.draw(st.sampled_from(sorted(self.cuts, key=sorted))))

    @precondition(lambda self: bool(self.cuts))
    @rule()
    def heal_all(self) -> None:
        for key in list(self.cuts):
            self.heal(key)

    def heal(self, key: frozenset[str]) -> None:
        self.cuts.discard(key)
        link = self.links.get(key)
        if link is not None and all(
            node_id in self.nodes and self.nodes[node_id].generation == generation
            for node_id, generation in link.ends.items()
        ):
            # Healed before the heartbeat ran out: the connection survives, the held bytes flow.
            link.silent_since = None
            link.clear_since = self.now

    @rule(data=st.data(), blob=st.binary(max_size=8))
    def set_metadata(self, data: st.DataObject, blob: bytes) -> None:
        node = self.nodes[data.draw(st.sampled_from(sorted(self.nodes)))]
        node.membership.set_metadata(blob, self.now)
        self.pump(node)

    @precondition(lambda self: bool(self.deliverable()))
    @rule(data=st.data())
    def deliver_one(self, data: st.DataObject) -> None:
        key, receiver = data.draw(st.sampled_from(self.deliverable()))
        self.deliver(key, receiver)

    @rule(dt=st.floats(0.01, MAX_STEP))
    def advance(self, dt: float) -> None:
        self.step(dt)

    @rule(steps=st.integers(1, 24))
    def wait(self, steps: int) -> None:
        for _ in range(steps):
            self.step(MAX_STEP)

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def members_match_events(self) -> None:
        for node in self.nodes.values():
            members = node.membership.members
            assert set(members) == {node.node_id, *node.up}, (node.node_id, members, node.up)
            for member_id, incarnation in node.up.items():
                assert members[member_id].incarnation == incarnation

    def dump(self) -> str:
        lines = [f"now={self.now:.2f} links={sorted(map(sorted, self.links))}"]
        for node in self.nodes.values():
            m = node.membership
            entries = {
                i: (e.incarnation % 1000, e.version, e.status.name) for i, e in m._entries.items()
            }
            lines.append(
                f"{node.node_id} inc={node.incarnation % 1000} entries={entries} "
                f"wanted={node.wanted} seeds={node.seeds} uri={node.uri}"
            )
        return "\n".join(lines)

    def rejoin_islands(self) -> None:
        """Join to the lowest live id every group of nodes that knows no other live node.

        Nodes whose every seed and known member died or left know nobody outside their group
        (knowing a node means dialing its current uri: an old incarnation's uri is no use);
        no protocol can merge groups that do not know of each other, so the test joins them
        as an operator would (``join(uri)``). Groups that know one another are left alone.
        """
        alive = sorted(self.nodes)
        knows = {
            a: {
                b
                for b in alive
                if b != a
                and (
                    self.nodes[a].wanted.get(b) == self.nodes[b].uri
                    or self.nodes[b].uri in self.nodes[a].seeds
                )
            }
            for a in alive
        }
        island: dict[str, int] = {}  # node id -> index of its group's first node
        for start in alive:
            if start in island:
                continue
            todo = [start]
            while todo:
                current = todo.pop()
                if current in island:
                    continue
                island[current] = alive.index(start)
                todo.extend(knows[current])
                todo.extend(b for b in alive if current in knows[b])
        anchor = alive[0] if alive else None
        for node_id in alive:
            if anchor is not None and island[node_id] != island[anchor]:
                self.nodes[node_id].seeds.add(self.nodes[anchor].uri)

    def teardown(self) -> None:
        for key in list(self.cuts):
            self.heal(key)
        self.rejoin_islands()
        elapsed = 0.0
        while elapsed < SETTLE_SECONDS:
            self.step(MAX_STEP)
            elapsed += MAX_STEP
        self.deliver_all()
        alive = {node_id: node.incarnation for node_id, node in self.nodes.items()}
        hashes = set()
        for node in self.nodes.values():
            members = node.membership.members
            seen = {member_id: member.incarnation for member_id, member in members.items()}
            assert seen == alive, f"{node.node_id} sees {seen}, alive: {alive}; {self.dump()}"
            for member_id, member in members.items():
                assert member.status == "up", (node.node_id, member)
                assert member.metadata == self.nodes[member_id].membership.metadata
            hashes.add(node.membership.view_hash())
        assert len(hashes) <= 1, "views agree on members but not on their hash"
        ids = sorted(self.nodes)
        for index, a in enumerate(ids):
            for b in ids[index + 1 :]:
                link = self.links.get(pair(a, b))
                assert link is not None, f"{a} and {b} are not connected after settling"
                assert link.ends == {a: self.nodes[a].generation, b: self.nodes[b].generation}


MembershipSimulation.TestCase.settings = settings(
    max_examples=int(os.environ.get("SIMULATION_EXAMPLES", "60")),
    stateful_step_count=60,
    deadline=None,
    derandomize="SIMULATION_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMembershipSimulation = MembershipSimulation.TestCase
