"""The counter ping-pong example, run the way a user runs it: as separate processes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SUMMARY = re.compile(r"\[(left|right)\] done: (\d+) hops in ([\d.]+) s \(([\d,]+) hops/s\)")


def run(script: str, *args: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
        check=False,
    )


def summaries(output: str) -> dict[str, int]:
    return {role: int(hops) for role, hops, _, _ in SUMMARY.findall(output)}


def test_one_process_two_systems() -> None:
    result = run("counter_pingpong.py", "--limit", "500", "--every", "100", "--timeout", "30")
    assert result.returncode == 0, result.stderr
    assert summaries(result.stdout) == {"left": 500, "right": 500}
    progress = re.findall(r"\[(?:left|right)\] hop (\d+)", result.stdout)
    assert [int(hop) for hop in progress] == [100, 200, 300, 400]
    assert "listening on tcp://127.0.0.1:" in result.stdout


def test_two_processes_through_the_demo_launcher() -> None:
    result = run("demo.py", "--limit", "400", "--every", "100", "--timeout", "30")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summaries(result.stdout) == {"left": 400, "right": 400}
    assert re.search(
        r"^ left \| \[left\] listening on tcp://127\.0\.0\.1:\d+$", result.stdout, re.M
    )
    assert re.search(r"^right \| \[right\] connected to left at tcp://", result.stdout, re.M)
    assert "demo: both nodes finished" in result.stdout


def test_right_role_fails_cleanly_when_nobody_listens() -> None:
    result = run(
        "counter_pingpong.py",
        "--role",
        "right",
        "--connect",
        "tcp://127.0.0.1:1",
        "--timeout",
        "10",
        timeout=30,
    )
    assert result.returncode == 1
    assert "[right] failed:" in result.stderr
    assert "Traceback" not in result.stderr
