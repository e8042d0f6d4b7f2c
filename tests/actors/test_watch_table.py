"""The sans-I/O death-watch table, driven by a deterministic simulation (hypothesis).

Three nodes, two actors each, an in-memory network with one FIFO queue per ordered pair of
nodes. Random steps watch, unwatch, stop actors, deliver or drop notices, and cut or restore
links. Checked after every step and at the end:

* every `Notify` is for an open watch of a running watcher, and closes it (one per watch, none
  after an unwatch);
* once the network is quiet, every watch still open has a running target on a connected node;
* once the network is quiet, both halves of the tables hold exactly the open watches, and
  after every actor stopped, every table is empty (no leak).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from actors._watch import (
    Notify,
    SendTerminated,
    SendUnwatch,
    SendWatch,
    WatchAction,
    WatchTable,
)

NODES = ("n0", "n1", "n2")
NAMES = ("a", "b")
Target = tuple[str, str]


@dataclass
class Sim:
    running: set[Target] = field(default_factory=lambda: {(n, a) for n in NODES for a in NAMES})
    links: set[frozenset[str]] = field(
        default_factory=lambda: {frozenset((x, y)) for x in NODES for y in NODES if x != y}
    )
    wire: dict[tuple[str, str], deque[WatchAction]] = field(
        default_factory=lambda: {(x, y): deque() for x in NODES for y in NODES if x != y}
    )
    open: set[tuple[str, str, Target]] = field(default_factory=set)  # (node, watcher, target)
    notified: list[tuple[str, Notify]] = field(default_factory=list)
    tables: dict[str, WatchTable] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for node in NODES:
            self.tables[node] = WatchTable(
                node,
                lambda name, node=node: (node, name) in self.running,
                lambda peer, node=node: frozenset((node, peer)) in self.links,
            )

    def apply(self, node: str, actions: list[WatchAction]) -> None:
        for action in actions:
            if isinstance(action, Notify):
                key = (node, action.watcher, action.target)
                assert key in self.open, f"Terminated for a watch that is not open: {key}"
                assert (node, action.watcher) in self.running, "Terminated to a stopped watcher"
                self.open.discard(key)
                self.notified.append((node, action))
            else:
                assert isinstance(action, SendWatch | SendUnwatch | SendTerminated)
                if frozenset((node, action.node)) in self.links:
                    self.wire[(node, action.node)].append(action)

    def watch(self, node: str, watcher: str, target: Target) -> None:
        if (node, watcher) not in self.running:
            return
        self.open.add((node, watcher, target))
        self.apply(node, self.tables[node].watch(watcher, target))

    def unwatch(self, node: str, watcher: str, target: Target) -> None:
        if (node, watcher) not in self.running:
            return
        self.open.discard((node, watcher, target))
        self.apply(node, self.tables[node].unwatch(watcher, target))

    def stop(self, node: str, name: str) -> None:
        if (node, name) not in self.running:
            return
        self.running.discard((node, name))
        # Its own watches end with it: nobody is left to tell.
        self.open = {w for w in self.open if (w[0], w[1]) != (node, name)}
        self.apply(node, self.tables[node].actor_stopped(name))

    def deliver(self, source: str, dest: str) -> None:
        queue = self.wire[(source, dest)]
        if not queue:
            return
        notice = queue.popleft()
        table = self.tables[dest]
        if isinstance(notice, SendWatch):
            actions = table.watched(source, notice.target, notice.watcher)
        elif isinstance(notice, SendUnwatch):
            actions = table.unwatched(source, notice.target, notice.watcher)
        else:
            assert isinstance(notice, SendTerminated)
            actions = table.terminated(source, notice.target, notice.watcher, notice.reason)
        self.apply(dest, actions)

    def cut(self, x: str, y: str) -> None:
        link = frozenset((x, y))
        if link not in self.links:
            return
        self.links.discard(link)
        self.wire[(x, y)].clear()
        self.wire[(y, x)].clear()
        self.apply(x, self.tables[x].node_down(y))
        self.apply(y, self.tables[y].node_down(x))

    def heal(self, x: str, y: str) -> None:
        self.links.add(frozenset((x, y)))

    def quiesce(self) -> None:
        for _ in range(10_000):
            busy = [pair for pair, queue in self.wire.items() if queue]
            if not busy:
                return
            self.deliver(*busy[0])
        raise AssertionError("the network did not go quiet")

    def check_quiet(self) -> None:
        # Both halves of every table hold exactly the open watches: nothing stale, no leak.
        watching = {
            (node, watcher, target)
            for node, table in self.tables.items()
            for watcher, targets in table._watching.items()
            for target in targets
        }
        watched_by = {
            (watcher_node, watcher, (node, target))
            for node, table in self.tables.items()
            for target, watchers in table._watched_by.items()
            for watcher_node, watcher in watchers
        }
        assert watching == self.open
        assert watched_by == self.open
        for node, _watcher, target in self.open:
            assert target in self.running, f"open watch of a stopped actor {target}"
            if target[0] != node:
                assert frozenset((node, target[0])) in self.links, "open watch across a cut"


node = st.sampled_from(NODES)
name = st.sampled_from(NAMES)
pair = st.tuples(node, node).filter(lambda p: p[0] != p[1])
step = st.one_of(
    st.tuples(st.just("watch"), node, name, st.tuples(node, name)),
    st.tuples(st.just("unwatch"), node, name, st.tuples(node, name)),
    st.tuples(st.just("stop"), node, name),
    st.tuples(st.just("deliver"), st.integers(0, 5)),
    st.tuples(st.just("deliver"), st.integers(0, 5)),
    st.tuples(st.just("cut"), pair),
    st.tuples(st.just("heal"), pair),
    st.tuples(st.just("quiesce")),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(step, min_size=5, max_size=80))
def test_watch_table_simulation(steps: list[tuple[object, ...]]) -> None:
    sim = Sim()
    for op, *args in steps:
        if op == "watch":
            sim.watch(*args)  # type: ignore[arg-type]
        elif op == "unwatch":
            sim.unwatch(*args)  # type: ignore[arg-type]
        elif op == "stop":
            sim.stop(*args)  # type: ignore[arg-type]
        elif op == "deliver":
            # Deliver the head of one of the non-empty queues (chosen by the drawn index).
            busy = sorted(pair for pair, queue in sim.wire.items() if queue)
            if busy:
                sim.deliver(*busy[args[0] % len(busy)])  # type: ignore[operator]
        elif op == "cut":
            sim.cut(*args[0])  # type: ignore[misc]
        elif op == "heal":
            sim.heal(*args[0])  # type: ignore[misc]
        else:
            sim.quiesce()
            sim.check_quiet()
    sim.quiesce()
    sim.check_quiet()
    for target in sorted(sim.running):
        sim.stop(*target)
    sim.quiesce()
    assert sim.open == set()
    assert [table.size for table in sim.tables.values()] == [0, 0, 0]


def test_one_watch_one_notice_by_hand() -> None:
    sim = Sim()
    sim.watch("n0", "a", ("n1", "b"))
    sim.watch("n0", "a", ("n1", "b"))  # idempotent: one notice on the wire
    assert list(sim.wire[("n0", "n1")]) == [SendWatch("n1", "b", "a")]
    sim.quiesce()
    sim.stop("n1", "b")
    sim.quiesce()
    assert sim.notified == [("n0", Notify("a", ("n1", "b"), "stopped"))]
    assert [table.size for table in sim.tables.values()] == [0, 0, 0]
