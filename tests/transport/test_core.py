"""NodeCore unit behaviour with bytes in and bytes out (no event loop)."""

from __future__ import annotations

import logging

import pytest
from support import CorePair, nonces

from transport._config import NodeConfig
from transport._core import NodeCore
from transport._events import DialOutcome, PeerConnected, PeerDisconnected, RedialNeeded
from transport._frames import FrameDecoder, encode_frame
from transport._handshake import LocalIdentity, reject_body


def make_core(node_id: str) -> NodeCore:
    return NodeCore(LocalIdentity(node_id, 7, f"sim://{node_id}"), NodeConfig(), None, nonces())


def output_bodies(core: NodeCore, handle: int) -> tuple[list[object], bool]:
    """The bodies the core queued for ``handle`` and whether it asked to close it."""
    bodies: list[object] = []
    close = False
    for output in core.take_output():
        assert output.handle == handle
        bodies += FrameDecoder().feed(output.data)
        close = close or output.close
    return bodies, close


def test_a_received_reject_is_not_answered_with_another_reject() -> None:
    core = make_core("a")
    handle = core.open(dialer=True, now=0.0, uri="sim://b")
    hello, _ = output_bodies(core, handle)
    assert [body["op"] for body in hello] == ["hello"]  # type: ignore[index]
    core.receive_data(handle, encode_frame(reject_body("busy", "too many")), now=0.1)
    assert output_bodies(core, handle) == ([], True)
    (outcome,) = core.take_events()
    assert outcome.error is not None and outcome.error.code == "busy"  # type: ignore[union-attr]


def test_a_malformed_hello_is_answered_with_a_protocol_reject() -> None:
    core = make_core("a")
    handle = core.open(dialer=False, now=0.0)
    core.receive_data(handle, encode_frame({"op": "hello", "v": 1}), now=0.1)
    (reply,), close = output_bodies(core, handle)
    assert reply["op"] == "reject" and reply["code"] == "protocol"  # type: ignore[index]
    assert close


# -- heartbeats, with the time passed in -------------------------------------------------------

HEARTBEAT = NodeConfig(heartbeat_interval=1.0, heartbeat_timeout=5.0)


def up_pair(config: NodeConfig = HEARTBEAT) -> CorePair:
    pair = CorePair(config=config)
    pair.pump()
    assert pair.a.peers == ["b"] and pair.b.peers == ["a"]
    pair.events = {"a": [], "b": []}
    pair.sent = {"a": [], "b": []}
    return pair


def test_a_silent_connection_sends_a_heartbeat_each_interval_and_a_busy_one_none() -> None:
    pair = up_pair()
    beats: list[float] = []
    for _ in range(13):  # 3.25 s in quarter seconds, b answering nothing
        pair.advance(0.25, only="a")
        beats += [pair.now] * pair.sent["a"].count([1])
        pair.sent["a"].clear()
    # The first tick notes the handshake's writes; then one beat per second of silence.
    assert beats == [1.25, 2.25, 3.25]
    pair.pump()
    pair.sent["a"].clear()
    for n in range(8):  # 2 s of sending: the data itself shows life, no beat is added
        assert pair.a.send("b", encode_frame([0, n]))
        pair.advance(0.25)
        pair.pump()
    assert [1] not in pair.sent["a"]
    assert [0, 7] in pair.sent["a"]


def test_a_silent_peer_is_declared_lost_at_the_heartbeat_timeout_not_before() -> None:
    pair = up_pair()
    pair.advance(0.5, only="a")  # notes the handshake bytes as the last sign of life
    while pair.a.peers:
        assert pair.now < 10.0, "never declared lost"
        pair.advance(0.5, only="a")  # nothing from b is ever delivered
    assert pair.now == 0.5 + HEARTBEAT.heartbeat_timeout
    # last_heard: the tick that noted the handshake bytes, where the silence began.
    assert pair.events["a"] == [PeerDisconnected("b", "lost", last_heard=0.5)]


def test_heartbeats_keep_an_idle_connection_up() -> None:
    pair = up_pair()
    for _ in range(100):  # ten heartbeat timeouts of idling, every byte delivered
        pair.advance(0.5)
        pair.pump()
    assert pair.events == {"a": [], "b": []}
    assert pair.a.peers == ["b"] and pair.b.peers == ["a"]


# -- races around the commit, and keep flags ------------------------------------------------------


def committed_by_the_deciding_listener() -> CorePair:
    """Dialer "z", listener "a" (the decider, its id sorts lower), the commit not yet sent on."""
    pair = CorePair("z", "a")
    for _ in range(10):
        pair.deliver("a")
        if pair.cores["a"].peers:
            assert pair.cores["z"].peers == []
            return pair
        pair.deliver("z")
    raise AssertionError("the listener never committed")


