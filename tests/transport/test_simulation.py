"""Deterministic simulation of the sans-I/O node core.

N ``NodeCore`` instances talk over an in-memory network. Hypothesis chooses the interleaving:
which bytes arrive when (split anywhere), dials, packet sends, clean drops, one-sided drops,
crashes and restarts, and the passing of time. After every step the invariants are checked;
a ``settle`` step drains the network, lets heartbeats and re-dials run, and checks that every
pair converged to at most one connection that both sides agree on.

Set ``SIMULATION_EXAMPLES`` to run more examples than CI does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

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
from support import nonces

from transport._config import NodeConfig
from transport._connection import Connection, ConnectionState
from transport._core import NodeCore
from transport._events import (
    DialOutcome,
    PacketsReceived,
    PeerConnected,
    PeerDisconnected,
    RedialNeeded,
)
from transport._frames import encode_data
from transport._handshake import LocalIdentity

# The run is long by design (the examples are the coverage) and slow on a loaded machine;
# only the global timeout firing mid-run could fail it, and hypothesis then reports the
# interrupted example as flaky. Its own budget, sized for a loaded 2-core machine:
pytestmark = pytest.mark.timeout(240)

IDS = ["n0", "n1", "n2", "n3", "n4", "n5"]
CONFIG = NodeConfig(heartbeat_interval=1.0, heartbeat_timeout=3.0, handshake_timeout=5.0)
COOKIE = b"simulation-cookie"


@dataclass
class Direction:
    """Bytes in flight one way on a simulated TCP connection."""

    data: bytearray = field(default_factory=bytearray)
    eof: bool = False  # the sender closed: after `data`, the receiver sees EOF


@dataclass
class End:
    node_id: str
    generation: int  # which incarnation of the node owns this end
    conn: Connection
    open: bool = True


@dataclass
class Link:
    ends: tuple[End, End]
    flows: tuple[Direction, Direction]  # flows[i]: bytes from ends[i] to ends[1 - i]
    severed: bool = False  # dropped: nothing crosses any more


@dataclass
class SimNode:
    core: NodeCore
    generation: int
    connected: set[str] = field(default_factory=set)  # from events, to check their balance
    last_seq: dict[tuple[str, int], int] = field(default_factory=dict)


class MeshSimulation(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.nodes: dict[str, SimNode] = {}
        self.links: list[Link] = []
        self.redials: set[tuple[str, str]] = set()
        self.generations = 0
        self._nonce = nonces()
        self.seq = 0

    # -- the simulated world ------------------------------------------------------------------

    def _boot(self, node_id: str) -> None:
        self.generations += 1
        local = LocalIdentity(node_id, self.generations, f"sim://{node_id}")
        core = NodeCore(local, CONFIG, COOKIE, self._nonce)
        self.nodes[node_id] = SimNode(core, self.generations)

    def _live_end(self, end: End) -> bool:
        return end.open and self.nodes[end.node_id].generation == end.generation

    def _pump(self, node_id: str) -> None:
        """After a core call: move its output onto links and check its events."""
        node = self.nodes[node_id]
        core = node.core
        for output in core.take_output():
            for link in self.links:
                if link.severed:
                    continue
                for index, end in enumerate(link.ends):
                    if end.conn.handle == output.handle and end.node_id == node_id:
                        flow = link.flows[index]
                        if not flow.eof:
                            flow.data += output.data
                            if output.close:
                                flow.eof = True
        for event in core.take_events():
            self._check_event(node_id, node, event)

    def _check_event(self, node_id: str, node: SimNode, event: Any) -> None:
        if isinstance(event, PeerConnected):
            assert event.peer_id not in node.connected, f"{node_id}: second connect {event}"
            node.connected.add(event.peer_id)
        elif isinstance(event, PeerDisconnected):
            assert event.peer_id in node.connected, f"{node_id}: disconnect without connect"
            assert event.reason in ("closed", "lost", "restarted", "unwanted")
            if event.reason == "unwanted":
                # Only a connection that neither side keeps any more is discarded.
                assert not node.core.is_kept(event.peer_id), f"{node_id}: kept peer unwanted"
            node.connected.discard(event.peer_id)
            self._check_really_gone(node_id, self._up_before.get(event.peer_id), event.reason)
        elif isinstance(event, PacketsReceived):
            assert event.peer_id in node.connected, f"{node_id}: packet before connect"
            assert event.packets, "an empty batch"
            for sender, generation, seq in event.packets:
                assert sender == event.peer_id, "packet delivered under the wrong peer id"
                key = (sender, generation)
                assert seq > node.last_seq.get(key, 0), f"{node_id}: reordered or duplicated"
                node.last_seq[key] = seq
        elif isinstance(event, RedialNeeded):
            self.redials.add((node_id, event.peer_id))
        elif isinstance(event, DialOutcome) and event.error is None and event.peer_id:
            node.core.keep(event.peer_id, True, f"sim://{event.peer_id}")
            self._pump_later.add(node_id)

    _pump_later: set[str]
    _up_before: dict[str, Connection]

    def _check_really_gone(self, node_id: str, conn: Connection | None, reason: str) -> None:
        """A connection is declared lost or restarted only when it really is."""
        if conn is None or reason in ("closed", "unwanted"):  # deliberate closes
            return
        for link in self.links:
            ends = [end for end in link.ends if end.conn is conn and end.node_id == node_id]
            if not ends:
                continue
            (other,) = [end for end in link.ends if end is not ends[0]]
            if reason == "restarted":
                assert self.nodes[other.node_id].generation != other.generation, (
                    f"{node_id}: {other.node_id} reported restarted but it is not"
                )
                return
            silent = self.now - conn.last_received >= CONFIG.heartbeat_timeout
            assert (
                link.severed
                or not self._live_end(other)
                or other.conn.state is ConnectionState.CLOSED
                or silent
            ), f"{node_id}: a healthy connection to {other.node_id} was torn down as lost"
            return

    def _run(self, node_id: str, action: Any) -> None:
        self._pump_later = set()
        self._up_before = dict(self.nodes[node_id].core.up)
        action(self.nodes[node_id].core)
        self._pump(node_id)
        while self._pump_later:
            self._pump(self._pump_later.pop())

    def _dial(self, dialer: str, listener: str) -> None:
        a, b = self.nodes[dialer], self.nodes[listener]
        conn_a = a.core.connection(a.core.open(dialer=True, now=self.now, uri=f"sim://{listener}"))
        conn_b = b.core.connection(b.core.open(dialer=False, now=self.now))
        assert conn_a is not None and conn_b is not None
        self.links.append(
            Link(
                (End(dialer, a.generation, conn_a), End(listener, b.generation, conn_b)),
                (Direction(), Direction()),
            )
        )
        self._run(dialer, lambda core: None)
        self._run(listener, lambda core: None)

    def _lose(self, end: End) -> None:
        if self._live_end(end):
            end.open = False
            self._run(end.node_id, lambda core: core.connection_lost(end.conn.handle, self.now))
        end.open = False

    def _deliver(self, link: Link, index: int, amount: int | None) -> None:
        flow = link.flows[index]
        receiver = link.ends[1 - index]
        if not self._live_end(receiver):
            flow.data.clear()
            return
        if flow.data:
            size = len(flow.data) if amount is None else max(1, min(amount, len(flow.data)))
            chunk = bytes(flow.data[:size])
            del flow.data[:size]
            self._run(
                receiver.node_id,
                lambda core: core.receive_data(receiver.conn.handle, chunk, self.now),
            )
        elif flow.eof:
            self._lose(receiver)

    def _in_flight(self) -> list[tuple[Link, int]]:
        self.links = [link for link in self.links if any(self._live_end(end) for end in link.ends)]
        return [
            (link, index)
            for link in self.links
            for index in (0, 1)
            if not link.severed
            and self._live_end(link.ends[1 - index])
            and (link.flows[index].data or link.flows[index].eof)
        ]

    # -- rules ------------------------------------------------------------------------------------

    @initialize(count=st.integers(min_value=2, max_value=6))
    def boot(self, count: int) -> None:
        for node_id in IDS[:count]:
            self._boot(node_id)

    @rule(data=st.data())
    def dial(self, data: st.DataObject) -> None:
        dialer = data.draw(st.sampled_from(sorted(self.nodes)))
        listener = data.draw(st.sampled_from(sorted(set(self.nodes) - {dialer})))
        self._dial(dialer, listener)

    @rule(data=st.data(), whole=st.booleans(), amount=st.integers(min_value=1, max_value=64))
    def deliver(self, data: st.DataObject, whole: bool, amount: int) -> None:
        flights = self._in_flight()
        if flights:
            link, index = data.draw(st.sampled_from(flights))
            self._deliver(link, index, None if whole else amount)

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        sender = data.draw(st.sampled_from(sorted(self.nodes)))
        target = data.draw(st.sampled_from(sorted(set(self.nodes) - {sender})))
        self.seq += 1
        node = self.nodes[sender]
        frame = encode_data([sender, node.generation, self.seq])
        self._run(sender, lambda core: core.send(target, frame))

    @rule(data=st.data(), one_sided=st.booleans())
    def drop(self, data: st.DataObject, one_sided: bool) -> None:
        live = [
            link
            for link in self.links
            if not link.severed and any(self._live_end(end) for end in link.ends)
        ]
        if not live:
            return
        link = data.draw(st.sampled_from(live))
        link.severed = True
        for flow in link.flows:
            flow.data.clear()
        if one_sided:
            # Only one side learns of the drop; the other holds a half-open connection
            # until its heartbeat timeout or a re-dial replaces it.
            self._lose(link.ends[data.draw(st.integers(0, 1))])
        else:
            for end in link.ends:
                self._lose(end)

    @rule(data=st.data(), with_eof=st.booleans())
    def restart(self, data: st.DataObject, with_eof: bool) -> None:
        node_id = data.draw(st.sampled_from(sorted(self.nodes)))
        for link in self.links:
            for index, end in enumerate(link.ends):
                if end.node_id == node_id and self._live_end(end):
                    end.open = False
                    flow = link.flows[index]
                    flow.data.clear()
                    # A crashed process's kernel sends EOF/RST; a dead machine sends nothing.
                    flow.eof = with_eof
        self.redials = {pair for pair in self.redials if pair[0] != node_id}
        self._boot(node_id)

    @rule(data=st.data(), flag=st.booleans())
    def keep(self, data: st.DataObject, flag: bool) -> None:
        """A node starts or stops keeping a peer (the peer hears of it)."""
        node_id = data.draw(st.sampled_from(sorted(self.nodes)))
        peer = data.draw(st.sampled_from(sorted(set(self.nodes) - {node_id})))
        self._run(node_id, lambda core: core.keep(peer, flag, f"sim://{peer}"))

    @rule(data=st.data())
    def disconnect(self, data: st.DataObject) -> None:
        """A node disconnects a peer, whatever state its connections to it are in."""
        node_id = data.draw(st.sampled_from(sorted(self.nodes)))
        peer = data.draw(st.sampled_from(sorted(set(self.nodes) - {node_id})))
        self._run(node_id, lambda core: core.disconnect(peer))

    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 2.0]))
    def advance_time(self, seconds: float) -> None:
        self.now += seconds
        for node_id in sorted(self.nodes):
            self._run(node_id, lambda core: core.tick(self.now))

    @precondition(lambda self: bool(self.redials))
    @rule(data=st.data())
    def redial(self, data: st.DataObject) -> None:
        dialer, peer = data.draw(st.sampled_from(sorted(self.redials)))
        self.redials.discard((dialer, peer))
        core = self.nodes[dialer].core
        if core.is_kept(peer) and peer not in core.up:
            self._dial(dialer, peer)

    def _drain(self) -> None:
        for _ in range(1000):
            while flights := self._in_flight():
                link, index = flights[0]
                self._deliver(link, index, None)
            if not self.redials:
                return
            for dialer, peer in sorted(self.redials):
                self.redials.discard((dialer, peer))
                core = self.nodes[dialer].core
                if core.is_kept(peer) and peer not in core.up:
                    self._dial(dialer, peer)
        raise AssertionError("the network never went quiet")

    @rule()
    def settle(self) -> None:
        """Drain everything, let time and re-dials run, then check the pairs converged."""
        for _ in range(12):  # 12 simulated seconds: past every timeout, re-dials included
            self._drain()
            self.advance_time(1.0)
        self._drain()
        for x in self.nodes.values():
            for peer_id, conn in x.core.up.items():
                y = self.nodes[peer_id].core
                other = y.up.get(x.core.local.node_id)
                assert other is not None, f"{x.core.local.node_id}->{peer_id} up on one side only"
                assert other.peer is not None and conn.peer is not None
                assert other.peer.connection_id == conn.peer.connection_id, "sides disagree"
            for peer_id in IDS:
                if x.core.is_kept(peer_id):
                    assert peer_id in x.core.up, f"kept peer {peer_id} not reconnected"

    # -- invariants -------------------------------------------------------------------------------

    @invariant()
    def one_up_connection_per_peer_and_events_balance(self) -> None:
        for node_id, node in self.nodes.items():
            core = node.core
            assert set(core.up) == node.connected, f"{node_id}: events disagree with state"
            for peer_id, conn in core.up.items():
                assert conn.state is ConnectionState.UP
                assert conn.peer is not None and conn.peer.node_id == peer_id
                assert peer_id != node_id
            live_up = [
                conn for conn in core.connections.values() if conn.state is ConnectionState.UP
            ]
            assert len(live_up) == len(core.up), f"{node_id}: an up connection is not in the table"


MeshSimulation.TestCase.settings = settings(
    max_examples=int(os.environ.get("SIMULATION_EXAMPLES", "150")),
    stateful_step_count=40,
    deadline=None,
    derandomize="SIMULATION_EXAMPLES" not in os.environ,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestMeshSimulation = MeshSimulation.TestCase
