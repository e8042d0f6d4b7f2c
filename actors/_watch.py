"""Death watch: who watches whom, as a sans-I/O table (no asyncio, no sockets).

``context.watch(ref)`` asks to be told, once, when the actor behind ``ref`` ends. The
`WatchTable` of each system keeps both halves of every watch and decides what must happen; the
system carries out the `WatchAction` s it returns (send a watch envelope to a peer, deliver a
`Terminated` to a local watcher).

The rules, in one place:

1. A watch is a pair (watcher, target), where the watcher is a local actor's name and the target
   a ``(node_id, name)``. Watching twice is one watch; unwatching drops it, and no `Terminated`
   for it is delivered afterwards.
2. Each watch ends with exactly one `Terminated` to the watcher (unless unwatched first), with
   reason ``"stopped"`` (the target stopped), ``"not_found"`` (no such actor when the watch
   arrived) or ``"node_down"`` (the target's node is not connected, went down or restarted).
   The entry is removed before the notice is handed out, so a second cause finds nothing.
3. A watch of a remote target is held on both nodes: the watcher's node remembers it under the
   target's node (to answer that node going down), the target's node under the target (to tell
   the watcher's node when it stops). The wire carries three notices: ``watch``, ``unwatch`` and
   ``terminated``.
4. Nothing outlives either side: a stopping watcher drops its watches (telling the target nodes);
   a stopping target ends every watch of it; a node going down ends the watches of targets on it
   and forgets the watches its actors held of ours.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Notify",
    "SendTerminated",
    "SendUnwatch",
    "SendWatch",
    "TerminationReason",
    "WatchAction",
    "WatchTable",
]

TerminationReason = Literal["stopped", "not_found", "node_down"]
"""Why a watched actor is gone (see `Terminated`)."""

Target = tuple[str, str]
"""``(node_id, actor name)``."""


@dataclass(frozen=True, slots=True)
class Notify:
    """Deliver ``Terminated(ref=target, reason=reason)`` to the local actor ``watcher``."""

    watcher: str
    target: Target
    reason: TerminationReason


@dataclass(frozen=True, slots=True)
class SendWatch:
    """Tell ``node`` that our actor ``watcher`` watches its actor ``target``."""

    node: str
    target: str
    watcher: str


@dataclass(frozen=True, slots=True)
class SendUnwatch:
    """Tell ``node`` that our actor ``watcher`` no longer watches its actor ``target``."""

    node: str
    target: str
    watcher: str


@dataclass(frozen=True, slots=True)
class SendTerminated:
    """Tell ``node`` that our actor ``target``, which its actor ``watcher`` watches, is gone."""

    node: str
    target: str
    watcher: str
    reason: TerminationReason


WatchAction = Notify | SendWatch | SendUnwatch | SendTerminated


class WatchTable:
    """Every watch one system takes part in, as watcher's node or as target's node.

    Args:
        node_id: This system's node id.
        is_running: Whether a local actor runs under a name.
        is_up: Whether a peer node is connected now.
    """

    def __init__(
        self,
        node_id: str,
        is_running: Callable[[str], bool],
        is_up: Callable[[str], bool],
    ) -> None:
        self._node_id = node_id
        self._is_running = is_running
        self._is_up = is_up
        # watcher's side: local watcher name -> targets it watches
        self._watching: dict[str, set[Target]] = {}
        # target's side: local target name -> (watcher node, watcher name) watching it
        self._watched_by: dict[str, set[Target]] = {}

    # --- the watcher's side --------------------------------------------------------------------

    def watch(self, watcher: str, target: Target) -> list[WatchAction]:
        """Our actor ``watcher`` starts watching ``target`` (idempotent)."""
        targets = self._watching.setdefault(watcher, set())
        if target in targets:
            return []
        node, name = target
        if node == self._node_id:
            if not self._is_running(name):
                self._drop_if_empty(watcher)
                return [Notify(watcher, target, "not_found")]
            targets.add(target)
            self._watched_by.setdefault(name, set()).add((node, watcher))
            return []
        if not self._is_up(node):
            self._drop_if_empty(watcher)
            return [Notify(watcher, target, "node_down")]
        targets.add(target)
        return [SendWatch(node, name, watcher)]

    def unwatch(self, watcher: str, target: Target) -> list[WatchAction]:
        """Our actor ``watcher`` stops watching ``target``; no `Terminated` for it follows."""
        targets = self._watching.get(watcher)
        if targets is None or target not in targets:
            return []
        targets.discard(target)
        self._drop_if_empty(watcher)
        node, name = target
        if node == self._node_id:
            self._discard_watched_by(name, (node, watcher))
            return []
        return [SendUnwatch(node, name, watcher)]

    def terminated(
        self, node: str, target: str, watcher: str, reason: TerminationReason
    ) -> list[WatchAction]:
        """Node ``node`` says its actor ``target``, watched by our ``watcher``, is gone."""
        targets = self._watching.get(watcher)
        if targets is None or (node, target) not in targets:
            return []  # unwatched meanwhile, or a duplicate: rule 2
        targets.discard((node, target))
        self._drop_if_empty(watcher)
        return [Notify(watcher, (node, target), reason)]

    # --- the target's side ---------------------------------------------------------------------

    def watched(self, node: str, target: str, watcher: str) -> list[WatchAction]:
        """Node ``node`` says its actor ``watcher`` watches our actor ``target``."""
        if not self._is_running(target):
            return [SendTerminated(node, target, watcher, "not_found")]
        self._watched_by.setdefault(target, set()).add((node, watcher))
        return []

    def unwatched(self, node: str, target: str, watcher: str) -> list[WatchAction]:
        """Node ``node`` says its actor ``watcher`` no longer watches our actor ``target``."""
        self._discard_watched_by(target, (node, watcher))
        return []

    # --- endings -------------------------------------------------------------------------------

    def actor_stopped(self, name: str) -> list[WatchAction]:
        """Our actor ``name`` stopped: end every watch of it, drop every watch it held."""
        actions: list[WatchAction] = []
        # Its own watches first: an actor watching itself is not told of its own end.
        for node, target in sorted(self._watching.pop(name, ())):
            if node == self._node_id:
                self._discard_watched_by(target, (node, name))
            else:
                actions.append(SendUnwatch(node, target, name))
        for node, watcher in sorted(self._watched_by.pop(name, ())):
            if node == self._node_id:
                targets = self._watching.get(watcher)
                if targets is not None and (node, name) in targets:
                    targets.discard((node, name))
                    self._drop_if_empty(watcher)
                    actions.append(Notify(watcher, (node, name), "stopped"))
            else:
                actions.append(SendTerminated(node, name, watcher, "stopped"))
        return actions

    def node_down(self, node: str) -> list[WatchAction]:
        """Peer ``node`` went down or restarted: end the watches of its actors, forget its own."""
        actions: list[WatchAction] = []
        for watcher in sorted(self._watching):
            targets = self._watching[watcher]
            gone = sorted(target for target in targets if target[0] == node)
            for target in gone:
                targets.discard(target)
                actions.append(Notify(watcher, target, "node_down"))
        for watcher in [w for w, targets in self._watching.items() if not targets]:
            del self._watching[watcher]
        for name in list(self._watched_by):
            self._watched_by[name] = {w for w in self._watched_by[name] if w[0] != node}
            if not self._watched_by[name]:
                del self._watched_by[name]
        return actions

    def clear(self) -> None:
        """Forget everything (the system closed)."""
        self._watching.clear()
        self._watched_by.clear()

    # --- inspection ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """How many entries the table holds (both sides); 0 when nothing is watched."""
        return sum(map(len, self._watching.values())) + sum(map(len, self._watched_by.values()))

    def watching(self, watcher: str) -> frozenset[Target]:
        """The targets our actor ``watcher`` watches."""
        return frozenset(self._watching.get(watcher, ()))

    def _drop_if_empty(self, watcher: str) -> None:
        if not self._watching.get(watcher, True):
            del self._watching[watcher]

    def _discard_watched_by(self, target: str, watcher: Target) -> None:
        watchers = self._watched_by.get(target)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watched_by[target]
