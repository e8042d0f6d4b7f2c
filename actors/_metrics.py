"""Prometheus metrics for a running node (the ``metrics`` extra: ``masterless[metrics]``).

`serve_metrics` starts prometheus-client's HTTP server with a custom collector that reads
`actors._control.node_status` at every scrape, so the endpoint and ``masterless status`` show
the same numbers. Nothing is counted twice and nothing runs between scrapes.

Metric names (all prefixed ``masterless_``; ``node`` label on every sample):

| metric | type | labels | what |
| --- | --- | --- | --- |
| ``up`` | gauge | | 1 while the node runs |
| ``peers`` | gauge | | peers connected now |
| ``members`` | gauge | ``status`` | cluster members by status |
| ``actors`` | gauge | | actors running (the control actor not counted) |
| ``pending_asks`` | gauge | | asks waiting for a reply |
| ``dead_letters_total`` | counter | ``reason`` | dead letters by reason |
| ``peer_packets_in_total`` / ``_out_total`` | counter | ``peer`` | packets from / to a peer |
| ``peer_bytes_in_total`` / ``_out_total`` | counter | ``peer`` | frame bytes from / to a peer |
| ``peer_dropped_total`` | counter | ``peer`` | packets refused for a peer |
| ``peer_queued`` | gauge | ``peer`` | packets in a peer's reconnect queue |
| ``peer_reconnects_total`` | counter | ``peer`` | re-established connections |
| ``actor_handled_total`` / ``_failed_total`` | counter | ``actor`` | handled / failed |
| ``actor_restarts_total`` | counter | ``actor`` | instances replaced by supervision |
| ``actor_mailbox`` | gauge | ``actor`` | messages waiting in a mailbox |

A per-peer or per-actor figure the running build does not count is left out rather than
reported as zero.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from actors._control import NodeStatus, node_status

if TYPE_CHECKING:
    from actors._system import ActorSystem

__all__ = ["MetricsUnavailableError", "NodeCollector", "serve_metrics"]

logger = logging.getLogger(__name__)

_PEER_COUNTERS = (
    ("packets_in", "peer_packets_in", "Packets received from the peer."),
    ("packets_out", "peer_packets_out", "Packets sent or queued for the peer."),
    ("bytes_in", "peer_bytes_in", "Frame bytes received from the peer."),
    ("bytes_out", "peer_bytes_out", "Frame bytes sent to the peer."),
    ("dropped", "peer_dropped", "Packets refused for the peer."),
    ("reconnects", "peer_reconnects", "Connections to the peer re-established after a drop."),
)
_ACTOR_COUNTERS = (
    ("handled", "actor_handled", "Messages given to the actor's handlers."),
    ("failed", "actor_failed", "Messages the actor's handlers raised on."),
    ("restarts", "actor_restarts", "Times supervision replaced the actor's instance."),
)
_PEER_GAUGE = ("queued", "peer_queued", "Packets waiting in the peer's reconnect queue.")
_ACTOR_GAUGE = ("mailbox", "actor_mailbox", "Messages waiting in the actor's mailbox.")


class MetricsUnavailableError(RuntimeError):
    """prometheus-client is not installed (install the ``metrics`` extra)."""


class NodeCollector:
    """A prometheus-client collector that reports one actor system's `NodeStatus`.

    A scrape runs in prometheus-client's server thread; the snapshot itself is taken on the
    system's event loop (the thread waits for it), so it never reads the system's tables while
    the loop changes them.

    Args:
        system: The actor system to report on.
        loop: The event loop the system runs on.
        timeout: Seconds a scrape waits for the loop before it fails.
    """

    def __init__(
        self, system: ActorSystem, loop: asyncio.AbstractEventLoop, timeout: float = 5.0
    ) -> None:
        self._system = system
        self._loop = loop
        self._timeout = timeout

    def describe(self) -> list[Any]:
        """No up-front description: the families are built per scrape (labels vary)."""
        return []

    def collect(self) -> Iterator[Any]:
        """Build every metric family from a fresh snapshot.

        Yields:
            prometheus-client metric families.
        """
        yield from metric_families(self._snapshot())

    def _snapshot(self) -> NodeStatus:
        async def take() -> NodeStatus:
            return node_status(self._system)

        future = asyncio.run_coroutine_threadsafe(take(), self._loop)
        return future.result(self._timeout)


def metric_families(status: NodeStatus) -> Iterator[Any]:
    """The Prometheus metric families for one snapshot.

    Args:
        status: The node's snapshot.

    Yields:
        prometheus-client ``GaugeMetricFamily`` / ``CounterMetricFamily`` objects.
    """
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    node = status.node_id

    def gauge(name: str, doc: str, value: float) -> Any:
        family = GaugeMetricFamily(f"masterless_{name}", doc, labels=["node"])
        family.add_metric([node], value)
        return family

    yield gauge("up", "1 while the node runs.", 1)
    yield gauge("peers", "Peers connected now.", len(status.peers))
    yield gauge("actors", "Actors running (the control actor not counted).", len(status.actors))
    yield gauge("pending_asks", "Asks waiting for a reply.", status.pending_asks)

    members = GaugeMetricFamily(
        "masterless_members", "Cluster members by status.", labels=["node", "status"]
    )
    for member_status, count in sorted(Counter(m.status for m in status.members).items()):
        members.add_metric([node, member_status], count)
    yield members

    dead = CounterMetricFamily(
        "masterless_dead_letters", "Dead letters by reason.", labels=["node", "reason"]
    )
    for reason, count in status.dead_letters.items():
        dead.add_metric([node, reason], count)
    yield dead

    peers = [(peer.id, peer) for peer in status.peer_stats]
    yield from _per_row(node, "peer", peers, _PEER_COUNTERS, _PEER_GAUGE)
    actors = [(actor.name, actor) for actor in status.actors]
    yield from _per_row(node, "actor", actors, _ACTOR_COUNTERS, _ACTOR_GAUGE)


def _per_row(
    node: str,
    label: str,
    rows: list[tuple[str, Any]],
    counters: tuple[tuple[str, str, str], ...],
    gauge: tuple[str, str, str],
) -> Iterator[Any]:
    """One counter family per ``(field, name, doc)`` and the gauge, with a sample per row
    (labelled ``label`` = the row's key) whose field is not None."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    kinds: list[tuple[Any, tuple[str, str, str]]]
    kinds = [(CounterMetricFamily, spec) for spec in counters] + [(GaugeMetricFamily, gauge)]
    for kind, (field, name, doc) in kinds:
        family = kind(f"masterless_{name}", doc, labels=["node", label])
        for key, row in rows:
            value = getattr(row, field)
            if value is not None:
                family.add_metric([node, key], value)
        yield family


class MetricsServer:
    """A running metrics endpoint; `close` stops it.

    Attributes:
        host: The address it listens on.
        port: The port it listens on (the one picked, when 0 was asked for).
    """

    def __init__(self, server: Any, thread: Any, registry: Any, host: str) -> None:
        self._server = server
        self._thread = thread
        self._registry = registry
        self.host = host
        self.port: int = server.server_port

    @property
    def url(self) -> str:
        """``http://host:port/metrics``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5.0)


def serve_metrics(system: ActorSystem, host: str, port: int) -> MetricsServer:
    """Serve ``system``'s metrics in Prometheus' text format at ``http://host:port/metrics``.

    The server runs in a daemon thread (prometheus-client's ``start_http_server``) with its own
    registry holding only this node's collector. Call it from the system's event loop.

    Args:
        system: The actor system to report on.
        host: The address to listen on.
        port: The port; 0 picks a free one (see `MetricsServer.port`).

    Returns:
        The running server.

    Raises:
        MetricsUnavailableError: prometheus-client is not installed.
        OSError: The port cannot be bound.
    """
    try:
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError as exc:
        raise MetricsUnavailableError(
            "--metrics-port needs prometheus-client: pip install 'masterless[metrics]'"
        ) from exc
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(system, asyncio.get_running_loop()))
    server, thread = start_http_server(port, addr=host, registry=registry)
    metrics = MetricsServer(server, thread, registry, host)
    logger.info("metrics for %s at %s", system.id, metrics.url)
    return metrics
