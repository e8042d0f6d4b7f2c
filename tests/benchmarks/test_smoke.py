"""The benchmark suite's smoke mode still runs and produces its table (no speed is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(90)
def test_smoke_mode_prints_and_writes_the_table(tmp_path: Path) -> None:
    json_path = tmp_path / "smoke.json"
    md_path = tmp_path / "smoke.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--smoke",
            "--json",
            str(json_path),
            "--markdown",
            str(md_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=75,
        # No network installs from a test: the seed row is skipped unless already installed.
        env={**os.environ, "MASTERLESS_BENCH_INSTALL": "0"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "| section | measurement | figure | raw baseline | ratio | note |" in done.stdout
    assert "raw asyncio one-way" in done.stdout
    results = json.loads(json_path.read_text())
    names = {row["name"] for row in results["rows"]}
    assert {"raw asyncio ping-pong", "Node.send one-way, 40 B", "tell, two processes"} <= names
    # The codec section: masterless's own encode and decode, each a baseline for the others.
    codec = [row for row in results["rows"] if row["section"] == "codec"]
    baselines = [row for row in codec if "(baseline)" in row["name"]]
    assert len(baselines) == 2 and all(row["value"] > 0 for row in baselines)
    assert all(row["ratio"] is not None for row in codec if row["value"] and row not in baselines)
    statuses = {target["status"] for target in results["targets"]}
    assert statuses <= {"PASS", "MISS", "SKIP"}
    assert "| target | measured | result |" in md_path.read_text()
