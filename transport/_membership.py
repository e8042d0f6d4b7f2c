"""Sans-I/O cluster membership: gossiped member list and failure detection over the mesh.

:class:`Membership` is the whole protocol of one node's view of the cluster, without sockets,
clocks or randomness of its own: the caller passes the time into every call and a seeded
``random.Random`` at construction. It is fed facts and bodies, and queues actions:

* facts in: :meth:`Membership.connection_up` / :meth:`Membership.connection_down` (the mesh's
  authenticated connections), :meth:`Membership.receive` (a membership control body from a
  peer), :meth:`Membership.tick` (time passes), :meth:`Membership.set_metadata`,
  :meth:`Membership.leave`;
* actions out, drained with :meth:`Membership.take_actions`: :class:`SendControl` (send this
  body to that peer as a membership control frame), :class:`KeepPeer` (keep a connection to
  that member at that uri: dial it, re-dial it), :class:`ForgetPeer` (stop keeping it),
  :class:`MemberUp`, :class:`MemberDown`, :class:`MemberUpdated`.

The algorithm (the docs' cluster guide states it with its timing bounds):

* **State.** One entry per member id: ``(uri, incarnation, version, status, metadata)``.
  ``incarnation`` is the transport's random boot number; ``version`` is a counter that the
  member alone raises (SWIM's incarnation number): for a metadata change, to refute a claim
  that it is down, and to supersede an entry of its own id left by an earlier incarnation.
  Entries are ordered by ``(version, status rank, incarnation)``; the higher one wins, so a
  ``down`` declared by another node at the member's current version beats ``up`` until the
  member refutes it with a higher version.
* **Dissemination.** A node sends each change it makes (its own entry, or a member it declared
  down) to every member it is connected to; a fresh connection starts with a ``hello`` (own
  entry and a digest of every entry) answered with the entries the other side lacks; and every
  ``gossip_interval`` a node sends a hash of its view to one random member, which answers with
  its digest when the hashes differ (anti-entropy: it repairs what the pushes missed, e.g.
  across a broken link). Idle cost: one small ``sync`` frame per node per interval.
* **Failure detection.** The mesh's connections carry heartbeats, so a lost connection is the
  direct observation. A member this node cannot reach is declared down only when (1) nothing
  was heard from it for ``down_after`` seconds (for a member never reached, counted from the
  first failed dial, :meth:`Membership.dial_failed`: one waiting its turn among a large join's
  dials is not silent) and (2) an indirect check fails: up to
  ``max_checks`` members this node is connected to are asked whether they are connected to it,
  and none says yes within ``check_timeout``. If one says yes, the member stays up (seen as
  ``unreachable`` here) and the check is repeated after ``check_timeout``. A node that hears
  ``X is down`` gossip while it is itself connected to X does not apply it, and forwards it to
  X, which refutes it. So one broken link between two members makes nobody declare either down.
* **Leave and restart.** ``leave()`` sends the own entry with status ``left`` to every
  connected member: ``member_down(left)`` everywhere at once. A connection from a member with
  a new incarnation is direct proof that the old one is gone: its entry becomes ``restarted``;
  the new incarnation learns its old entry from the first hello answer and supersedes it with a
  higher version, which brings ``member_up`` back.
* **Tombstones.** Entries that are not up are kept for ``forget_after`` seconds (and the peers
  re-dialed, so a healed partition reconnects), then forgotten. They are never resurrected into
  a view that has forgotten them or never had them: digests and hashes skip them.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal, NamedTuple

from .errors import ProtocolError

__all__ = [
    "TAG_MEMBERSHIP",
    "Action",
    "ForgetPeer",
    "KeepPeer",
    "Member",
    "MemberDown",
    "MemberStatus",
    "MemberUp",
    "MemberUpdated",
    "Membership",
    "MembershipConfig",
    "SendControl",
]

logger = logging.getLogger("transport")

TAG_MEMBERSHIP = 4
"""Session-frame tag of membership control frames: ``[4, body]``."""

_MAX_ID = 255
_MAX_URI = 1024
_MAX_U64 = (1 << 64) - 1
_MAX_VERSION = (1 << 63) - 1
# Bytes of framing and ids around each entry when chunking outgoing gossip.
_ENTRY_OVERHEAD = 64


class MemberStatus(IntEnum):
    """Gossiped status of a member's entry; the value is its rank for equal versions."""

    UP = 0
    DOWN = 1  # declared down by another node after a failed check
    RESTARTED = 2  # superseded by a new incarnation of the same id
    LEFT = 3  # the member left with close()


