"""--metrics-port serves the node's counters in Prometheus' text format."""

from __future__ import annotations

import re
import urllib.request

from cli_helpers import METRICS, masterless, running
from prometheus_client.parser import text_string_to_metric_families

from actors._control import ActorStatus, MemberStatus, NodeStatus, PeerStatus
from actors._metrics import metric_families


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def test_metrics_endpoint_is_scraped_and_parsed() -> None:
    with running("cli_app:recorder", "--id", "node-metrics", "--metrics-port", "0") as node:
        record = next(r for r in node.records if METRICS.search(r["msg"]))
        match = METRICS.search(record["msg"])
        assert match is not None
        url = match["url"]
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/metrics", url)

        samples = scrape(url)
        assert samples["masterless_up"] == [({"node": "node-metrics"}, 1.0)]
        assert samples["masterless_actors"] == [({"node": "node-metrics"}, 1.0)]
        assert samples["masterless_peers"] == [({"node": "node-metrics"}, 0.0)]
        assert samples["masterless_pending_asks"] == [({"node": "node-metrics"}, 0.0)]
        # A `masterless run` node is in the cluster: itself, up.
        assert samples["masterless_members"] == [({"node": "node-metrics", "status": "up"}, 1.0)]

        # A ping reaches the control actor: no dead letter, and the control actor is not
        # counted among the node's actors.
        assert masterless("ping", node.uri, "-n", "1").returncode == 0
        samples = scrape(url)
        assert samples["masterless_actors"] == [({"node": "node-metrics"}, 1.0)]
        assert "masterless_dead_letters_total" not in samples
        assert node.signal() == 0


def test_every_field_of_a_snapshot_becomes_a_sample() -> None:
    status = NodeStatus(
        node_id="n",
        uri="tcp://127.0.0.1:1",
        members=[
            MemberStatus(id="n", status="up"),
            MemberStatus(id="m", status="up"),
            MemberStatus(id="o", status="down"),
        ],
        peers=["m"],
        peer_stats=[
            PeerStatus(
                id="m",
                packets_in=3,
                packets_out=4,
                bytes_in=30,
                bytes_out=40,
                dropped=1,
                queued=2,
                reconnects=5,
            ),
            PeerStatus(id="o", connected=False),
        ],
        actors=[
            ActorStatus(name="a", handled=7, failed=1, restarts=2, mailbox=0),
            ActorStatus(name="b"),
        ],
        pending_asks=2,
        dead_letters={"unknown_actor": 3},
    )
    from prometheus_client import CollectorRegistry, generate_latest

    class Fixed:
        def collect(self):  # type: ignore[no-untyped-def]
            return metric_families(status)

    registry = CollectorRegistry(auto_describe=False)
    registry.register(Fixed())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    values = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    n = ("node", "n")
    assert values[("masterless_members", (n, ("status", "up")))] == 2
    assert values[("masterless_members", (n, ("status", "down")))] == 1
    assert values[("masterless_pending_asks", (n,))] == 2
    assert values[("masterless_dead_letters_total", (n, ("reason", "unknown_actor")))] == 3
    peer = (n, ("peer", "m"))
    assert values[("masterless_peer_packets_in_total", peer)] == 3
    assert values[("masterless_peer_packets_out_total", peer)] == 4
    assert values[("masterless_peer_bytes_in_total", peer)] == 30
    assert values[("masterless_peer_bytes_out_total", peer)] == 40
    assert values[("masterless_peer_dropped_total", peer)] == 1
    assert values[("masterless_peer_queued", peer)] == 2
    assert values[("masterless_peer_reconnects_total", peer)] == 5
    actor = (("actor", "a"), n)
    assert values[("masterless_actor_handled_total", actor)] == 7
    assert values[("masterless_actor_failed_total", actor)] == 1
    assert values[("masterless_actor_restarts_total", actor)] == 2
    assert values[("masterless_actor_mailbox", actor)] == 0
    # Figures the build does not count are left out, not reported as zero.
    assert not [key for key in values if ("peer", "o") in key[1] or ("actor", "b") in key[1]]
