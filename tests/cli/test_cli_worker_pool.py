"""The worker-pool example: three ``masterless run`` processes, as ``make demo-cluster`` runs it."""

from __future__ import annotations

import subprocess
import sys

from cli_helpers import ROOT, env


def test_demo_cluster_runs_the_pool_and_stops_every_node_cleanly() -> None:
    result = subprocess.run(
        [sys.executable, "-X", "dev", str(ROOT / "examples" / "worker_pool_demo.py")],
        cwd=ROOT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert any(line.startswith("coordinator | coordinator listening at tcp://") for line in lines)
    assert "coordinator | worker-1 joined the cluster" in lines
    assert "coordinator | worker-2 joined the cluster" in lines
    assert "coordinator | group workers: worker-1/worker, worker-2/worker" in lines
    assert "coordinator | done: 20 jobs (worker-1: 10, worker-2: 10), sum of squares 2870" in lines
    # Each worker's on_stop ran, and the coordinator saw both leave the cluster cleanly.
    assert "worker-1 | worker-1 stopping after 10 jobs" in lines
    assert "worker-2 | worker-2 stopping after 10 jobs" in lines
    assert "coordinator | worker-1 is down (left)" in lines
    assert "coordinator | worker-2 is down (left)" in lines
    assert lines[-1] == "demo-cluster: three nodes ran the pool and stopped cleanly"
    assert "Traceback" not in result.stdout + result.stderr
