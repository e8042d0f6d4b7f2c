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
    assert pair.events["a"] == [PeerDisconnected("b", "lost")]


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
