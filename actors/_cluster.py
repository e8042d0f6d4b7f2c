"""Cluster membership for actors, and process groups (Erlang ``pg``) on top of it.

The mesh owns membership (:mod:`transport._membership`); this module turns its events into
`MemberUp` / `MemberDown` messages and callbacks, and keeps groups. A node's groups travel in
its membership metadata, an opaque blob to the mesh: ``msgpack({"groups": {group: [actor
names]}})``. Every node therefore knows every member's groups as soon as the member's entry
reaches it, and forgets them when the member goes down: groups are eventually consistent,
like ``pg``'s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgpack

from actors._envelope import TELL
from actors._events import EventHub
from actors._message import Message, encode_message
from actors.errors import GroupError
from transport import ConfigurationError, Member, Node

if TYPE_CHECKING:
    from actors._actor import ActorRef

__all__ = [
    "CLUSTER_EVENTS",
    "ClusterEvent",
    "ClusterGroups",
    "MemberDown",
    "MemberUp",
    "check_group",
]

logger = logging.getLogger(__name__)

_MAX_GROUP_NAME = 255

ClusterEvent = Literal["member_up", "member_down"]
"""The cluster events :meth:`ActorSystem.on` accepts besides the system events."""
CLUSTER_EVENTS: frozenset[str] = frozenset({"member_up", "member_down"})


class MemberUp(Message, tag="masterless.MemberUp"):
    """Delivered to every local actor with a handler for it when a member joins the view.

    Attributes:
        member_id: The member's node id.
        uri: Its advertised uri.
        incarnation: Its incarnation (a new one after each restart).
    """

    member_id: str
    uri: str
    incarnation: int


class MemberDown(Message, tag="masterless.MemberDown"):
    """Delivered to every local actor with a handler for it when a member leaves the view.

    Attributes:
        member_id: The member's node id.
        reason: ``"left"`` (closed gracefully), ``"unreachable"`` (crashed or partitioned
            away, after the indirect check), or ``"restarted"`` (a new incarnation replaced
            it; a `MemberUp` follows).
        incarnation: The incarnation that went down.
    """

    member_id: str
    reason: str
    incarnation: int


class GroupHost(Protocol):
    """What the groups need from their actor system."""

    @property
    def id(self) -> str:
        """The node id."""
        ...

    @property
    def node(self) -> Node:
        """The transport node."""
        ...

    def ref(self, node_id: str, name: str) -> ActorRef:
        """A ref to an actor."""
        ...

    @property
    def closed(self) -> bool:
        """True once the system began closing."""
        ...

    def _notify_actors(self, event: Message) -> None:
        """Deliver ``event`` to every local actor with a handler for its type."""
        ...

    def _send(self, node_id: list[str], name: str, message: Message, packet: list[Any]) -> Any:
        """Hand one packet to the transport for several peers (errors mapped to ActorError)."""
        ...


def check_group(group: str) -> None:
    """Raise `GroupError` unless ``group`` is a valid group name."""
    if not isinstance(group, str) or not 0 < len(group) <= _MAX_GROUP_NAME:
        raise GroupError(f"a group name is a str of 1 to 255 characters, not {group!r}")


def encode_groups(groups: dict[str, set[str]]) -> bytes:
    """The metadata blob that publishes ``groups`` (group -> local actor names)."""
    table = {group: sorted(names) for group, names in sorted(groups.items()) if names}
    blob: bytes = msgpack.packb({"groups": table}, use_bin_type=True)
    return blob


def decode_groups(blob: bytes) -> dict[str, list[str]]:
    """Read a member's groups from its metadata; malformed metadata holds no groups."""
    if not blob:
        return {}
    try:
        value = msgpack.unpackb(blob, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError):
        return {}
    table = value.get("groups") if isinstance(value, dict) else None
    if not isinstance(table, dict):
        return {}
    groups: dict[str, list[str]] = {}
    for group, names in table.items():
        if isinstance(group, str) and isinstance(names, list):
            kept = [name for name in names if isinstance(name, str) and name]
            if kept:
                groups[group] = kept
    return groups


