"""The built-in control actor: how ``masterless status`` and ``masterless ping`` reach a node.

Every started `ActorSystem` hosts an actor named `CONTROL_ACTOR` (``"$masterless"``), spawned
by `ActorSystem.start` and left out of `ActorSystem.actors` and the actor counts. It answers
`StatusRequest` with a `NodeStatus` and `Ping` with `Pong`, and only to peers the mesh let in:
with a cookie (and TLS) set, a peer that cannot prove the cookie never gets a connection, so it
never reaches this actor. Without a cookie the mesh is open and so is this actor, like every
other one.

`node_status` builds the same snapshot locally; the Prometheus collector in `actors._metrics`
reads it too, so the status command and the metrics endpoint always agree.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from actors._actor import Actor, handler
from actors._message import Message

if TYPE_CHECKING:
    from actors._system import ActorSystem

__all__ = [
    "CONTROL_ACTOR",
    "ActorStatus",
    "ControlActor",
    "MemberStatus",
    "NodeStatus",
    "PeerStatus",
    "Ping",
    "Pong",
    "StatusRequest",
    "install_control",
    "node_status",
]

logger = logging.getLogger(__name__)

CONTROL_ACTOR = "$masterless"
"""The reserved name of the control actor on every node run by ``masterless run``."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MemberStatus(_Frozen):
    """One cluster member as this node sees it.

    Attributes:
        id: The member's node id.
        uri: Its advertised uri.
        status: ``"up"``, ``"suspect"``, ``"down"``... as the cluster reports it.
    """

    id: str
    uri: str | None = None
    status: str


class PeerStatus(_Frozen):
    """The mesh's counters for one peer (`transport.Node.stats`); None: not counted here.

    Attributes:
        id: The peer's node id.
        connected: True while its connection is up.
        packets_in: Packets received from it.
        packets_out: Packets handed to its connection or reconnect queue.
        bytes_in: Frame bytes received from it.
        bytes_out: Frame bytes sent to it.
        dropped: Packets refused for it (not connected, past the high-water mark or the
            queue bound).
        queued: Packets waiting in its reconnect queue now.
        reconnects: Connections to it re-established after a drop.
    """

    id: str
    connected: bool = True
    packets_in: int | None = None
    packets_out: int | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    dropped: int | None = None
    queued: int | None = None
    reconnects: int | None = None


class ActorStatus(_Frozen):
    """One actor's counters; None: not counted by this build.

    Attributes:
        name: The actor's name.
        handled: Messages given to its handlers (including those they raised on).
        failed: Messages its handlers raised on.
        restarts: Times supervision replaced its instance.
        mailbox: Messages waiting in its mailbox now.
    """

    name: str
    handled: int | None = None
    failed: int | None = None
    restarts: int | None = None
    mailbox: int | None = None


class NodeStatus(Message, tag="masterless.NodeStatus"):
    """What ``masterless status`` prints: identity, membership, actors and counters.

    Attributes:
        node_id: The node's id.
        uri: The uri it advertises.
        members: Cluster members known here (empty on a node without cluster membership).
        peers: Ids of the peers connected now.
        peer_stats: The mesh's counters per peer.
        actors: The actors running here, with their counters.
        groups: Group name to the refs (``node/actor``) in it, as known here.
        pending_asks: Asks from this node waiting for a reply.
        dead_letters: Dead letters counted since start, by reason.
    """

    node_id: str
    uri: str | None = None
    members: list[MemberStatus] = Field(default_factory=list)
    peers: list[str] = Field(default_factory=list)
    peer_stats: list[PeerStatus] = Field(default_factory=list)
    actors: list[ActorStatus] = Field(default_factory=list)
    groups: dict[str, list[str]] = Field(default_factory=dict)
    pending_asks: int = 0
    dead_letters: dict[str, int] = Field(default_factory=dict)


class StatusRequest(Message, tag="masterless.StatusRequest"):
    """Ask the control actor for its node's `NodeStatus`."""


class Ping(Message, tag="masterless.Ping"):
    """Ask the control actor for a `Pong` carrying the same sequence number.

    Attributes:
        seq: Echoed back in the `Pong`.
    """

    seq: int = 0


class Pong(Message, tag="masterless.Pong"):
    """The control actor's answer to `Ping`.

    Attributes:
        seq: The ping's sequence number.
        node_id: The answering node's id.
    """

    seq: int
    node_id: str


def node_status(system: ActorSystem) -> NodeStatus:
    """A snapshot of ``system`` in the shape ``masterless status`` prints.

    This is the one place that reads the system's counters for the status command and the
    metrics endpoint.

    Args:
        system: The actor system.

    Returns:
        The snapshot.
    """
    stats = system.stats()
    return NodeStatus(
        node_id=system.id,
        uri=system.info(),
        members=[
            MemberStatus(id=member.id, uri=member.uri or None, status=str(member.status))
            for _, member in sorted(system.members.items())
        ],
        peers=sorted(stats.peers),
        peer_stats=[
            PeerStatus(
                id=peer.peer_id,
                connected=peer.connected,
                packets_in=peer.packets_in,
                packets_out=peer.packets_out,
                bytes_in=peer.bytes_in,
                bytes_out=peer.bytes_out,
                dropped=peer.dropped,
                queued=peer.queued,
                reconnects=peer.reconnects,
            )
            for _, peer in sorted(stats.peer_stats.items())
        ],
        actors=[
            ActorStatus(
                name=name,
                handled=actor.handled,
                failed=actor.failed,
                restarts=actor.restarts,
                mailbox=actor.mailbox_depth,
            )
            for name, actor in sorted(stats.by_actor.items())
        ],
        groups={
            name: [f"{ref.node_id}/{ref.name}" for ref in system.group(name)]
            for name in system.group_names()
        },
        pending_asks=stats.pending_asks,
        dead_letters=dict(sorted(stats.dead_letters_by_reason.items())),
    )


class ControlActor(Actor):
    """Answers ``masterless status`` and ``masterless ping`` for the system it runs in."""

    @handler
    def on_status(self, msg: StatusRequest) -> NodeStatus:
        """Reply with this node's `NodeStatus`."""
        return node_status(self.context.system)

    @handler
    def on_ping(self, msg: Ping) -> Pong:
        """Reply at once with a `Pong` for the same sequence number."""
        return Pong(seq=msg.seq, node_id=self.context.system.id)


def install_control(system: ActorSystem) -> None:
    """Spawn the control actor on ``system`` (`ActorSystem.start` does, once).

    Args:
        system: A started actor system.
    """
    system.spawn(CONTROL_ACTOR, ControlActor())
    logger.debug("control actor %s runs on %s", CONTROL_ACTOR, system.id)
