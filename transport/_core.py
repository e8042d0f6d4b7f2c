"""Sans-I/O node core: connections, connection dedup, heartbeats and reconnect queues.

:class:`NodeCore` is the whole protocol of one node without sockets, clocks or randomness:
the caller passes the time into every call and draws nonces through ``nonce_factory``. The
caller names connections by the integer handle :meth:`NodeCore.open` returns, feeds received
bytes with :meth:`NodeCore.receive_data`, and after every call

* dispatches :meth:`NodeCore.take_events`, then
* writes each :class:`~transport._events.Output` of :meth:`NodeCore.take_output` to the socket
  of its handle, closing the socket after it when ``close`` is set.

The asyncio shell in :mod:`transport._node` does exactly that; the deterministic simulation
in the tests does it with an in-memory network.

Dedup: the decider's rule is :func:`transport._dedup.judge_claim`; the follower marks a
connection up only when the decider's ``commit`` arrives, so ``connect`` fires once per side.
Every change of a connection's state goes through :meth:`NodeCore._transition` (see
:mod:`transport._connection` for the table).
"""

from __future__ import annotations

import logging
import reprlib
from collections import deque
from collections.abc import Callable
from typing import Any

from . import _connection
from ._config import NodeConfig
from ._connection import (
    HEARTBEAT_FRAME,
    TAG_GOODBYE,
    TAG_HEARTBEAT,
    TAG_KEEP,
    TRANSITIONS,
    Connection,
    ConnectionState,
)
from ._dedup import Claim, Committed, Verdict, judge_claim
from ._events import (
    DialOutcome,
    Event,
    MembershipReceived,
    Output,
    PacketsReceived,
    PeerConnected,
    PeerDisconnected,
    RedialNeeded,
)
from ._frames import FrameDecoder, encode_frame
from ._handshake import (
    Handshake,
    HandshakeState,
    LocalIdentity,
    RejectCode,
    error_for_reject,
    reject_body,
)
from ._membership import TAG_MEMBERSHIP
from ._stats import PeerStats
from .errors import HandshakeError, ProtocolError, TransportError

__all__ = ["NodeCore"]

logger = logging.getLogger("transport")

_RETIRED_INCARNATIONS = 8


class _PeerRecord:
    """What the node remembers of a peer it keeps or is connected to.

    The counters are those of the peer's connections that ended (a live connection counts on
    itself, which keeps the send path to one increment) plus what only the record sees:
    packets queued or refused while no connection was up, and reconnections.
    """

    __slots__ = (
        "bytes_in",
        "bytes_out",
        "dropped",
        "kept",
        "packets_in",
        "packets_out",
        "queue",
        "queue_bytes",
        "reconnects",
        "ups",
        "uri",
    )

    def __init__(self, uri: str | None) -> None:
        self.uri = uri
        self.kept = False
        self.queue: deque[bytes] = deque()
        self.queue_bytes = 0
        self.packets_in = 0
        self.packets_out = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self.dropped = 0
        self.reconnects = 0
        self.ups = 0

    def stats(self, peer_id: str, conn: Connection | None) -> PeerStats:
        if conn is None:
            return PeerStats(
                peer_id,
                False,
                self.packets_in,
                self.packets_out,
                self.bytes_in,
                self.bytes_out,
                self.dropped,
                len(self.queue),
                self.reconnects,
            )
        return PeerStats(
            peer_id,
            True,
            self.packets_in + conn.packets_in,
            self.packets_out + conn.packets_out,
            self.bytes_in + conn.bytes_in,
            self.bytes_out + conn.bytes_out,
            self.dropped,
            len(self.queue),
            self.reconnects,
        )

    def add_counters(self, conn: Connection) -> None:
        self.packets_in += conn.packets_in
        self.packets_out += conn.packets_out
        self.bytes_in += conn.bytes_in
        self.bytes_out += conn.bytes_out


