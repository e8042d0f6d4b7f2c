"""The asyncio side of cluster membership: seeds, joins, waiters, and the one pump rule.

:class:`Cluster` owns a sans-I/O :class:`transport._membership.Membership` and drives it for
a :class:`transport.Node`: the node reports its connections and membership control frames,
and the cluster, after every call into the core, performs the queued actions through the
small :class:`ClusterHost` protocol (send a control body, keep or forget a member, emit an
event, drop a peer that sent malformed gossip). The node knows nothing of the protocol, and
the cluster nothing of the node's internals.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from typing import Any, Protocol

from ._membership import (
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
from .errors import HandshakeError, NodeStateError, ProtocolError, TransportError

__all__ = ["Cluster", "ClusterHost"]

logger = logging.getLogger("transport")

_SEED_RETRY_INITIAL = 0.1
_SEED_RETRY_MAX = 5.0


class ClusterHost(Protocol):
    """What the cluster needs from its node."""

    @property
    def id(self) -> str:
        """The node's id."""
        ...

    def _send_membership(self, peer_id: str, body: list[Any]) -> bool:
        """Send a membership control body to a connected peer."""
        ...

    def _keep_member(self, peer_id: str, uri: str) -> None:
        """Keep (dial, re-dial) the member at ``uri``."""
        ...

    def _forget_member(self, peer_id: str) -> None:
        """Stop keeping the member."""
        ...

    def _drop_peer(self, peer_id: str, error: TransportError) -> None:
        """Close the connection to ``peer_id`` because of ``error``."""
        ...

    def _emit(self, event: str, *args: Any) -> None:
        """Call the handlers of ``event``."""
        ...

    async def connect(self, uri: str, *, timeout: float | None = None) -> str:
        """Dial ``uri`` and return the peer's id once it is connected."""
        ...


