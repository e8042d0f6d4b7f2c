"""Run the real ``masterless`` command as a subprocess, with deadlines, and read its JSON logs."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# The console script pip installed beside the interpreter running the tests.
MASTERLESS = Path(sys.executable).with_name("masterless")
DEADLINE = 30.0
RUNNING = re.compile(r"^node (?P<id>\S+) running at (?P<uri>tcp://\S+) with actors")
METRICS = re.compile(r" at (?P<url>http://\S+/metrics)$")
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING) ")
BAD_STDERR = ("Traceback", "ResourceWarning", "was destroyed but it is pending", "never awaited")


def env(**extra: str) -> dict[str, str]:
    """The test environment, without MASTERLESS_* variables, plus ``extra``."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("MASTERLESS_")}
    base["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), base.get("PYTHONPATH")]))
    return {**base, **extra}


def masterless(
    *args: str, timeout: float = DEADLINE, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """Run ``masterless ARGS`` to completion (cwd: tests/cli) and return the result."""
    return subprocess.run(
        [str(MASTERLESS), *args],
        cwd=HERE,
        env=env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class NodeProcess:
    """``masterless run ... --log-format json`` in the background; its log records are parsed."""

    def __init__(self, *args: str, module_runner: bool = False, **extra_env: str) -> None:
        program = (
            [sys.executable, "-X", "dev", "-m", "actors"] if module_runner else [str(MASTERLESS)]
        )
        self.popen = subprocess.Popen(
            [*program, "run", *args, "--log-format", "json"],
            cwd=HERE,
            env=env(**extra_env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.records: list[dict[str, Any]] = []
        self.raw_stderr: list[str] = []
        self.stdout: list[str] = []
        self._new: queue.Queue[dict[str, Any] | None] = queue.Queue()
        assert self.popen.stderr is not None and self.popen.stdout is not None
        self._pumps = [
            threading.Thread(target=self._pump_stderr, daemon=True),
            threading.Thread(target=self._pump_stdout, daemon=True),
        ]
        for pump in self._pumps:
            pump.start()
        self.uri = ""
        self.id = ""

    def _pump_stderr(self) -> None:
        assert self.popen.stderr is not None
        for line in self.popen.stderr:
            self.raw_stderr.append(line)
            try:
                record = json.loads(line)
            except ValueError:
                continue
            self.records.append(record)
            self._new.put(record)
        self._new.put(None)

    def _pump_stdout(self) -> None:
        assert self.popen.stdout is not None
        self.stdout.extend(self.popen.stdout)

    def expect(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = DEADLINE
    ) -> dict[str, Any]:
        """Wait for the next log record that satisfies ``predicate``."""
        while True:
            try:
                record = self._new.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(
                    f"no matching log record within {timeout} s; stderr: {''.join(self.raw_stderr)}"
                ) from None
            if record is None:
                status = self.popen.poll()
                raise AssertionError(f"process exited ({status}) first; stderr: {self.stderr}")
            if predicate(record):
                return record

    def wait_running(self) -> NodeProcess:
        """Wait for the "node X running at URI" record; set ``id`` and ``uri``."""
        record = self.expect(lambda r: RUNNING.match(r["msg"]) is not None)
        match = RUNNING.match(record["msg"])
        assert match is not None
        self.id, self.uri = match["id"], match["uri"]
        return self

    def signal(self, signum: int = signal.SIGTERM) -> int:
        """Send ``signum`` and return the exit status (within the deadline)."""
        self.popen.send_signal(signum)
        return self.wait()

    def wait(self, timeout: float = DEADLINE) -> int:
        status = self.popen.wait(timeout=timeout)
        for pump in self._pumps:
            pump.join(timeout=timeout)
        return status

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=DEADLINE)
        for pump in self._pumps:
            pump.join(timeout=DEADLINE)
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()

    @property
    def stderr(self) -> str:
        return "".join(self.raw_stderr)


@contextmanager
def running(*args: str, **kwargs: Any) -> Iterator[NodeProcess]:
    """A started node (wait_running done); killed on exit whatever happened."""
    node = NodeProcess(*args, **kwargs)
    try:
        yield node.wait_running()
    finally:
        node.kill()


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """Exit status 2, and one error line naming the problem: stderr's last line, after at most
    the node's log lines (``run`` logs at info by default); no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    for bad in BAD_STDERR:
        assert bad not in result.stderr, result.stderr
    errors = [line for line in lines if line.startswith("masterless")]
    assert len(errors) == 1, result.stderr
    line = errors[0]
    assert lines[-1] == line, result.stderr
    assert all(LOG_LINE.match(other) for other in lines[:-1]), result.stderr
    for word in words:
        assert word in line, (word, line)
    return line