def test_a_dial_reports_committed_even_when_the_peer_disconnects_in_the_same_read() -> None:
    pair = committed_by_the_deciding_listener()
    listener, dialer = pair.cores["a"], pair.cores["z"]
    assert listener.disconnect("z")  # right after its commit, before the dialer read it
    pair.collect()
    pair.deliver("z")  # the commit and the goodbye arrive together
    outcomes = [e for e in pair.events["z"] if isinstance(e, DialOutcome)]
    assert outcomes == [DialOutcome(pair.handles["z"], "a", None, True)]
    assert [e for e in pair.events["z"] if not isinstance(e, DialOutcome)] == [
        PeerConnected("a", "sim://a"),
        PeerDisconnected("a", "closed"),
    ]
    assert dialer.peers == []


def test_a_follower_that_disconnects_before_the_commit_arrives_is_reported_closed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pair = committed_by_the_deciding_listener()
    follower = pair.cores["z"]
    assert not follower.disconnect("a")  # no connection of its own was up yet
    pair.collect()
    with caplog.at_level(logging.INFO, logger="transport"):
        pair.pump()
    assert pair.events["a"] == [PeerConnected("z", "sim://z"), PeerDisconnected("z", "closed")]
    assert not any("malformed" in record.getMessage() for record in caplog.records)
    assert pair.cores["a"].peers == [] and follower.peers == []


def test_a_connection_neither_side_keeps_any_more_is_closed_as_unwanted() -> None:
    # The original library's "should discard unwanted connections": the dialer keeps, then
    # stops keeping; the listener never kept; both sides see a disconnect.
    pair = CorePair("right", "left")
    pair.pump()
    right, left = pair.cores["right"], pair.cores["left"]
    assert right.keep("left", True, "sim://left")
    pair.pump()
    assert right.peers == ["left"] and left.peers == ["right"]
    assert right.keep("left", False)
    pair.collect()
    pair.pump()
    assert pair.events["left"][-1] == PeerDisconnected("right", "unwanted")
    assert pair.events["right"][-1] == PeerDisconnected("left", "unwanted")
    assert right.peers == [] and left.peers == []
    assert not any(isinstance(e, RedialNeeded) for e in pair.events["right"])


def test_a_connection_the_other_side_still_keeps_stays_up() -> None:
    pair = CorePair("right", "left")
    pair.pump()
    right, left = pair.cores["right"], pair.cores["left"]
    assert right.keep("left", True, "sim://left") and left.keep("right", True)
    pair.pump()
    assert right.keep("left", False)
    pair.collect()
    pair.pump()
    assert right.peers == ["left"] and left.peers == ["right"]
    assert not any(
        isinstance(e, PeerDisconnected) for events in pair.events.values() for e in events
    )


# -- a duplicate dial, resolved by the pair's surviving connection --------------------------------


class TwoWires:
    """Cores "a" (the decider) and "b" joined by any number of in-memory connections.

    ``dial(x)`` opens one from node ``x``; nothing moves until :meth:`deliver` carries one
    connection's bytes toward one node. Every event is kept in ``events[node_id]``.
    """

    def __init__(self) -> None:
        self.cores = {node_id: make_core(node_id) for node_id in ("a", "b")}
        self.ends: list[dict[str, int]] = []  # per connection: node id -> handle
        self.wire: list[dict[str, bytearray]] = []  # per connection: bytes toward node id
        self.eof: list[dict[str, bool]] = []
        self.lost: list[dict[str, bool]] = []
        self.events: dict[str, list[object]] = {"a": [], "b": []}

    def dial(self, dialer: str) -> int:
        listener = "b" if dialer == "a" else "a"
        self.ends.append(
            {
                dialer: self.cores[dialer].open(dialer=True, now=0.0, uri=f"sim://{listener}"),
                listener: self.cores[listener].open(dialer=False, now=0.0),
            }
        )
        self.wire.append({"a": bytearray(), "b": bytearray()})
        self.eof.append({"a": False, "b": False})
        self.lost.append({"a": False, "b": False})
        self.collect()
        return len(self.ends) - 1

    def collect(self) -> None:
        for node_id, core in self.cores.items():
            toward = "b" if node_id == "a" else "a"
            for output in core.take_output():
                (index,) = [i for i, ends in enumerate(self.ends) if ends[node_id] == output.handle]
                if not self.eof[index][toward]:
                    self.wire[index][toward] += output.data
                    self.eof[index][toward] = output.close
                if output.close:
                    self.lose(index, node_id)
            self.events[node_id] += core.take_events()

    def lose(self, index: int, node_id: str) -> None:
        """The socket of connection ``index`` at ``node_id`` is gone."""
        if not self.lost[index][node_id]:
            self.lost[index][node_id] = True
            self.cores[node_id].connection_lost(self.ends[index][node_id], 0.0)
            self.collect()

    def deliver(self, index: int, node_id: str) -> None:
        data = bytes(self.wire[index][node_id])
        self.wire[index][node_id].clear()
        if data and not self.lost[index][node_id]:
            self.cores[node_id].receive_data(self.ends[index][node_id], data, 0.0)
        if self.eof[index][node_id]:
            self.lose(index, node_id)
        self.collect()

    def state(self, index: int, node_id: str) -> str:
        conn = self.cores[node_id].connection(self.ends[index][node_id])
        return "gone" if conn is None else conn.state.name

    def outcomes(self, node_id: str) -> list[DialOutcome]:
        return [e for e in self.events[node_id] if isinstance(e, DialOutcome)]