class Cluster:
    """Membership for one node: drives the sans-I/O core and performs its actions.

    Args:
        host: the node.
        config: membership timings and limits.
        seeds: uris dialled at start (retried with backoff until each answers once).
        metadata: the initial metadata blob this node publishes.
        uri_check: returns False for a gossiped uri that must not be dialled.
    """

    def __init__(
        self,
        host: ClusterHost,
        config: MembershipConfig,
        seeds: list[str],
        metadata: bytes,
        uri_check: Callable[[str], bool],
    ) -> None:
        self._host = host
        self.config = config
        self.seeds = list(seeds)
        self._metadata = metadata
        self._uri_check = uri_check
        self.membership: Membership | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._member_waiters: list[tuple[int, asyncio.Future[None]]] = []
        self._hello_waiters: dict[str, list[asyncio.Future[None]]] = {}

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, incarnation: int, uri: str, now: float) -> None:
        """Begin at ``now``: create the core and start dialling the seeds."""
        self._loop = asyncio.get_running_loop()
        self.membership = Membership(
            self._host.id,
            incarnation,
            uri,
            self.config,
            random.Random(),
            now,
            metadata=self._metadata,
            uri_check=self._uri_check,
        )
        for seed in self.seeds:
            if seed != uri:
                self._spawn(self._dial_seed(seed))

    def leave(self) -> None:
        """Tell every connected member that this node leaves (before the goodbyes)."""
        if self.membership is not None:
            self.membership.leave()
            self._pump()

    async def stop(self) -> None:
        """Cancel the seed dials and wake every waiter."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for _, waiter in self._member_waiters:
            if not waiter.done():
                waiter.set_exception(NodeStateError("node closed while waiting for members"))
        self._member_waiters.clear()
        for waiters in self._hello_waiters.values():
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(NodeStateError("node closed while joining"))
        self._hello_waiters.clear()

    # -- facts from the node -----------------------------------------------------------------------

    def connection_up(self, peer_id: str, incarnation: int, now: float) -> None:
        """An authenticated connection to ``peer_id`` is up."""
        if self.membership is not None:
            self.membership.connection_up(peer_id, incarnation, now)
            self._pump()

    def dial_failed(self, peer_id: str, now: float) -> None:
        """A re-dial of this node to ``peer_id`` failed."""
        if self.membership is not None:
            self.membership.dial_failed(peer_id, now)
            self._pump()

    def connection_down(self, peer_id: str, now: float, last_heard: float | None) -> None:
        """The connection to ``peer_id`` ended."""
        if self.membership is not None:
            self.membership.connection_down(peer_id, now, last_heard)
            self._pump()

    def receive(self, peer_id: str, body: Any, now: float) -> None:
        """A membership control body arrived from ``peer_id``; malformed ones close it."""
        membership = self.membership
        if membership is None:
            return
        try:
            membership.receive(peer_id, body, now)
        except ProtocolError as exc:
            logger.warning(
                "node %s: closing connection to %s: malformed gossip: %s",
                self._host.id,
                peer_id,
                exc,
            )
            self._pump()
            self._host._drop_peer(peer_id, exc)
            return
        self._pump()
        if type(body) is list and body and body[0] == "hello":
            for waiter in self._hello_waiters.pop(peer_id, ()):
                if not waiter.done():
                    waiter.set_result(None)

    def tick(self, now: float) -> None:
        """Time passes."""
        if self.membership is not None:
            self.membership.tick(now)
            self._pump()

    # -- the one rule: after the core ran, perform its actions ------------------------------------

    def _pump(self) -> None:
        membership = self.membership
        assert membership is not None
        host = self._host
        for action in membership.take_actions():
            kind = type(action)
            if kind is SendControl:
                assert isinstance(action, SendControl)
                host._send_membership(action.peer_id, action.body)
            elif kind is KeepPeer:
                assert isinstance(action, KeepPeer)
                host._keep_member(action.peer_id, action.uri)
            elif kind is ForgetPeer:
                assert isinstance(action, ForgetPeer)
                host._forget_member(action.peer_id)
            elif kind is MemberUp:
                assert isinstance(action, MemberUp)
                logger.info("node %s: member_up %s", host.id, action.member.id)
                host._emit("member_up", action.member)
                self._wake_member_waiters()
            elif kind is MemberDown:
                assert isinstance(action, MemberDown)
                logger.info(
                    "node %s: member_down %s (%s)", host.id, action.member.id, action.reason
                )
                host._emit("member_down", action.member, action.reason)
            elif kind is MemberUpdated:
                assert isinstance(action, MemberUpdated)
                host._emit("member_updated", action.member)

    # -- the public side ---------------------------------------------------------------------------

    @property
    def members(self) -> dict[str, Member]:
        """Members by id, this node included."""
        if self.membership is None:
            return {}
        return self.membership.members

    def set_metadata(self, metadata: bytes, now: float) -> None:
        """Publish ``metadata`` (before ``start``: the initial blob)."""
        if self.membership is None:
            if len(metadata) > self.config.max_metadata:
                raise ValueError(
                    f"metadata of {len(metadata)} bytes exceeds max_metadata="
                    f"{self.config.max_metadata}"
                )
            self._metadata = bytes(metadata)
            return
        self.membership.set_metadata(metadata, now)
        self._pump()

    @property
    def metadata(self) -> bytes:
        """The metadata blob this node publishes."""
        return self._metadata if self.membership is None else self.membership.metadata

    async def join(self, uri: str, timeout: float) -> str:
        """Dial ``uri`` and wait until its member list has been received."""
        assert self._loop is not None
        async with asyncio.timeout(timeout):
            peer_id = await self._host.connect(uri, timeout=timeout)
            membership = self.membership
            assert membership is not None
            if peer_id not in membership._speaks:
                waiter: asyncio.Future[None] = self._loop.create_future()
                self._hello_waiters.setdefault(peer_id, []).append(waiter)
                await waiter
            return peer_id

    async def wait_for_members(self, count: int, timeout: float | None) -> dict[str, Member]:
        """Wait until at least ``count`` members (this node included) are in the view."""
        assert self._loop is not None
        assert self.membership is not None
        if self.membership.member_count >= count:
            return self.members
        waiter: asyncio.Future[None] = self._loop.create_future()
        entry = (count, waiter)
        self._member_waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        finally:
            if entry in self._member_waiters:
                self._member_waiters.remove(entry)
        return self.members

    def _wake_member_waiters(self) -> None:
        assert self.membership is not None
        size = self.membership.member_count
        for count, waiter in self._member_waiters:
            if size >= count and not waiter.done():
                waiter.set_result(None)

    # -- seeds -------------------------------------------------------------------------------------

    def _spawn(self, coroutine: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dial_seed(self, uri: str) -> None:
        delay = _SEED_RETRY_INITIAL
        attempt = 0
        while True:
            attempt += 1
            try:
                peer_id = await self._host.connect(uri)
            except HandshakeError as exc:
                if exc.code == "self":
                    return  # this node's own address in a shared seed list
                logger.warning(
                    "node %s: seed %s refused the handshake (attempt %d): %s",
                    self._host.id,
                    uri,
                    attempt,
                    exc,
                )
                self._host._emit("seed_refused", uri, exc)
            except NodeStateError:
                return
            except TransportError as exc:
                logger.info(
                    "node %s: seed %s not reachable (attempt %d): %s",
                    self._host.id,
                    uri,
                    attempt,
                    exc,
                )
            else:
                logger.info("node %s: joined through seed %s (%s)", self._host.id, uri, peer_id)
                return
            await asyncio.sleep(random.uniform(delay / 2, delay))
            delay = min(delay * 2, _SEED_RETRY_MAX)
