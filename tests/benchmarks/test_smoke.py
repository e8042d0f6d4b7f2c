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
    # Pipelined asks at every depth, each beside the raw request/response of the same depth.
    rows = {(row["section"], row["name"]): row for row in results["rows"]}
    for depth in (1, 16, 256, 4096):
        raw = rows["pipeline", f"raw asyncio request/response, {depth} in flight"]
        ask = rows["pipeline", f"ask, two processes, {depth} in flight"]
        assert raw["value"] > 0 and ask["value"] > 0
        assert ask["baseline"] == raw["value"]
    # Latency percentiles of ask and tell, against the raw twin's at the same offered rate.
    for name in ("ask round trip", "tell delivery"):
        for q in ("p50", "p99", "p99.9"):
            assert rows["latency", f"{name} {q}"]["value"] > 0
            assert rows["latency", f"{name} {q}"]["ratio"] is not None
    # Opcodes per request: ask and tell beside the raw twins, counted (not timed).
    for name in ("tell, per message", "ask, 1 in flight", "ask, 256 in flight"):
        assert rows["opcodes", name]["value"] > 0 and rows["opcodes", name]["ratio"] > 0
    # Multi-dispatch encodes once whatever the fan-out: the same bytes per send for each.
    multi = [row for row in results["rows"] if "peers]) deliveries" in row["name"]]
    encoded = {row["note"].split(", ")[1] for row in multi}
    assert multi and len(encoded) == 1 and not encoded.pop().startswith(("0 B", "-")), multi
    group = [row for row in results["rows"] if row["section"] == "group"]
    assert len(group) == 3 and all(row["value"] > 0 for row in group)
    # Ray is never started by the smoke run: its rows say skipped, with the reason.
    ray = [row for row in results["rows"] if row["name"].startswith("Ray ")]
    assert len(ray) == 4 and all(row["note"].startswith("skipped: ") for row in ray)
    # The plot is written next to the JSON when matplotlib is there.
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "plot: not written: matplotlib not installed" in done.stdout
    else:
        assert json_path.with_suffix(".png").read_bytes().startswith(b"\x89PNG")
    statuses = {target["status"] for target in results["targets"]}
    assert statuses <= {"PASS", "MISS", "SKIP"}
    assert "| target | measured | result |" in md_path.read_text()
    # The spread over runs (here one) lists every target that was measured.
    spread = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--spread", str(json_path), str(json_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert spread.returncode == 0, spread.stderr
    measured = [t for t in results["targets"] if t["status"] != "SKIP"]
    for target in measured:
        assert f"| {target['text']} | " in spread.stdout
        assert f"{target['measured']}, {target['measured']} |" in spread.stdout


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["ray", "pykka", "thespian", "xoscar"])
def test_an_absent_peer_is_a_skip_with_its_reason(name: str) -> None:
    # The peer's import is made to fail, as when the package is not installed.
    code = (
        f"import sys; sys.modules[{name!r}] = None; sys.argv[1:] = [{name!r}, '10']; "
        "from benchmarks._peers import cli; cli()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=50
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert result == {"skip": f"{name} not installed (make bench-peers)"}
