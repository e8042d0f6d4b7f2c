"""TLS options end to end, and a signal that arrives while a seed is still unreachable."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from certificates import CertificateAuthority
from cli_helpers import assert_one_line_error, masterless, running


def test_run_status_and_ping_over_mutual_tls(tmp_path: Path) -> None:
    authority = CertificateAuthority("cli", tmp_path)
    node_key, node_cert = authority.issue("node")
    cli_key, cli_cert = authority.issue("cli")
    node_tls = ["--tls-cert", node_cert, "--tls-key", node_key, "--tls-ca", authority.ca_file]
    cli_tls = ["--tls-cert", cli_cert, "--tls-key", cli_key, "--tls-ca", authority.ca_file]
    with running("cli_app:recorder", "--id", "node-tls", *node_tls) as node:
        result = masterless("status", node.uri, "--json", *cli_tls)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["node_id"] == "node-tls"
        assert masterless("ping", node.uri, "-n", "1", *cli_tls).returncode == 0
        # Without a certificate from the mesh's CA, the TLS handshake fails.
        other = CertificateAuthority("other", tmp_path)
        bad_key, bad_cert = other.issue("intruder")
        bad_tls = ["--tls-cert", bad_cert, "--tls-key", bad_key, "--tls-ca", other.ca_file]
        result = masterless("status", node.uri, "--timeout", "2", *bad_tls)
        assert_one_line_error(result, f"authentication with {node.uri} failed", "TLS")
        assert node.signal() == 0


def test_unreadable_tls_files(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.pem")
    result = masterless(
        "run",
        "cli_app:recorder",
        "--id",
        "x",
        "--tls-cert",
        missing,
        "--tls-key",
        missing,
        "--tls-ca",
        missing,
    )
    assert_one_line_error(result, "cannot load the TLS certificate, key or CA")


def test_a_signal_while_a_seed_is_unreachable_still_stops_cleanly() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with running(
        "cli_app:recorder", "--id", "node-waiting", "--seed", f"tcp://127.0.0.1:{port}"
    ) as node:
        node.expect(lambda r: f"seed tcp://127.0.0.1:{port} not reachable" in r["msg"])
        assert node.signal() == 0, node.stderr
