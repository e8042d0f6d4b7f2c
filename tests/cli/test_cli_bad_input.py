"""Bad input ends the command with one line on stderr naming the problem, and exit status 2."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import assert_one_line_error, masterless, running

RUN = ("run", "--id", "bad-node")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("no_such_module:factory",), ["cannot import module 'no_such_module'", "not found"]),
        (("broken_module:factory",), ["importing module 'broken_module' failed", "ImportError"]),
        (("cli_app:missing",), ["module 'cli_app' has no attribute 'missing'"]),
        (("cli_app:not_callable",), ["cli_app:not_callable is not callable"]),
        (("cli_app",), ["factory must be MODULE:FACTORY"]),
        (("cli_app:failing",), ["factory cli_app:failing failed", "the factory broke on purpose"]),
        (("cli_app:recorder", "--seed", "http://x:1"), ["bad --seed", "tcp://host:port"]),
        (("cli_app:recorder", "--seed", "tcp://nowhere"), ["bad --seed"]),
        (("cli_app:recorder", "--advertise", "nonsense"), ["bad --advertise"]),
        (("cli_app:recorder", "--port", "70000"), ["--port", "0..65535"]),
        (("cli_app:recorder", "--log-level", "loud"), ["unknown log level 'loud'"]),
        (("cli_app:recorder", "--log-format", "xml"), ["--log-format", "invalid choice"]),
        (("cli_app:recorder", "--cookie-file", "/nonexistent/cookie"), ["cannot read cookie"]),
        (("cli_app:recorder", "--tls-cert", "c.pem"), ["TLS needs all three"]),
        (("cli_app:recorder", "--host", "0.0.0.0"), ["refusing to listen", "without a cookie"]),
    ],
    ids=lambda value: value[0] if isinstance(value, tuple) else None,
)
def test_run_rejects_bad_input(args: tuple[str, ...], words: list[str]) -> None:
    assert_one_line_error(masterless(*RUN, *args), *words)


def test_run_without_an_id_is_a_usage_error() -> None:
    assert_one_line_error(
        masterless("run", "cli_app:recorder"), "--id", "see masterless run --help"
    )


def test_an_unknown_command_is_a_usage_error() -> None:
    assert_one_line_error(masterless("fly"), "invalid choice: 'fly'")


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_run_on_a_port_in_use(busy_port: int) -> None:
    result = masterless(*RUN, "cli_app:recorder", "--port", str(busy_port))
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{busy_port}", "in use")


def test_run_with_metrics_on_a_port_in_use(busy_port: int) -> None:
    result = masterless(*RUN, "cli_app:recorder", "--metrics-port", str(busy_port))
    assert_one_line_error(result, f"cannot serve metrics on 127.0.0.1:{busy_port}")


def _cookie(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_an_empty_cookie_file(tmp_path: Path) -> None:
    result = masterless(*RUN, "cli_app:recorder", "--cookie-file", _cookie(tmp_path, "c", "\n"))
    assert_one_line_error(result, "is empty")


def test_run_with_a_seed_that_holds_another_cookie(tmp_path: Path) -> None:
    right, wrong = _cookie(tmp_path, "right", "right"), _cookie(tmp_path, "wrong", "wrong")
    with running("cli_app:recorder", "--id", "seed-node", "--cookie-file", right) as seed:
        result = masterless(*RUN, "cli_app:recorder", "--seed", seed.uri, "--cookie-file", wrong)
        assert_one_line_error(result, seed.uri, "authentication with", "cookie")
        assert seed.signal() == 0


@pytest.mark.parametrize("command", ["status", "ping"])
def test_status_and_ping_with_a_wrong_or_missing_cookie(tmp_path: Path, command: str) -> None:
    right, wrong = _cookie(tmp_path, "right", "right"), _cookie(tmp_path, "wrong", "wrong")
    with running("cli_app:recorder", "--id", "guarded", "--cookie-file", right) as node:
        assert_one_line_error(
            masterless(command, node.uri, "--cookie-file", wrong), "authentication with", "cookie"
        )
        assert_one_line_error(masterless(command, node.uri), "authentication with", "cookie")
        assert node.signal() == 0


@pytest.mark.parametrize("command", ["status", "ping"])
@pytest.mark.parametrize("uri", ["127.0.0.1:9000", "tcp://:9000", "tcp://h:port"])
def test_status_and_ping_with_a_bad_uri(command: str, uri: str) -> None:
    assert_one_line_error(masterless(command, uri), "bad uri", repr(uri))


def test_status_of_a_port_nobody_listens_on(busy_port: int) -> None:
    # A listening socket that never answers the handshake: the connect times out.
    result = masterless("status", f"tcp://127.0.0.1:{busy_port}", "--timeout", "0.5")
    assert_one_line_error(result, f"connecting to tcp://127.0.0.1:{busy_port} timed out")


def test_status_of_a_closed_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = masterless("status", f"tcp://127.0.0.1:{port}")
    assert_one_line_error(result, f"cannot connect to tcp://127.0.0.1:{port}", "Connection refused")


def test_ping_with_a_zero_count() -> None:
    assert_one_line_error(masterless("ping", "tcp://127.0.0.1:1", "-n", "0"), "at least 1")