Reason = Literal["unreachable", "restarted", "left"]
"""Why a member left a view."""

_REASONS: dict[MemberStatus, Reason] = {
    MemberStatus.DOWN: "unreachable",
    MemberStatus.RESTARTED: "restarted",
    MemberStatus.LEFT: "left",
}


@dataclass(frozen=True, slots=True)
class MembershipConfig:
    """Timings (seconds) and limits of the membership protocol.

    Attributes:
        down_after: silence after which an unreachable member is checked through others.
        check_timeout: how long the indirect check waits for answers; also the pause before
            repeating a check that found the member alive elsewhere.
        max_checks: most members asked in one indirect check.
        gossip_interval: period of the anti-entropy ``sync`` to one random member.
        max_members: most members (up entries) a view holds; more are refused with a warning.
        max_metadata: largest metadata blob per member, in bytes.
        max_gossip_bytes: outgoing entries are split into messages of about this size.
        forget_after: how long entries of members that are not up are kept (and re-dialed).
    """

    down_after: float = 6.0
    check_timeout: float = 1.0
    max_checks: int = 16
    gossip_interval: float = 1.0
    max_members: int = 1000
    max_metadata: int = 64 * 1024
    max_gossip_bytes: int = 256 * 1024
    forget_after: float = 300.0


@dataclass(frozen=True, slots=True)
class Member:
    """One member of the cluster as a node sees it.

    Attributes:
        id: the member's node id.
        uri: where it listens (its advertised uri).
        incarnation: its random boot number (changes at every start).
        status: ``"up"`` when this node is connected to it (or it is this node),
            ``"unreachable"`` when this node is not but other members are.
        metadata: the opaque blob the member publishes (see ``set_metadata``).
    """

    id: str
    uri: str
    incarnation: int
    status: Literal["up", "unreachable"] = "up"
    metadata: bytes = b""


class SendControl(NamedTuple):
    """Send ``body`` to ``peer_id`` as a membership control frame."""

    peer_id: str
    body: list[Any]


class KeepPeer(NamedTuple):
    """Keep a connection to ``peer_id`` at ``uri``: dial it now and re-dial it when it drops."""

    peer_id: str
    uri: str


class ForgetPeer(NamedTuple):
    """Stop keeping a connection to ``peer_id`` (it left, or was forgotten)."""

    peer_id: str


class MemberUp(NamedTuple):
    """``member`` joined this node's view of the cluster."""

    member: Member


class MemberDown(NamedTuple):
    """``member`` left this node's view; ``detected`` is True when this node declared it."""

    member: Member
    reason: Reason
    detected: bool = False


class MemberUpdated(NamedTuple):
    """``member`` published new metadata (or a new uri)."""

    member: Member


Action = SendControl | KeepPeer | ForgetPeer | MemberUp | MemberDown | MemberUpdated


@dataclass(slots=True)
class _Entry:
    node_id: str
    uri: str
    incarnation: int
    version: int
    status: MemberStatus
    metadata: bytes

    def key(self) -> tuple[int, int, int]:
        return (self.version, int(self.status), self.incarnation)

    def wire(self) -> list[Any]:
        return [
            self.node_id,
            self.uri,
            self.incarnation,
            self.version,
            int(self.status),
            self.metadata,
        ]


@dataclass(slots=True)
class _Check:
    seq: int
    waiting: set[str]
    deadline: float