class ClusterGroups:
    """Membership events for actors, and the group registry of one actor system.

    Args:
        host: the actor system.
        has_actor: True when a local actor runs under a name.
        deliver_local: delivers a message (with the sending actor's name) to a local actor.
    """

    def __init__(
        self,
        host: GroupHost,
        has_actor: Callable[[str], bool],
        deliver_local: Callable[[str, Message, str | None], bool],
    ) -> None:
        self._host = host
        self._has_actor = has_actor
        self._deliver_local = deliver_local
        self._local: dict[str, set[str]] = {}  # group -> names of local actors in it
        self._remote: dict[str, dict[str, list[str]]] = {}  # member id -> its groups
        self._callbacks = EventHub(host.id, CLUSTER_EVENTS)
        node = host.node
        node.on("member_up", self._on_member_up)
        node.on("member_down", self._on_member_down)
        node.on("member_updated", self._on_member_updated)

    # -- membership events -------------------------------------------------------------------------

    def _on_member_up(self, member: Member) -> None:
        self._remote[member.id] = decode_groups(member.metadata)
        self._host._notify_actors(
            MemberUp(member_id=member.id, uri=member.uri, incarnation=member.incarnation)
        )
        self._callbacks.emit("member_up", member)

    def _on_member_down(self, member: Member, reason: str) -> None:
        self._remote.pop(member.id, None)
        self._host._notify_actors(
            MemberDown(member_id=member.id, reason=reason, incarnation=member.incarnation)
        )
        self._callbacks.emit("member_down", member, reason)

    def _on_member_updated(self, member: Member) -> None:
        self._remote[member.id] = decode_groups(member.metadata)

    # -- callbacks ---------------------------------------------------------------------------------

    def on(self, event: str, callback: Callable[..., Any]) -> None:
        """Register ``callback`` for ``member_up`` or ``member_down``."""
        self._callbacks.on(event, callback)

    async def cancel_running(self) -> None:
        """Cancel the callback tasks still running (but not the caller's own) and wait."""
        await self._callbacks.cancel_running()

    # -- local membership of groups ----------------------------------------------------------------

    def join(self, group: str, names: Iterable[str]) -> None:
        """Add local actors to ``group`` and publish the change."""
        check_group(group)
        names = list(names)
        for name in names:
            if not self._has_actor(name):
                raise GroupError(f"no actor named {name!r} runs on {self._host.id!r}")
        members = self._local.setdefault(group, set())
        before = set(members)
        members.update(names)
        if members != before:
            self._publish(group, before)

    def leave(self, group: str, names: Iterable[str]) -> None:
        """Remove local actors from ``group`` (no error for one that is not in it)."""
        check_group(group)
        members = self._local.get(group)
        if members is None:
            return
        before = set(members)
        members.difference_update(names)
        if not members:
            del self._local[group]
        if members != before:
            self._publish(group, before)

    def actor_stopped(self, name: str) -> None:
        """A local actor stopped: it leaves every group."""
        for group in [group for group, names in self._local.items() if name in names]:
            self.leave(group, [name])

    def local_groups(self, name: str) -> list[str]:
        """The groups the local actor ``name`` is in."""
        return sorted(group for group, names in self._local.items() if name in names)

    def _publish(self, group: str, before: set[str]) -> None:
        node = self._host.node
        if not node.clustered or self._host.closed:
            # Outside a cluster groups stay local; while closing, "left" will say it all.
            return
        try:
            node.set_metadata(encode_groups(self._local))
        except ConfigurationError as exc:
            # Roll back, so that the published groups and the local ones agree.
            if before:
                self._local[group] = before
            else:
                self._local.pop(group, None)
            raise GroupError(f"cannot publish group {group!r}: {exc}") from exc

    # -- reading and sending -----------------------------------------------------------------------

    def targets(self, group: str) -> list[tuple[str, str]]:
        """``(node id, actor name)`` of every member of ``group`` known here, sorted."""
        check_group(group)
        found = [(self._host.id, name) for name in self._local.get(group, ())]
        members = self._host.node.members
        for member_id, groups in self._remote.items():
            if member_id in members and member_id != self._host.id:
                found.extend((member_id, name) for name in groups.get(group, ()))
        return sorted(found)

    def names(self) -> list[str]:
        """The groups with at least one member known here (local or on a member up), sorted."""
        found = set(self._local)
        members = self._host.node.members
        for member_id, groups in self._remote.items():
            if member_id in members and member_id != self._host.id:
                found.update(groups)
        return sorted(found)

    def refs(self, group: str) -> list[ActorRef]:
        """Refs to every member of ``group`` known here."""
        return [self._host.ref(node_id, name) for node_id, name in self.targets(group)]

    def tell(self, group: str, message: Message, sender_name: str | None) -> int:
        """Send ``message`` once to every member of ``group``; returns how many took it.

        The message is encoded once; the packets for actors with the same name on several
        nodes are one multi-dispatch send (one frame encoding).
        """
        by_name: dict[str, list[str]] = {}
        handed = 0
        for node_id, name in self.targets(group):
            if node_id == self._host.id:
                handed += self._deliver_local(name, message, sender_name)
            else:
                by_name.setdefault(name, []).append(node_id)
        if not by_name:
            return handed
        tag, payload = encode_message(message)
        for name, node_ids in by_name.items():
            packet = [TELL, name, tag, payload, self._host.id, sender_name, None]
            handed += self._host._send(node_ids, name, message, packet)
        return handed
