"""Bulk traffic over TLS: many packets in order, large packets intact, both directions."""

from __future__ import annotations

import asyncio
import pathlib
from typing import Any

from certificates import CertificateAuthority
from support import DEADLINE as SHARED_DEADLINE

from transport import Node

DEADLINE = 2 * SHARED_DEADLINE  # TLS handshakes on a loaded machine


async def test_tls_carries_many_and_large_packets_in_order(tmp_path: pathlib.Path) -> None:
    ca = CertificateAuthority("mesh", tmp_path)
    server_a, client_a = ca.contexts("a")
    server_b, client_b = ca.contexts("b")
    big = bytes(range(256)) * 4096  # 1 MiB
    async with (
        Node("a", ssl=server_a, dial_ssl=client_a) as a,
        Node("b", ssl=server_b, dial_ssl=client_b) as b,
    ):
        got: dict[str, list[Any]] = {"a": [], "b": []}
        done = {"a": asyncio.Event(), "b": asyncio.Event()}
        count = 2000

        def recorder(name: str) -> Any:
            def on_message(peer: str, packet: Any) -> None:
                got[name].append(packet)
                if len(got[name]) == count + 1:
                    done[name].set()

            return on_message

        a.on("message", recorder("a"))
        b.on("message", recorder("b"))
        assert await a.connect(b.info() or "") == "b"
        for sender, target in ((a, "b"), (b, "a")):
            for sequence in range(count):
                while not sender.send(target, [sequence, b"x" * 4096]):
                    await sender.drained(target)
            while not sender.send(target, big):
                await sender.drained(target)
        async with asyncio.timeout(DEADLINE):
            await done["a"].wait()
            await done["b"].wait()
        for name in ("a", "b"):
            assert [packet[0] for packet in got[name][:count]] == list(range(count))
            assert got[name][count] == big