def both_dialed_and_claimed() -> tuple[TwoWires, int, int]:
    """``a`` dialed ``b`` (``kept``) and ``b`` dialed ``a`` (``dup``); ``a`` committed ``kept``
    and rejected ``dup`` as a duplicate; neither the commit nor the reject reached ``b`` yet.
    """
    wires = TwoWires()
    kept, dup = wires.dial("a"), wires.dial("b")
    wires.deliver(kept, "b")  # a's hello: b authenticates kept first, claims it (seq 1)
    wires.deliver(dup, "a")  # b's hello: a answers
    wires.deliver(dup, "b")  # b authenticates dup, claims it (seq 2, kept still alive)
    assert (wires.state(kept, "b"), wires.state(dup, "b")) == ("AWAIT_COMMIT", "AWAIT_COMMIT")
    wires.deliver(kept, "a")  # a commits kept
    wires.deliver(dup, "a")  # and rejects dup: kept is committed and b still holds it
    assert wires.cores["a"].peers == ["b"]
    assert wires.state(dup, "a") == "gone"
    assert wires.outcomes("b") == []
    return wires, kept, dup


def test_a_duplicate_dial_is_resolved_when_the_kept_connection_went_up_and_down_first() -> None:
    # The case a connect() used to wait out its whole timeout for: the pair's surviving
    # connection came up at b and ended again before the duplicate reject reached b, so
    # b's peer table never showed the pair up when the dial's outcome was handled.
    wires, kept, dup = both_dialed_and_claimed()
    wires.deliver(kept, "b")  # the commit: kept is up at b
    assert wires.cores["b"].peers == ["a"]
    wires.lose(kept, "a")
    wires.lose(kept, "b")  # and gone again, on both sides
    assert wires.cores["b"].peers == []
    wires.deliver(dup, "b")  # now the reject of b's own dial arrives
    (outcome,) = wires.outcomes("b")
    assert (outcome.handle, outcome.peer_id, outcome.error) == (wires.ends[dup]["b"], "a", None)
    assert not outcome.committed  # this very connection never went up
    assert outcome.pair_up  # but the one dedup kept did: connect() returns
    assert [e for e in wires.events["b"] if not isinstance(e, DialOutcome)] == [
        PeerConnected("a", "sim://a"),
        PeerDisconnected("a", "lost"),
    ]


def test_a_duplicate_rejected_before_the_kept_connection_is_up_says_so() -> None:
    # The reject overtakes the commit on the other socket: the shell must wait for the
    # pair's connect, and gets it.
    wires, kept, dup = both_dialed_and_claimed()
    wires.deliver(dup, "b")
    (outcome,) = wires.outcomes("b")
    assert (outcome.peer_id, outcome.error, outcome.committed) == ("a", None, False)
    assert not outcome.pair_up
    assert wires.cores["b"].peers == []
    wires.deliver(kept, "b")
    assert wires.events["b"][-1] == PeerConnected("a", "sim://a")


def test_a_duplicate_of_the_deciders_own_dial_is_resolved_by_the_up_connection() -> None:
    # Mirror case at the decider: a's own dial is the duplicate, judged while the pair's
    # kept connection is up there.
    wires = TwoWires()
    kept, dup = wires.dial("b"), wires.dial("a")
    wires.deliver(kept, "a")  # b's hello: a answers
    wires.deliver(kept, "b")  # b authenticates kept, claims it (seq 1)
    wires.deliver(dup, "b")  # a's hello: b authenticates dup, claims it (seq 2)
    wires.deliver(kept, "a")  # a commits kept
    assert wires.cores["a"].peers == ["b"]
    wires.deliver(dup, "a")  # a's own dial is judged a duplicate
    (outcome,) = wires.outcomes("a")
    assert (outcome.handle, outcome.peer_id, outcome.error) == (wires.ends[dup]["a"], "b", None)
    assert not outcome.committed and outcome.pair_up
