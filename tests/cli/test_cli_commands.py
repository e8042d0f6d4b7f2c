"""The real ``masterless`` command: --help, run until a signal, status and ping."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import DEADLINE, HERE, MASTERLESS, env, masterless, running

from actors import ActorSystem

COMMANDS = [[], ["run"], ["status"], ["ping"]]


def test_the_console_script_is_installed() -> None:
    assert MASTERLESS.is_file(), f"{MASTERLESS} missing: reinstall with pip install -e ."


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(["masterless", *c]))
def test_every_command_has_help(command: list[str]) -> None:
    result = masterless(*command, "--help")
    assert result.returncode == 0, result.stderr
    usage = " ".join(["masterless", *command])
    assert result.stdout.startswith(f"usage: {usage}"), result.stdout
    assert result.stderr == ""


def test_python_dash_m_actors_is_the_same_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "actors", "--help"],
        cwd=HERE,
        env=env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == masterless("--help").stdout


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_run_stops_gracefully_on_a_signal(tmp_path: Path, signum: signal.Signals) -> None:
    stop_file = tmp_path / "stopped"
    with running("cli_app:recorder", "--id", "node-sig", CLI_TEST_STOP_FILE=str(stop_file)) as node:
        assert not stop_file.exists()
        status = node.signal(signum)
        assert status == 0, node.stderr
        assert stop_file.read_text(encoding="utf-8") == "stopped node-sig\n"
        messages = [r["msg"] for r in node.records]
        assert f"{signum.name} received: stopping" in messages
        assert messages[-1] == "node node-sig stopped"


def test_an_async_factory_is_awaited_and_python_m_runs_it(tmp_path: Path) -> None:
    stop_file = tmp_path / "stopped"
    with running(
        "cli_app:async_recorder",
        "--id",
        "node-async",
        module_runner=True,
        CLI_TEST_STOP_FILE=str(stop_file),
    ) as node:
        assert "with actors recorder" in node.records[-1]["msg"]
        assert node.signal() == 0, node.stderr
        assert stop_file.read_text(encoding="utf-8") == "stopped node-async\n"
        assert "Traceback" not in node.stderr


async def test_a_peer_sees_a_clean_close_when_the_node_is_terminated() -> None:
    with running("cli_app:recorder", "--id", "node-leaving") as node:
        async with ActorSystem("watcher") as watcher:
            downs: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
            watcher.on("node_down", lambda peer, reason: downs.put_nowait((peer, reason)))
            assert await watcher.connect(node.uri) == "node-leaving"
            node.popen.send_signal(signal.SIGTERM)
            peer, reason = await asyncio.wait_for(downs.get(), timeout=30)
            assert (peer, reason) == ("node-leaving", "closed")
            assert await asyncio.to_thread(node.wait) == 0


def test_json_logs_are_one_object_per_line() -> None:
    with running("cli_app:recorder", "--id", "node-json", "--log-level", "debug") as node:
        assert node.signal() == 0
    lines = node.stderr.splitlines()
    assert len(lines) >= 5
    for line in lines:
        record = json.loads(line)
        assert set(record) >= {"time", "level", "logger", "node", "msg"}, record
        assert record["node"] == "node-json"
        assert record["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
    levels = {json.loads(line)["level"] for line in lines}
    assert "DEBUG" in levels
    loggers = {json.loads(line)["logger"] for line in lines}
    assert {"transport", "actors._system", "actors._cli"} <= loggers


def test_status_prints_the_nodes_snapshot() -> None:
    with running("cli_app:recorder", "--id", "node-status") as node:
        result = masterless("status", node.uri, "--json")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["node_id"] == "node-status"
        assert status["uri"] == node.uri
        assert status["actors"] == [
            {"name": "recorder", "handled": 0, "failed": 0, "restarts": 0, "mailbox": 0}
        ]
        # The status command's own short-lived node is the one peer while it asks.
        assert len(status["peers"]) == 1
        assert status["peers"][0].startswith("masterless-cli-")
        (cli_peer,) = status["peer_stats"]
        assert cli_peer["id"] == status["peers"][0] and cli_peer["connected"]
        # The status request itself arrived; its reply is sent after the snapshot.
        assert (cli_peer["packets_in"], cli_peer["packets_out"]) == (1, 0)
        assert cli_peer["bytes_in"] > 0 and cli_peer["bytes_out"] > 0
        # `masterless run` always takes part in the cluster: a lone node is its one member
        # (the status command's node is a plain peer, not a member).
        assert status["members"] == [{"id": "node-status", "uri": node.uri, "status": "up"}]
        assert status["groups"] == {}
        assert status["pending_asks"] == 0 and status["dead_letters"] == {}

        text = masterless("status", node.uri)
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert lines[0] == "node:         node-status"
        assert lines[1] == f"uri:          {node.uri}"
        assert "actors:       1" in lines
        assert re.search(r"^  recorder\s", text.stdout, re.M)
        assert node.signal() == 0


def _status_until(uri: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """``status --json`` of ``uri``, asked again until ``done`` holds (gossip is eventual)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = masterless("status", uri, "--json")
        assert result.returncode == 0, result.stderr
        status: dict[str, Any] = json.loads(result.stdout)
        if done(status):
            return status
        assert time.monotonic() < deadline, f"status of {uri} never settled: {status}"