class NodeCore:
    """The protocol state of one node, driven by bytes, times and intents passed in.

    Args:
        local: this node's id, incarnation and advertised uri.
        config: limits and timings.
        cookie: shared secret or None for an open mesh.
        nonce_factory: returns 32 fresh random bytes per call.
    """

    def __init__(
        self,
        local: LocalIdentity,
        config: NodeConfig,
        cookie: bytes | None,
        nonce_factory: Callable[[], bytes],
    ) -> None:
        self.local = local
        self.config = config
        self._high_water = config.high_water
        self._cookie = cookie
        self._nonce_factory = nonce_factory
        self._next_handle = 0
        self._claim_seq = 0
        self.connections: dict[int, Connection] = {}
        self.up: dict[str, Connection] = {}
        self._records: dict[str, _PeerRecord] = {}
        self._retired: dict[str, deque[int]] = {}
        self._dirty: list[Connection] = []
        self._events: list[Event] = []
        self.closed = False

    # -- inspection ---------------------------------------------------------------------------

    @property
    def peers(self) -> list[str]:
        """Ids of peers with an up connection."""
        return list(self.up)

    def is_up(self, peer_id: str) -> bool:
        """True when ``peer_id`` has an up connection."""
        return peer_id in self.up

    def connection(self, handle: int) -> Connection | None:
        """The connection named ``handle`` while the core tracks it (for inspection)."""
        return self.connections.get(handle)

    def handle_of(self, peer_id: str) -> int | None:
        """The handle of ``peer_id``'s up connection, if any."""
        conn = self.up.get(peer_id)
        return None if conn is None else conn.handle

    @property
    def opened(self) -> int:
        """How many connections were ever opened (each got the next handle)."""
        return self._next_handle

    @property
    def handles(self) -> list[int]:
        """Handles of every connection the core tracks (until its socket is lost)."""
        return list(self.connections)

    def backed_up(self, peer_id: str) -> bool:
        """True while ``peer_id``'s up connection holds unwritten bytes or is paused."""
        conn = self.up.get(peer_id)
        return conn is not None and (conn.paused or bool(conn.outbox))

    @property
    def pending_handshakes(self) -> int:
        """Incoming connections that have not finished their handshake."""
        return sum(
            1
            for conn in self.connections.values()
            if conn.state < ConnectionState.UP and not conn.dialer
        )

    def is_kept(self, peer_id: str) -> bool:
        """True when this node re-dials ``peer_id`` whenever its connection drops."""
        record = self._records.get(peer_id)
        return record is not None and record.kept

    def peer_uri(self, peer_id: str) -> str | None:
        """The uri this node would re-dial ``peer_id`` at."""
        record = self._records.get(peer_id)
        return None if record is None else record.uri

    def queued(self, peer_id: str) -> int:
        """Packets waiting in ``peer_id``'s reconnect queue."""
        record = self._records.get(peer_id)
        return 0 if record is None else len(record.queue)

    # -- output ---------------------------------------------------------------------------------

    @property
    def has_events(self) -> bool:
        """True when :meth:`take_events` would return something."""
        return bool(self._events)

    @property
    def has_output(self) -> bool:
        """True when :meth:`take_output` would return something."""
        return bool(self._dirty)

    def take_events(self) -> list[Event]:
        """Return and forget the events produced since the last call."""
        events = self._events
        self._events = []
        return events

    def take_output(self) -> list[Output]:
        """Return and forget the bytes to write and the closes to perform, per connection."""
        dirty = self._dirty
        if not dirty:
            return []
        self._dirty = []
        outputs = []
        for conn in dirty:
            conn.dirty = False
            outbox = conn.outbox
            if outbox:
                data = outbox[0] if len(outbox) == 1 else b"".join(outbox)
                conn.outbox = []
                conn.outbox_bytes = 0
                conn.bytes_out += len(data)
                # For the heartbeat: this connection was not silent. A lone heartbeat does not
                # count, or each beat would push the next one a tick later.
                if data is not HEARTBEAT_FRAME:
                    conn.sent = True
            else:
                data = b""
            outputs.append(Output(conn.handle, data, conn.closing))
        return outputs

    def _write(self, conn: Connection, frame: bytes) -> None:
        conn.outbox.append(frame)
        conn.outbox_bytes += len(frame)
        conn.sent = True
        if not conn.dirty:
            conn.dirty = True
            self._dirty.append(conn)

    def _write_body(self, conn: Connection, body: Any) -> None:
        self._write(conn, encode_frame(body))

    # -- connection life --------------------------------------------------------------------------

    def set_identity(self, local: LocalIdentity) -> None:
        """Announce ``local`` in every later hello (the shell sets it once it listens)."""
        self.local = local

    def open(self, *, dialer: bool, now: float, uri: str | None = None) -> int:
        """Register a new connection and return its handle; a dialer's hello is queued at once.

        A listener past ``max_pending_handshakes`` gets a connection that is already closing
        with a ``busy`` reject.
        """
        handshake = Handshake(
            dialer=dialer, local=self.local, cookie=self._cookie, nonce=self._nonce_factory()
        )
        conn = Connection(
            self._next_handle, handshake, FrameDecoder(self.config.max_frame_size), now
        )
        self._next_handle += 1
        conn.deadline = now + self.config.handshake_timeout
        conn.dialed_uri = uri
        self.connections[conn.handle] = conn
        if self.closed:
            self._transition(
                conn,
                ConnectionState.CLOSED,
                reason="failed",
                error=HandshakeError("node is closing", code=RejectCode.CLOSING),
                redial=False,
            )
            return conn.handle
        if not dialer and self.pending_handshakes > self.config.max_pending_handshakes:
            logger.warning(
                "node %s: refusing a connection: %d handshakes already pending",
                self.local.node_id,
                self.config.max_pending_handshakes,
            )
            self._write_body(conn, reject_body(RejectCode.BUSY, "too many pending handshakes"))
            self._transition(conn, ConnectionState.CLOSED, reason="busy")
            return conn.handle
        for body in handshake.initiate():
            self._write_body(conn, body)
        return conn.handle

    def receive_data(self, handle: int, data: bytes | memoryview, now: float) -> None:
        """Feed bytes received on connection ``handle``.

        The complete frames before a malformed one are still handled, in order; then the
        connection fails.
        """
        conn = self.connections.get(handle)
        if conn is None or conn.state is ConnectionState.CLOSED:
            return
        conn.bytes_in += len(data)
        decoder = conn.decoder
        bodies = decoder.feed(data)
        conn.received = True
        if bodies:
            if conn.state is ConnectionState.UP:
                self._receive_up(conn, bodies)
            else:
                self._receive_bodies(conn, bodies, now)
        if decoder.error is not None:
            self._fail(conn, decoder.error)  # a no-op when the bodies closed it already

    def _receive_bodies(self, conn: Connection, bodies: list[Any], now: float) -> None:
        for index, body in enumerate(bodies):
            try:
                state = self._receive_setup(conn, body, now)
            except HandshakeError as exc:
                self._fail(conn, exc)
                return
            if state is ConnectionState.UP:
                self._receive_up(conn, bodies[index + 1 :])
                return
            if state is ConnectionState.CLOSED:
                return

    def connection_lost(self, handle: int, now: float) -> None:
        """The socket of ``handle`` closed (EOF, reset, or after a requested close)."""
        conn = self.connections.pop(handle, None)
        if conn is None:
            return
        if conn.state is ConnectionState.UP:
            self._close(conn, "lost")
        elif conn.state is not ConnectionState.CLOSED:
            error = HandshakeError(
                "connection closed during the handshake", code=RejectCode.PROTOCOL
            )
            self._fail(conn, error, send_reject=False)
        conn.closing = True

    def abort(self, handle: int, error: TransportError) -> None:
        """Fail ``handle`` for a reason found outside the core (a TLS error); nothing is sent."""
        conn = self.connections.get(handle)
        if conn is not None:
            self._fail(conn, error, send_reject=False)

    def set_paused(self, handle: int, paused: bool) -> None:
        """The shell reports its socket buffer crossing the high (True) or low (False) mark."""
        conn = self.connections.get(handle)
        if conn is not None:
            conn.paused = paused

    def tick(self, now: float) -> None:
        """Advance time: handshake deadlines, heartbeats, silent peers."""
        config = self.config
        for conn in list(self.connections.values()):
            if conn.state is ConnectionState.CLOSED:
                continue
            if conn.state is not ConnectionState.UP:
                if now >= conn.deadline:
                    self._fail(
                        conn,
                        HandshakeError(
                            f"handshake timed out after {config.handshake_timeout} s",
                            code=RejectCode.PROTOCOL,
                        ),
                    )
                continue
            if conn.received:
                conn.received = False
                conn.last_received = now
            elif now - conn.last_received >= config.heartbeat_timeout:
                logger.warning(
                    "node %s: peer %s silent for %.1f s, declaring it lost",
                    self.local.node_id,
                    conn.peer.node_id if conn.peer else "?",
                    now - conn.last_received,
                )
                self._close(conn, "lost")
                continue
            if conn.sent:
                conn.sent = False
                conn.last_sent = now
            elif now - conn.last_sent >= config.heartbeat_interval:
                self._write(conn, HEARTBEAT_FRAME)
                conn.sent = False
                conn.last_sent = now

    # -- intents --------------------------------------------------------------------------------

    def send(self, peer_id: str, frame: bytes) -> bool:
        """Hand an encoded data frame to ``peer_id``'s connection or reconnect queue."""
        conn = self.up.get(peer_id)
        if conn is not None:
            if conn.paused or conn.outbox_bytes > self._high_water:
                self._refused(peer_id)
                return False
            conn.outbox.append(frame)
            conn.outbox_bytes += len(frame)
            conn.packets_out += 1
            if not conn.dirty:
                conn.dirty = True
                self._dirty.append(conn)
            return True
        record = self._records.get(peer_id)
        if record is None or not record.kept:
            return False
        if (
            len(record.queue) >= self.config.queue_max_packets
            or record.queue_bytes + len(frame) > self.config.queue_max_bytes
        ):
            record.dropped += 1
            return False
        record.queue.append(frame)
        record.queue_bytes += len(frame)
        record.packets_out += 1
        return True

    def send_membership(self, peer_id: str, body: Any) -> bool:
        """Queue a membership control frame for ``peer_id``'s up connection.

        Control frames skip the high-water check (they are small and bounded by the
        membership's gossip size) and are never queued for a peer that is not connected.
        """
        conn = self.up.get(peer_id)
        if conn is None:
            return False
        self._write_body(conn, [TAG_MEMBERSHIP, body])
        return True

    def drop(self, peer_id: str, error: TransportError) -> None:
        """Fail ``peer_id``'s up connection because of ``error`` (logged; kept peers re-dial)."""
        conn = self.up.get(peer_id)
        if conn is not None:
            self._fail(conn, error)

    def _refused(self, peer_id: str) -> None:
        record = self._records.get(peer_id)
        if record is not None:
            record.dropped += 1

    def peer_stats(self) -> dict[str, PeerStats]:
        """Counters of every peer this node is connected to or keeps, by peer id."""
        up = self.up
        return {
            peer_id: record.stats(peer_id, up.get(peer_id))
            for peer_id, record in self._records.items()
        }

    def keep(self, peer_id: str, flag: bool, uri: str | None = None) -> bool:
        """Mark ``peer_id`` kept (re-dialed on loss) or not; ``uri`` updates where to dial.

        The peer hears of the change; a connection that neither side keeps any more is
        closed by the side that learns it (reason ``unwanted`` on both sides).

        Returns:
            False, and nothing changes, when asked to keep a peer whose uri is unknown.
        """
        record = self._records.get(peer_id)
        if record is None:
            if not flag:
                return True
            if uri is None:
                return False
            record = self._records[peer_id] = _PeerRecord(uri)
        if uri is not None:
            record.uri = uri
        changed = record.kept != flag
        record.kept = flag
        conn = self.up.get(peer_id)
        if conn is not None and changed:
            self._write_body(conn, [TAG_KEEP, flag])
        if not flag:
            record.queue.clear()
            record.queue_bytes = 0
            if conn is None:
                del self._records[peer_id]
        elif conn is None and changed and record.uri is not None:
            self._events.append(RedialNeeded(peer_id, record.uri))
        return True

    def disconnect(self, peer_id: str) -> bool:
        """Stop keeping ``peer_id`` and close its connection with a goodbye.

        Returns:
            True when a connection was up.
        """
        record = self._records.pop(peer_id, None)
        if record is not None:
            record.kept = False
        conn = self.up.get(peer_id)
        for other in list(self.connections.values()):
            if (
                other is not conn
                and other.state is not ConnectionState.CLOSED
                and other.handshake.peer_id == peer_id
            ):
                self._fail(other, HandshakeError("disconnected by the user", code="closing"))
        if conn is None:
            return False
        self._close(conn, "closed", send_goodbye=True)
        return True

    def close(self) -> None:
        """Say goodbye on every connection and close them all; no new connection is accepted."""
        self.closed = True
        for record in self._records.values():
            record.kept = False
        for conn in list(self.connections.values()):
            if conn.state is ConnectionState.UP:
                self._close(conn, "closed", send_goodbye=True)
            elif conn.state is not ConnectionState.CLOSED:
                self._fail(conn, HandshakeError("node is closing", code=RejectCode.CLOSING))
        self._records.clear()

    # -- receiving --------------------------------------------------------------------------------

    def _receive_up(self, conn: Connection, bodies: list[Any]) -> None:
        """Deliver data bodies as one batch per run between control frames."""
        peer = conn.peer
        assert peer is not None
        peer_id = peer.node_id
        packets: list[Any] = []
        append = packets.append
        for body in bodies:
            match body:
                case [_connection.TAG_DATA, packet]:
                    append(packet)
                    continue
            if packets:
                conn.packets_in += len(packets)
                self._events.append(PacketsReceived(peer_id, packets))
                packets = []
                append = packets.append
            self._receive_control(conn, body)
            if conn.state is ConnectionState.CLOSED:
                return
        if packets:
            conn.packets_in += len(packets)
            self._events.append(PacketsReceived(peer_id, packets))

    def _receive_control(self, conn: Connection, body: Any) -> None:
        """Dispatch one control frame of an up connection through :data:`_CONTROL`."""
        if type(body) is list and body and type(body[0]) is int:
            entry = _CONTROL.get(body[0])
            if entry is not None and len(body) == entry[0]:
                entry[1](self, conn, body)
                return
            self._fail(conn, ProtocolError(f"unknown control frame: {reprlib.repr(body)}"))
            return
        if type(body) is dict and body.get("op") == "reject":
            # The peer failed this connection before the decider's commit reached it (it
            # disconnected or closed meanwhile): it is gone, not misbehaving.
            self._on_late_reject(conn, body)
            return
        self._fail(conn, ProtocolError(f"malformed frame after handshake: {reprlib.repr(body)}"))

    def _on_heartbeat(self, conn: Connection, body: list[Any]) -> None:
        return  # receiving anything counts as life; see tick()

    def _on_keep(self, conn: Connection, body: list[Any]) -> None:
        keep = body[1]
        if type(keep) is not bool:
            self._fail(conn, ProtocolError(f"malformed keep frame: {reprlib.repr(body)}"))
            return
        conn.remote_keeps = keep
        peer = conn.peer
        assert peer is not None
        if not keep and not self.is_kept(peer.node_id):
            logger.info(
                "node %s: neither side keeps %s any more, closing it",
                self.local.node_id,
                peer.node_id,
            )
            self._close(conn, "unwanted", send_goodbye=True)

    def _on_goodbye(self, conn: Connection, body: list[Any]) -> None:
        self._close(conn, "unwanted" if body[1] == "unwanted" else "closed")

    def _on_membership(self, conn: Connection, body: list[Any]) -> None:
        peer = conn.peer
        assert peer is not None
        self._events.append(MembershipReceived(peer.node_id, body[1]))

    def _on_late_reject(self, conn: Connection, body: dict[str, Any]) -> None:
        error = error_for_reject(body)
        reason = "closed" if error.code == RejectCode.CLOSING else "lost"
        logger.info(
            "node %s: %s ended the connection before the commit arrived: %s",
            self.local.node_id,
            conn.peer.node_id if conn.peer else "?",
            error,
        )
        self._close(conn, reason)

    def _receive_setup(self, conn: Connection, body: Any, now: float) -> ConnectionState:
        """Handle one handshake/claim/commit body; return the connection's new state."""
        if conn.state is ConnectionState.HANDSHAKE:
            handshake = conn.handshake
            for reply in handshake.receive(body):
                self._write_body(conn, reply)
            if handshake.state is HandshakeState.AUTHENTICATED:
                self._authenticated(conn)
            return conn.state
        if not isinstance(body, dict):
            raise ProtocolError(f"expected a claim/commit map, got {type(body).__name__}")
        op = body.get("op")
        if op == "reject":
            error = error_for_reject(body)
            if error.code == RejectCode.DUPLICATE:
                self._transition(conn, ConnectionState.CLOSED, reason="duplicate")
                return conn.state
            raise error
        if conn.state is ConnectionState.AWAIT_CLAIM and op == "claim":
            self._on_claim(conn, body)
            return conn.state
        if conn.state is ConnectionState.AWAIT_COMMIT and op == "commit":
            self._on_commit(conn, body)
            return conn.state
        raise ProtocolError(f"unexpected {reprlib.repr(op)} in state {conn.state.name}")

    def _authenticated(self, conn: Connection) -> None:
        peer = conn.handshake.peer
        assert peer is not None
        conn.peer = peer
        retired = self._retired.get(peer.node_id)
        if retired is not None and peer.incarnation in retired:
            raise HandshakeError("stale incarnation", code=RejectCode.STALE)
        if self.local.node_id < peer.node_id:
            self._transition(conn, ConnectionState.AWAIT_CLAIM)
            return
        self._claim_seq += 1
        conn.claim_seq = self._claim_seq
        alive = [
            other.handshake.connection_id
            for other in self.connections.values()
            if other is not conn
            and other.state is not ConnectionState.CLOSED
            and other.handshake.peer_id == peer.node_id
            and other.handshake.connection_id is not None
        ]
        self._write_body(
            conn,
            {
                "op": "claim",
                "seq": conn.claim_seq,
                "alive": alive,
                "keep": self.is_kept(peer.node_id),
            },
        )
        self._transition(conn, ConnectionState.AWAIT_COMMIT)

    def _on_claim(self, conn: Connection, claim: dict[str, Any]) -> None:
        seq = claim.get("seq")
        alive = claim.get("alive")
        keep = claim.get("keep")
        if (
            type(seq) is not int
            or not isinstance(alive, list)
            or not all(isinstance(item, bytes) for item in alive)
            or type(keep) is not bool
        ):
            raise ProtocolError("malformed claim")
        peer = conn.peer
        assert peer is not None
        conn.claim_seq = seq
        conn.remote_keeps = keep
        old = self.up.get(peer.node_id)
        committed = None
        if old is not None:
            assert old.peer is not None
            committed = Committed(old.peer.incarnation, old.claim_seq, old.peer.connection_id)
        verdict = judge_claim(committed, Claim(peer.incarnation, seq, alive))
        if verdict is Verdict.DUPLICATE:
            self._write_body(conn, reject_body(RejectCode.DUPLICATE, "a connection is already up"))
            self._transition(conn, ConnectionState.CLOSED, reason="duplicate")
            return
        if old is not None:
            self._replace(old, restarted=verdict is Verdict.REPLACE_RESTARTED)
        self._write_body(conn, {"op": "commit", "keep": self.is_kept(peer.node_id)})
        self._transition(conn, ConnectionState.UP)

    def _on_commit(self, conn: Connection, commit: dict[str, Any]) -> None:
        keep = commit.get("keep")
        if type(keep) is not bool:
            raise ProtocolError("malformed commit")
        peer = conn.peer
        assert peer is not None
        conn.remote_keeps = keep
        old = self.up.get(peer.node_id)
        if old is not None:
            assert old.peer is not None
            self._replace(old, restarted=old.peer.incarnation != peer.incarnation)
        self._transition(conn, ConnectionState.UP)

    def _replace(self, old: Connection, *, restarted: bool) -> None:
        """End the up connection ``old`` that a newly committed one replaces."""
        assert old.peer is not None
        if restarted:
            self._retire(old.peer.node_id, old.peer.incarnation)
            self._close(old, "restarted", send_goodbye=True, redial=False)
        else:
            self._close(old, "lost", redial=False)

    def _retire(self, peer_id: str, incarnation: int) -> None:
        retired = self._retired.setdefault(peer_id, deque(maxlen=_RETIRED_INCARNATIONS))
        retired.append(incarnation)

    # -- the one place where a connection changes state --------------------------------------------

    def _transition(
        self,
        conn: Connection,
        state: ConnectionState,
        *,
        reason: str | None = None,
        error: TransportError | None = None,
        redial: bool = True,
    ) -> None:
        """Move ``conn`` to ``state`` if :data:`TRANSITIONS` allows it, with its clean-up.

        Entering UP: the peer table lists it, its reconnect queue is flushed, ``connect``
        fires. Entering CLOSED: the socket is asked to close; an up connection leaves the
        peer table and fires ``disconnect`` (``reason``); a dialed one that never got up
        reports its outcome (``error``, None for a duplicate), and a failed dial of a kept
        peer asks for the next attempt (unless ``redial`` is False).
        """
        previous = conn.state
        if state not in TRANSITIONS[previous]:
            raise AssertionError(f"{conn!r}: no transition from {previous.name} to {state.name}")
        conn.state = state
        if state is ConnectionState.UP:
            self._entered_up(conn)
        elif state is ConnectionState.CLOSED:
            conn.close_reason = reason
            conn.closing = True
            if not conn.dirty:
                conn.dirty = True
                self._dirty.append(conn)
            if previous is ConnectionState.UP:
                self._left_up(conn, reason or "closed", redial)
            else:
                self._settle(conn, error, committed=False)
                if error is not None and conn.dialer and redial:
                    # Before the peer's hello arrives only the dialed uri tells which peer a
                    # failed re-dial was for.
                    peer_id = conn.handshake.peer_id or self._kept_peer_at(conn.dialed_uri)
                    if peer_id is not None and peer_id not in self.up:
                        self._redial_if_kept(peer_id)

    def _entered_up(self, conn: Connection) -> None:
        peer = conn.peer
        assert peer is not None
        self.up[peer.node_id] = conn
        record = self._records.get(peer.node_id)
        if record is None:
            record = self._records[peer.node_id] = _PeerRecord(None)
        if conn.dialed_uri is not None:
            record.uri = conn.dialed_uri
        elif record.uri is None:
            record.uri = peer.uri
        if record.ups:
            record.reconnects += 1
        record.ups += 1
        # Packets queued while the peer was away go first, in the order they were sent.
        while record.queue:
            self._write(conn, record.queue.popleft())
        record.queue_bytes = 0
        self._settle(conn, None, committed=True)
        # The pair's other dials still pending are settled by this one if dedup rejects them,
        # even when it ends before their reject arrives.
        for other in self.connections.values():
            if other.dialer and not other.settled and other.handshake.peer_id == peer.node_id:
                other.pair_up = True
        self._events.append(PeerConnected(peer.node_id, peer.uri))

    def _left_up(self, conn: Connection, reason: str, redial: bool) -> None:
        peer = conn.peer
        assert peer is not None
        if self.up.get(peer.node_id) is not conn:
            return
        del self.up[peer.node_id]
        last_heard = None if conn.received else conn.last_received
        self._events.append(PeerDisconnected(peer.node_id, reason, last_heard))
        if redial:
            self._redial_if_kept(peer.node_id)
        record = self._records.get(peer.node_id)
        if record is not None:
            record.add_counters(conn)
            if not record.kept:
                del self._records[peer.node_id]

    # -- ending -----------------------------------------------------------------------------------

    def _settle(self, conn: Connection, error: TransportError | None, *, committed: bool) -> None:
        if conn.dialer and not conn.settled:
            conn.settled = True
            peer_id = conn.handshake.peer_id
            pair_up = error is None and not committed and (conn.pair_up or peer_id in self.up)
            self._events.append(DialOutcome(conn.handle, peer_id, error, committed, pair_up))

    def _fail(self, conn: Connection, error: TransportError, *, send_reject: bool = True) -> None:
        """End ``conn`` because of ``error``, logging it; the node carries on."""
        if conn.state is ConnectionState.UP:
            logger.warning(
                "node %s: closing connection to %s: %s",
                self.local.node_id,
                conn.peer.node_id if conn.peer else "?",
                error,
            )
            self._close(conn, "lost")
            return
        if conn.state is ConnectionState.CLOSED:
            return
        # Ending a handshake on purpose (this node's user disconnected or closed) is no warning.
        deliberate = (
            isinstance(error, HandshakeError)
            and error.code == RejectCode.CLOSING
            and not error.remote
        )
        logger.log(
            logging.INFO if deliberate else logging.WARNING,
            "node %s: handshake failed on %r: %s",
            self.local.node_id,
            conn,
            error,
        )
        if send_reject and not (isinstance(error, HandshakeError) and error.remote):
            code = error.code if isinstance(error, HandshakeError) else RejectCode.PROTOCOL
            self._write_body(conn, reject_body(code, str(error)))
        self._transition(conn, ConnectionState.CLOSED, reason="failed", error=error)

    def _close(
        self, conn: Connection, reason: str, *, send_goodbye: bool = False, redial: bool = True
    ) -> None:
        """End an up connection (firing ``PeerDisconnected`` once), or a half-set-up one."""
        if conn.state is ConnectionState.CLOSED:
            return
        if send_goodbye:
            self._write_body(conn, [TAG_GOODBYE, reason])
        self._transition(conn, ConnectionState.CLOSED, reason=reason, redial=redial)

    def _kept_peer_at(self, uri: str | None) -> str | None:
        for peer_id, record in self._records.items():
            if record.kept and record.uri == uri and uri is not None:
                return peer_id
        return None

    def _redial_if_kept(self, peer_id: str) -> None:
        record = self._records.get(peer_id)
        if record is not None and record.kept and record.uri is not None and not self.closed:
            self._events.append(RedialNeeded(peer_id, record.uri))


_ControlHandler = Callable[[NodeCore, Connection, list[Any]], None]
_CONTROL: dict[int, tuple[int, _ControlHandler]] = {
    TAG_HEARTBEAT: (1, NodeCore._on_heartbeat),
    TAG_KEEP: (2, NodeCore._on_keep),
    TAG_GOODBYE: (2, NodeCore._on_goodbye),
    TAG_MEMBERSHIP: (2, NodeCore._on_membership),
}
"""Control frames of an up connection: tag -> (frame length, handler). Extend it here."""
