"""Every program under docs/snippets/ runs, and prints what the pages say it prints.

The Quickstart and Guides pages include their Python code from ``docs/snippets/`` (checked by
``test_docs_pages.py``). Here each of those files is executed as its own process, the way a
reader would run it, with a timeout. Where a page shows a ``console`` block such as

    $ python docs/snippets/quickstart.py
    total: 6

the command is run and its output must equal the lines shown. Programs that need more than one
command (two processes, certificates) have a dedicated test below.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from certificates import CertificateAuthority

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
SNIPPETS = DOCS / "snippets"
RUN_TIMEOUT = 60.0
PAGES = sorted([DOCS / "index.md", DOCS / "quickstart.md", *(DOCS / "guides").glob("*.md")])
EXECUTED_PAGES = [page for page in PAGES if page.name != "index.md"]

CONSOLE = re.compile(r"^```console[^\n]*\n(?P<body>.*?)^```\s*$", re.M | re.S)
SNIPPET_COMMAND = re.compile(r"^python docs/snippets/(?P<file>[\w-]+\.py)$")

# Console commands on the Quickstart and Guides pages that are not a plain snippet run, and
# the test below that runs what they show.
COVERED_ELSEWHERE = {
    "MASTERLESS_ID=node-a": "test_deployment_nodes_find_each_other",
    "MASTERLESS_ID=node-b": "test_deployment_nodes_find_each_other",
    "python docs/snippets/security_tls.py": "test_tls_snippet",
    "python examples/counter_pingpong.py --limit": "test_pingpong_in_one_process",
    "python examples/counter_pingpong.py --role left": "test_pingpong_across_two_processes",
    "python examples/counter_pingpong.py --role right": "test_pingpong_across_two_processes",
    # tests/cli runs these for real (run, status, ping, the worker pool) and checks that every
    # masterless command on the running guide parses and names a factory that loads.
    "masterless ": "test_every_masterless_command_on_the_guide_is_valid",
}
DEDICATED = {"deployment_node.py", "security_tls.py"}
BAD_STDERR = ("Traceback", "ResourceWarning", "was destroyed but it is pending", "never awaited")


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MASTERLESS_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _python() -> list[str]:
    return [sys.executable, "-X", "dev", "-W", "error::ResourceWarning"]


def console_commands(page: Path) -> Iterator[tuple[str, list[str]]]:
    """(command, expected output lines) for each ``$ command`` in the page's console blocks."""
    text = page.read_text(encoding="utf-8")
    for block in CONSOLE.finditer(text):
        command: str | None = None
        output: list[str] = []
        continued = False
        for line in block["body"].splitlines():
            if continued and command is not None:
                command += " " + line.strip().rstrip("\\").strip()
                continued = line.rstrip().endswith("\\")
                continue
            if line.startswith("$ "):
                if command is not None:
                    yield command, output
                command = line[2:].split("  #")[0].rstrip().rstrip("\\").strip()
                continued = line.rstrip().endswith("\\")
                output = []
            elif command is not None and line.strip() and not line.startswith("#"):
                output.append(line.rstrip())
        if command is not None:
            yield command, output


def snippet_runs() -> list[tuple[str, str, list[str]]]:
    runs = []
    for page in PAGES:
        for command, output in console_commands(page):
            match = SNIPPET_COMMAND.match(command)
            if match:
                runs.append((page.relative_to(DOCS).as_posix(), match["file"], output))
    return runs


def run_snippet(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*_python(), str(SNIPPETS / name), *args],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"{name} failed:\n{result.stdout}\n{result.stderr}"
    for bad in BAD_STDERR:
        assert bad not in result.stderr, f"{name} printed {bad!r}:\n{result.stderr}"
    return result


@pytest.mark.parametrize(("page", "snippet", "expected"), snippet_runs())
def test_snippet_prints_what_the_page_shows(page: str, snippet: str, expected: list[str]) -> None:
    result = run_snippet(snippet)
    assert result.stdout.splitlines() == expected, f"{snippet}, as shown on {page}"


def test_every_snippet_is_executed() -> None:
    shown = {snippet for _, snippet, _ in snippet_runs()}
    files = {path.name for path in SNIPPETS.glob("*.py")}
    assert files, "no snippets found"
    missing = files - shown - DEDICATED
    assert not missing, f"snippets no test runs (add a console block showing the output): {missing}"