def test_status_shows_the_members_and_groups_of_a_two_node_cluster() -> None:
    with (
        running("cli_app:grouped_recorder", "--id", "node-a") as a,
        running("cli_app:grouped_recorder", "--id", "node-b", "--seed", a.uri) as b,
    ):
        expected_members = [
            {"id": "node-a", "uri": a.uri, "status": "up"},
            {"id": "node-b", "uri": b.uri, "status": "up"},
        ]
        expected_groups = {"recorders": ["node-a/recorder", "node-b/recorder"]}
        for node in (a, b):
            status = _status_until(
                node.uri,
                lambda s: s["members"] == expected_members and s["groups"] == expected_groups,
            )
            assert status["members"] == expected_members
            assert status["groups"] == expected_groups
        text = masterless("status", a.uri)
        assert text.returncode == 0, text.stderr
        lines = text.stdout.splitlines()
        assert "members:      2" in lines
        assert re.search(rf"^  node-b\s+up\s+{re.escape(b.uri)}$", text.stdout, re.M)
        assert "groups:       1" in lines
        assert "  recorders: node-a/recorder, node-b/recorder" in lines
        assert b.signal() == 0, b.stderr
        assert a.signal() == 0, a.stderr


def test_ping_prints_round_trip_times() -> None:
    with running("cli_app:recorder", "--id", "node-ping") as node:
        result = masterless("ping", node.uri, "-n", "3", "--interval", "0")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 4, lines
        for seq, line in enumerate(lines[:3], start=1):
            assert re.fullmatch(rf"reply from node-ping: seq={seq} time=\d+\.\d{{3}} ms", line)
        summary = re.fullmatch(
            r"3 pings to node-ping: min (\S+) ms, median (\S+) ms, max (\S+) ms", lines[3]
        )
        assert summary, lines[3]
        low, median, high = map(float, summary.groups())
        times = sorted(float(line.split("time=")[1].split()[0]) for line in lines[:3])
        assert (low, median, high) == (times[0], times[1], times[2])
        assert node.signal() == 0


def test_status_and_ping_with_a_cookie(tmp_path: Path) -> None:
    cookie = tmp_path / "cookie"
    cookie.write_text("s3cret\n", encoding="utf-8")
    with running("cli_app:recorder", "--id", "node-cookie", "--cookie-file", str(cookie)) as node:
        result = masterless("status", node.uri, "--json", "--cookie-file", str(cookie))
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["node_id"] == "node-cookie"
        # The cookie file may also come from the environment.
        result = masterless("ping", node.uri, "-n", "1", MASTERLESS_COOKIE_FILE=str(cookie))
        assert result.returncode == 0, result.stderr
        assert node.signal() == 0


def test_run_until_signal_gives_a_user_program_the_same_stop(tmp_path: Path) -> None:
    stop_file = tmp_path / "stopped"
    program = subprocess.Popen(
        [sys.executable, "-X", "dev", str(HERE / "user_program.py")],
        cwd=HERE,
        env=env(PYTHONPATH=f"{HERE}:{env()['PYTHONPATH']}", CLI_TEST_STOP_FILE=str(stop_file)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert program.stdout is not None
        ready = program.stdout.readline().split()
        assert ready[0] == "ready", ready
        status = masterless("status", ready[1], "--json")
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["node_id"] == "user-program"
        program.send_signal(signal.SIGTERM)
        out, err = program.communicate(timeout=30)
        assert program.returncode == 0, err
        assert out.splitlines() == ["stopped by SIGTERM closed True"]
        assert stop_file.read_text(encoding="utf-8") == "stopped user-program\n"
        assert "Traceback" not in err
    finally:
        if program.poll() is None:
            program.kill()
        program.communicate(timeout=30)