@dataclass(slots=True)
class _Local:
    """What this node alone knows of a member: its connection and detection timers."""

    connected_incarnation: int | None = None
    last_heard: float = 0.0
    announced: bool = False
    check: _Check | None = None
    next_check: float = 0.0
    since: float = 0.0  # when the entry last changed status (tombstone age)
    keep_at: float | None = None  # when to ask for a connection (the higher id waits)
    reached: bool = False  # connected to the member's current incarnation at some point
    dial_failed: bool = False  # a dial to its current incarnation failed


@dataclass(slots=True)
class _Stats:
    sent_messages: int = 0
    received_messages: int = 0
    refutations: int = 0
    declared_down: int = 0
    checks_started: int = 0
    checks_alive: int = 0  # checks that found the member heard by another member
    rejected: dict[str, int] = field(default_factory=dict)


class Membership:
    """One node's view of the cluster, driven by facts and times passed in.

    Args:
        node_id: this node's id.
        incarnation: this node's incarnation (the transport's random boot number).
        uri: this node's advertised uri.
        config: timings and limits.
        rng: the source of randomness (seed it in tests).
        now: the current time.
        metadata: the initial metadata blob this node publishes.
        uri_check: returns False for a gossiped uri that must not be dialled; such entries
            are refused.
    """

    def __init__(
        self,
        node_id: str,
        incarnation: int,
        uri: str,
        config: MembershipConfig,
        rng: random.Random,
        now: float,
        *,
        metadata: bytes = b"",
        uri_check: Callable[[str], bool] | None = None,
    ) -> None:
        self.node_id = node_id
        self.incarnation = incarnation
        self.config = config
        self._rng = rng
        self._uri_check = uri_check
        self._self = _Entry(node_id, uri, incarnation, 0, MemberStatus.UP, metadata)
        self._entries: dict[str, _Entry] = {node_id: self._self}
        self._local: dict[str, _Local] = {}
        self._connected: dict[str, int] = {}  # peer id -> incarnation of its up connection
        self._speaks: set[str] = set()  # connected peers that sent their hello
        self._actions: list[Action] = []
        self._next_sync = now + rng.uniform(0, config.gossip_interval)
        self._check_seq = 0
        self._hash: bytes | None = None
        self._announced = 0
        self.left = False
        self.stats = _Stats()

    # -- inspection -------------------------------------------------------------------------------

    @property
    def members(self) -> dict[str, Member]:
        """Members this node has announced with ``member_up`` (and this node), by id."""
        view = {self.node_id: self._member(self._self)}
        for node_id, local in self._local.items():
            entry = self._entries.get(node_id)
            if local.announced and entry is not None and entry.status is MemberStatus.UP:
                view[node_id] = self._member(entry)
        return view

    @property
    def member_count(self) -> int:
        """``len(members)``, without building the dict."""
        return self._announced + 1

    @property
    def version(self) -> int:
        """The version of this node's own entry."""
        return self._self.version

    @property
    def metadata(self) -> bytes:
        """The metadata blob this node publishes."""
        return self._self.metadata

    def entry_status(self, node_id: str) -> MemberStatus | None:
        """The gossiped status of ``node_id``'s entry, or None when there is none."""
        entry = self._entries.get(node_id)
        return None if entry is None else entry.status

    def is_member(self, node_id: str) -> bool:
        """True when ``node_id`` has an up entry here (announced or not yet)."""
        entry = self._entries.get(node_id)
        return entry is not None and entry.status is MemberStatus.UP

    def view_hash(self) -> bytes:
        """A digest of the up entries, equal on two nodes that agree on the member list."""
        if self._hash is None:
            hasher = hashlib.blake2b(digest_size=8)
            for node_id in sorted(self._entries):
                entry = self._entries[node_id]
                if entry.status is MemberStatus.UP:
                    hasher.update(
                        f"{node_id}\0{entry.incarnation}\0{entry.version}\0".encode(
                            "utf-8", "surrogatepass"
                        )
                    )
            self._hash = hasher.digest()
        return self._hash

    def take_actions(self) -> list[Action]:
        """Return and forget the actions queued since the last call."""
        actions = self._actions
        self._actions = []
        return actions

    # -- facts in ---------------------------------------------------------------------------------

    def connection_up(self, peer_id: str, incarnation: int, now: float) -> None:
        """An authenticated connection to ``peer_id`` (at ``incarnation``) is up."""
        if self.left or peer_id == self.node_id:
            return
        self._connected[peer_id] = incarnation
        self._speaks.discard(peer_id)
        self._send(peer_id, ["hello", self._self.wire(), self.view_hash()])
        entry = self._entries.get(peer_id)
        if entry is None:
            return
        local = self._local_for(peer_id, now)
        local.last_heard = now
        if local.keep_at is not None:
            local.keep_at = None
            self._actions.append(KeepPeer(peer_id, entry.uri))
        if entry.incarnation != incarnation:
            if entry.status is MemberStatus.UP:
                # The transport authenticated a new incarnation: the old one is gone.
                self._declare(entry, MemberStatus.RESTARTED, now, detected=True)
            return
        local.connected_incarnation = incarnation
        local.reached = True
        local.check = None
        if entry.status is MemberStatus.UP and not local.announced:
            self._announce(entry, local)

    def connection_down(self, peer_id: str, now: float, last_heard: float | None = None) -> None:
        """The connection to ``peer_id`` ended; ``last_heard`` is when it last received."""
        self._connected.pop(peer_id, None)
        self._speaks.discard(peer_id)
        local = self._local.get(peer_id)
        if local is None:
            return
        if local.connected_incarnation is not None:
            local.connected_incarnation = None
            local.last_heard = now if last_heard is None else min(last_heard, now)
            local.next_check = 0.0

    def receive(self, peer_id: str, body: Any, now: float) -> None:
        """Handle one membership control body from the connected peer ``peer_id``.

        The whole body is validated before any of it is applied.

        Raises:
            ProtocolError: the body is malformed or breaks a limit; close that connection.
        """
        if peer_id not in self._connected or self.left:
            return  # gossip from a connection that is not (or no longer) up is ignored
        self.stats.received_messages += 1
        if type(body) is not list or not body or type(body[0]) is not str:
            raise ProtocolError("malformed membership message: expected [op, ...]")
        op = body[0]
        if op == "hello" and len(body) == 3 and type(body[2]) is bytes:
            own = self._parse_entry(body[1])
            if own.node_id != peer_id or own.incarnation != self._connected[peer_id]:
                raise ProtocolError(
                    f"hello from {peer_id!r} carries the entry of {own.node_id!r}/{own.incarnation}"
                )
            self._speaks.add(peer_id)
            known = self._entries.get(peer_id)
            fresh = known is None or known.key() < own.key()
            self._merge(peer_id, [own], now)
            if fresh and self._entries.get(peer_id) is not known:
                # First-hand news of a member (a newcomer, a new incarnation): introduce it to
                # everyone here at once instead of waiting for anti-entropy.
                self._broadcast([self._entries[peer_id]], exclude=peer_id)
            if body[2] != self.view_hash():
                self._send(peer_id, ["digest", self._digest()])
        elif op == "sync" and len(body) == 2 and type(body[1]) is bytes:
            if body[1] != self.view_hash():
                self._send(peer_id, ["digest", self._digest()])
        elif op == "digest" and len(body) == 2:
            self._answer_digest(peer_id, self._parse_digest(body[1]))
        elif op == "entries" and len(body) == 2:
            self._merge(peer_id, self._parse_entries(body[1]), now)
        elif op == "want" and len(body) == 2:
            wanted = self._parse_ids(body[1])
            self._send_entries(peer_id, (self._entries[i] for i in wanted if i in self._entries))
        elif op == "check" and len(body) == 3 and type(body[1]) is int:
            target = self._parse_id(body[2])
            heard = target == self.node_id or self._hears(target)
            self._send(peer_id, ["check_ack", body[1], target, heard])
        elif (
            op == "check_ack" and len(body) == 4 and type(body[1]) is int and type(body[3]) is bool
        ):
            self._on_check_ack(peer_id, body[1], self._parse_id(body[2]), body[3], now)
        else:
            raise ProtocolError(f"unknown or malformed membership message {op!r}")

    def tick(self, now: float) -> None:
        """Advance time: anti-entropy, unreachability checks, tombstone expiry."""
        if self.left:
            return
        config = self.config
        if now >= self._next_sync:
            self._next_sync = now + config.gossip_interval * self._rng.uniform(0.75, 1.25)
            partners = sorted(self._speaks)
            if partners:
                self._send(self._rng.choice(partners), ["sync", self.view_hash()])
        connected = self._connected
        for node_id, local in list(self._local.items()):
            if local.keep_at is not None and now >= local.keep_at:
                entry = self._entries.get(node_id)
                local.keep_at = None
                if entry is not None and entry.status is not MemberStatus.LEFT:
                    self._actions.append(KeepPeer(node_id, entry.uri))
            if local.connected_incarnation is not None and node_id in connected:
                continue
            entry = self._entries.get(node_id)
            if entry is None:
                continue
            if entry.status is not MemberStatus.UP:
                if now - local.since >= config.forget_after:
                    self._forget(node_id)
                continue
            if local.connected_incarnation is not None:
                continue
            check = local.check
            if check is not None:
                if now >= check.deadline:
                    self._declare(entry, MemberStatus.DOWN, now, detected=True)
                continue
            if not (local.reached or local.dial_failed):
                # Not heard yet because not dialled yet (its turn among this node's dials, a
                # large join): silence counts once a dial failed or a connection was lost.
                continue
            if now - local.last_heard >= config.down_after and now >= local.next_check:
                self._start_check(entry, local, now)

    def dial_failed(self, peer_id: str, now: float) -> None:
        """A dial of this node to member ``peer_id`` failed (refused, unreachable, timed out)."""
        local = self._local.get(peer_id)
        if local is not None and not local.reached and not local.dial_failed:
            # The silence of a member never reached counts from here: down_after later, if
            # still unreached, the other members are asked about it.
            local.dial_failed = True
            local.last_heard = now

    # -- intents ----------------------------------------------------------------------------------

    def set_metadata(self, metadata: bytes, now: float) -> None:
        """Publish a new metadata blob for this node (gossiped to every member).

        Raises:
            ValueError: ``metadata`` is larger than ``max_metadata``.
        """
        if len(metadata) > self.config.max_metadata:
            raise ValueError(
                f"metadata of {len(metadata)} bytes exceeds max_metadata={self.config.max_metadata}"
            )
        if metadata == self._self.metadata or self.left:
            return
        self._self.metadata = bytes(metadata)
        self._bump_self(self._self.version + 1)

    def leave(self) -> None:
        """Tell every connected member that this node leaves; the view stops changing."""
        if self.left:
            return
        self._self.status = MemberStatus.LEFT
        self._self.version += 1
        self._hash = None
        for peer_id in sorted(self._connected):
            self._send(peer_id, ["entries", [self._self.wire()]])
        self.left = True

    # -- detection --------------------------------------------------------------------------------

    def _hears(self, node_id: str) -> bool:
        entry = self._entries.get(node_id)
        return (
            entry is not None
            and entry.status is MemberStatus.UP
            and self._connected.get(node_id) == entry.incarnation
        )

    def _start_check(self, entry: _Entry, local: _Local, now: float) -> None:
        helpers = [
            peer_id
            for peer_id in sorted(self._speaks)
            if peer_id != entry.node_id and self._hears(peer_id)
        ]
        if not helpers:
            self._declare(entry, MemberStatus.DOWN, now, detected=True)
            return
        if len(helpers) > self.config.max_checks:
            helpers = self._rng.sample(helpers, self.config.max_checks)
        self._check_seq += 1
        self.stats.checks_started += 1
        local.check = _Check(self._check_seq, set(helpers), now + self.config.check_timeout)
        logger.info(
            "node %s: %s silent for %.1f s; asking %d member(s) whether they hear it",
            self.node_id,
            entry.node_id,
            now - local.last_heard,
            len(helpers),
        )
        for peer_id in helpers:
            self._send(peer_id, ["check", self._check_seq, entry.node_id])

    def _on_check_ack(self, peer_id: str, seq: int, target: str, heard: bool, now: float) -> None:
        local = self._local.get(target)
        entry = self._entries.get(target)
        if local is None or entry is None or local.check is None or local.check.seq != seq:
            return  # late or unsolicited
        check = local.check
        if peer_id not in check.waiting:
            return
        check.waiting.discard(peer_id)
        if heard:
            self.stats.checks_alive += 1
            local.check = None
            local.next_check = now + self.config.check_timeout
            if not local.announced:
                self._announce(entry, local)
            return
        if not check.waiting:
            self._declare(entry, MemberStatus.DOWN, now, detected=True)

    def _declare(self, entry: _Entry, status: MemberStatus, now: float, *, detected: bool) -> None:
        """This node's own finding that ``entry`` is no longer up: apply and tell everyone."""
        if status is MemberStatus.DOWN:
            self.stats.declared_down += 1
            logger.warning(
                "node %s: declaring %s down: unreachable and no member hears it",
                self.node_id,
                entry.node_id,
            )
        new = _Entry(
            entry.node_id, entry.uri, entry.incarnation, entry.version, status, entry.metadata
        )
        self._apply(new, now, detected=detected)
        self._broadcast([new], exclude=entry.node_id if status is MemberStatus.DOWN else None)

    # -- merging ----------------------------------------------------------------------------------

    def _merge(self, sender: str, entries: list[_Entry], now: float) -> None:
        stale: list[_Entry] = []
        for incoming in entries:
            node_id = incoming.node_id
            if node_id == self.node_id:
                self._about_self(incoming)
                continue
            mine = self._entries.get(node_id)
            if mine is None:
                if incoming.status is not MemberStatus.UP:
                    continue  # no tombstone is learned from others: it would never expire
                if (
                    len(self._entries) >= self.config.max_members
                    and self._up_count() >= self.config.max_members
                ):
                    self._reject("max_members", node_id)
                    continue
                self._apply(incoming, now, detected=False)
                continue
            if incoming.key() > mine.key():
                if self._hears(node_id) and not (
                    incoming.incarnation == mine.incarnation
                    and incoming.status is not MemberStatus.DOWN
                ):
                    # We hear this incarnation ourselves: a claim that it is down, or an entry
                    # of another incarnation, is wrong or stale. Let the member supersede it.
                    if node_id in self._speaks:
                        self._send(node_id, ["entries", [incoming.wire()]])
                    continue
                self._apply(incoming, now, detected=False)
            elif mine.key() > incoming.key():
                stale.append(mine)  # the sender is behind: bring it up to date
        if stale:
            self._send_entries(sender, stale)

    def _about_self(self, incoming: _Entry) -> None:
        mine = self._self
        if self.left:
            return
        if incoming.incarnation == mine.incarnation and incoming.key() <= mine.key():
            return
        if incoming.incarnation != mine.incarnation and incoming.version < mine.version:
            return
        # Someone holds an entry of our id that is not (or beats) our own: an accusation, or
        # the entry of an earlier incarnation. Supersede it with a higher version.
        self.stats.refutations += 1
        logger.info(
            "node %s: refuting %s entry of itself (incarnation %d, version %d)",
            self.node_id,
            MemberStatus(incoming.status).name.lower(),
            incoming.incarnation,
            incoming.version,
        )
        self._bump_self(max(incoming.version, mine.version) + 1)

    def _bump_self(self, version: int) -> None:
        self._self.version = min(version, _MAX_VERSION)
        self._hash = None
        self._broadcast([self._self])

    def _apply(self, new: _Entry, now: float, *, detected: bool) -> None:
        """Install ``new`` as the entry of its id and emit what changed."""
        node_id = new.node_id
        old = self._entries.get(node_id)
        self._entries[node_id] = new
        self._hash = None
        local = self._local_for(node_id, now)
        if old is None or old.status is not new.status:
            local.since = now
        if old is not None and old.status is MemberStatus.UP and local.announced:
            if new.status is not MemberStatus.UP:
                local.announced = False
                self._announced -= 1
                self._actions.append(MemberDown(self._member(old), _REASONS[new.status], detected))
            elif new.incarnation != old.incarnation:
                local.announced = False
                self._announced -= 1
                self._actions.append(MemberDown(self._member(old), "restarted", detected))
        if new.status is MemberStatus.LEFT:
            local.check = None
            local.keep_at = None
            self._actions.append(ForgetPeer(node_id))
            return
        if new.status is not MemberStatus.UP:
            local.check = None
            return
        if old is None or old.status is not MemberStatus.UP or old.incarnation != new.incarnation:
            # A new life of this member: detection starts from now.
            local.last_heard = now
            local.check = None
            local.next_check = 0.0
            local.reached = local.dial_failed = False
        if old is None or old.uri != new.uri or old.status is not MemberStatus.UP:
            if node_id in self._connected or self.node_id < node_id:
                self._actions.append(KeepPeer(node_id, new.uri))
            else:
                # Both ends learn of each other at about the same time; the lower id dials
                # first, so that most pairs open one connection instead of two.
                local.keep_at = now + self.config.gossip_interval
        connected = self._connected.get(node_id)
        if connected == new.incarnation:
            local.connected_incarnation = connected
            local.reached = True
            local.last_heard = now
            if not local.announced:
                self._announce(new, local)
            elif old is not None and (old.metadata != new.metadata or old.uri != new.uri):
                self._actions.append(MemberUpdated(self._member(new)))
        else:
            local.connected_incarnation = None
            if (
                local.announced
                and old is not None
                and (old.metadata != new.metadata or old.uri != new.uri)
            ):
                self._actions.append(MemberUpdated(self._member(new)))

    def _announce(self, entry: _Entry, local: _Local) -> None:
        local.announced = True
        self._announced += 1
        self._actions.append(MemberUp(self._member(entry)))

    def _forget(self, node_id: str) -> None:
        self._entries.pop(node_id, None)
        self._local.pop(node_id, None)
        self._hash = None
        self._actions.append(ForgetPeer(node_id))

    def _local_for(self, node_id: str, now: float) -> _Local:
        local = self._local.get(node_id)
        if local is None:
            local = self._local[node_id] = _Local(last_heard=now, since=now)
        return local

    def _member(self, entry: _Entry) -> Member:
        status: Literal["up", "unreachable"] = "up"
        if entry.node_id != self.node_id and self._connected.get(entry.node_id) != (
            entry.incarnation
        ):
            status = "unreachable"
        return Member(entry.node_id, entry.uri, entry.incarnation, status, entry.metadata)

    def _up_count(self) -> int:
        return sum(1 for entry in self._entries.values() if entry.status is MemberStatus.UP)

    # -- digests ----------------------------------------------------------------------------------

    def _digest(self) -> list[list[Any]]:
        return [
            [entry.node_id, entry.incarnation, entry.version, int(entry.status)]
            for entry in self._entries.values()
        ]

    def _answer_digest(self, peer_id: str, digest: list[tuple[str, tuple[int, int, int]]]) -> None:
        theirs = dict(digest)
        send: list[_Entry] = []
        want: list[str] = []
        for node_id, key in digest:
            mine = self._entries.get(node_id)
            if mine is None:
                if key[1] == MemberStatus.UP and node_id != self.node_id:
                    want.append(node_id)
            elif key > mine.key():
                want.append(node_id)  # for our own id too: fetched, then refuted
            elif mine.key() > key:
                send.append(mine)
        for node_id, mine in self._entries.items():
            if node_id in theirs:
                continue
            # Tombstones go only to the member they are about (a restarted incarnation needs
            # its old entry to supersede it); elsewhere they would outlive forget_after.
            if mine.status is MemberStatus.UP or node_id == peer_id:
                send.append(mine)
        if send:
            self._send_entries(peer_id, send)
        if want:
            self._send(peer_id, ["want", want])

    # -- sending ----------------------------------------------------------------------------------

    def _send(self, peer_id: str, body: list[Any]) -> None:
        self.stats.sent_messages += 1
        self._actions.append(SendControl(peer_id, body))

    def _send_entries(self, peer_id: str, entries: Iterable[_Entry]) -> None:
        chunk: list[list[Any]] = []
        size = 0
        for entry in entries:
            cost = len(entry.metadata) + len(entry.uri) + len(entry.node_id) + _ENTRY_OVERHEAD
            if chunk and size + cost > self.config.max_gossip_bytes:
                self._send(peer_id, ["entries", chunk])
                chunk, size = [], 0
            chunk.append(entry.wire())
            size += cost
        if chunk:
            self._send(peer_id, ["entries", chunk])

    def _broadcast(self, entries: list[_Entry], *, exclude: str | None = None) -> None:
        for peer_id in sorted(self._connected):
            if peer_id != exclude:
                self._send_entries(peer_id, entries)

    def _reject(self, limit: str, node_id: str) -> None:
        count = self.stats.rejected.get(limit, 0)
        self.stats.rejected[limit] = count + 1
        if count == 0 or count % 1000 == 0:
            logger.warning(
                "node %s: refusing member %r: %s=%d reached",
                self.node_id,
                node_id,
                limit,
                getattr(self.config, limit),
            )

    # -- validation -------------------------------------------------------------------------------

    def _max_items(self) -> int:
        return 2 * self.config.max_members + 16

    def _parse_id(self, value: Any) -> str:
        if type(value) is not str or not 0 < len(value) <= _MAX_ID:
            raise ProtocolError("malformed membership message: bad member id")
        return value

    def _parse_ids(self, value: Any) -> list[str]:
        if type(value) is not list or len(value) > self._max_items():
            raise ProtocolError("malformed membership message: bad id list")
        return [self._parse_id(item) for item in value]

    def _parse_entry(self, value: Any) -> _Entry:
        if type(value) is not list or len(value) != 6:
            raise ProtocolError("malformed member entry: expected 6 fields")
        node_id, uri, incarnation, version, status, metadata = value
        self._parse_id(node_id)
        if type(uri) is not str or not 0 < len(uri) <= _MAX_URI:
            raise ProtocolError("malformed member entry: bad uri")
        if self._uri_check is not None and not self._uri_check(uri):
            raise ProtocolError(f"malformed member entry: uri {uri[:80]!r} is not dialable")
        if type(incarnation) is not int or not 0 <= incarnation <= _MAX_U64:
            raise ProtocolError("malformed member entry: bad incarnation")
        if type(version) is not int or not 0 <= version <= _MAX_VERSION:
            raise ProtocolError("malformed member entry: bad version")
        if type(status) is not int or status not in _STATUS_VALUES:
            raise ProtocolError("malformed member entry: bad status")
        if type(metadata) is not bytes or len(metadata) > self.config.max_metadata:
            raise ProtocolError("malformed member entry: bad or oversized metadata")
        return _Entry(node_id, uri, incarnation, version, MemberStatus(status), metadata)

    def _parse_entries(self, value: Any) -> list[_Entry]:
        if type(value) is not list or len(value) > self._max_items():
            raise ProtocolError("malformed membership message: bad entry list")
        entries = [self._parse_entry(item) for item in value]
        if len({entry.node_id for entry in entries}) != len(entries):
            raise ProtocolError("malformed membership message: an id appears twice")
        return entries

    def _parse_digest(self, value: Any) -> list[tuple[str, tuple[int, int, int]]]:
        if type(value) is not list or len(value) > self._max_items():
            raise ProtocolError("malformed membership digest")
        digest: list[tuple[str, tuple[int, int, int]]] = []
        seen: set[str] = set()
        for item in value:
            if type(item) is not list or len(item) != 4:
                raise ProtocolError("malformed membership digest item")
            node_id, incarnation, version, status = item
            self._parse_id(node_id)
            if (
                type(incarnation) is not int
                or not 0 <= incarnation <= _MAX_U64
                or type(version) is not int
                or not 0 <= version <= _MAX_VERSION
                or type(status) is not int
                or status not in _STATUS_VALUES
                or node_id in seen
            ):
                raise ProtocolError("malformed membership digest item")
            seen.add(node_id)
            digest.append((node_id, (version, status, incarnation)))
        return digest


_STATUS_VALUES = frozenset(int(status) for status in MemberStatus)