@pytest.mark.parametrize("page", EXECUTED_PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_every_console_command_is_executed(page: Path) -> None:
    for command, _ in console_commands(page):
        if SNIPPET_COMMAND.match(command):
            continue
        covered = [prefix for prefix in COVERED_ELSEWHERE if command.startswith(prefix)]
        assert covered, f"{page.name}: no test runs the command {command!r}"


# --- TLS ----------------------------------------------------------------------------------------


def _write_certificates(directory: Path) -> None:
    """ca.pem and node-a/node-b certificates for 127.0.0.1, under the names the snippet reads."""
    authority = CertificateAuthority("docs", directory)
    shutil.copyfile(authority.ca_file, directory / "ca.pem")
    for node in ("node-a", "node-b"):
        key_file, cert_file = authority.issue(node)
        shutil.copyfile(key_file, directory / f"{node}.key")
        shutil.copyfile(cert_file, directory / f"{node}.pem")


def test_tls_snippet(tmp_path: Path) -> None:
    _write_certificates(tmp_path)
    result = run_snippet("security_tls.py", str(tmp_path))
    assert result.stdout.splitlines() == ["node-a connected to node-b over TLS"]


# --- several machines ---------------------------------------------------------------------------


class _Process:
    """A snippet run in the background whose stdout lines are read with a deadline."""

    def __init__(self, program: str, env: dict[str, str], *args: str) -> None:
        self.popen = subprocess.Popen(
            [*_python(), str(SNIPPETS / program), *args],
            cwd=ROOT,
            env={**_env(), **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.seen: list[str] = []
        self.stderr: list[str] = []
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._pumps = [
            threading.Thread(target=self._pump_stdout, args=(self.popen.stdout,), daemon=True),
            threading.Thread(target=self.stderr.extend, args=(self.popen.stderr,), daemon=True),
        ]
        for pump in self._pumps:
            pump.start()

    def _pump_stdout(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float = 30.0) -> str:
        """Wait for the next stdout line starting with ``prefix``; return it."""
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                pytest.fail(f"no {prefix!r} line within {timeout} s; saw {self.seen}")
            if line is None:
                pytest.fail(f"process ended before printing {prefix!r}; saw {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line

    def stop(self, *, terminate: bool = True) -> tuple[int, str]:
        """SIGTERM the process (unless told not to) and wait for it; return status and stderr."""
        if terminate and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            returncode = self.popen.wait(timeout=RUN_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            returncode = self.popen.wait()
        for pump in self._pumps:
            pump.join(timeout=RUN_TIMEOUT)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        return returncode, "".join(self.stderr)


def test_deployment_nodes_find_each_other() -> None:
    """The two-machine walk-through, on loopback: a seed node, and a node dialling it."""
    cookie = "a shared secret for the docs test"
    seed = _Process(
        "deployment_node.py",
        {"MASTERLESS_ID": "node-a", "MASTERLESS_PORT": "0", "MASTERLESS_COOKIE": cookie},
    )
    other: _Process | None = None
    try:
        uri = seed.expect("listening on ").removeprefix("listening on ")
        assert uri.startswith("tcp://127.0.0.1:")
        other = _Process(
            "deployment_node.py",
            {
                "MASTERLESS_ID": "node-b",
                "MASTERLESS_PORT": "0",
                "MASTERLESS_COOKIE": cookie,
                "MASTERLESS_SEEDS": uri,
            },
        )
        other.expect("listening on ")
        assert other.expect("node up: ") == "node up: node-a"
        assert seed.expect("node up: ") == "node up: node-b"
    finally:
        results = [process.stop() for process in (other, seed) if process is not None]
    for returncode, stderr in results:
        assert returncode == 0, stderr
        for bad in BAD_STDERR:
            assert bad not in stderr, stderr
    assert seed.expect("stopped") == "stopped"


# --- the ping-pong guide ------------------------------------------------------------------------

PINGPONG = ROOT / "examples" / "counter_pingpong.py"


def test_pingpong_in_one_process() -> None:
    result = subprocess.run(
        [*_python(), str(PINGPONG), "--limit", "1000"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("[left] listening on tcp://127.0.0.1:")
    assert lines[1].startswith("[right] connected to tcp://127.0.0.1:")
    assert any(line.startswith("[left] done: 1000 hops in ") for line in lines), lines
    assert any(line.startswith("[right] done: 1000 hops in ") for line in lines), lines


def test_pingpong_across_two_processes() -> None:
    """The guide's two commands, with port 0 instead of 9000 so the test never collides."""
    left = _Process(str(PINGPONG), {}, "--role", "left", "--port", "0", "--limit", "1000")
    right: _Process | None = None
    finished = False
    try:
        uri = left.expect("[left] listening on ").removeprefix("[left] listening on ")
        right = _Process(str(PINGPONG), {}, "--role", "right", "--connect", uri, "--limit", "1000")
        assert right.expect("[right] connected to ") == f"[right] connected to left at {uri}"
        assert right.expect("[right] done: ").startswith("[right] done: 1000 hops in ")
        assert left.expect("[left] done: ").startswith("[left] done: 1000 hops in ")
        finished = True
    finally:
        # After a full game both exit by themselves; after a failure, stop them.
        results = [
            process.stop(terminate=not finished) for process in (right, left) if process is not None
        ]
    for returncode, stderr in results:
        assert returncode == 0, stderr
