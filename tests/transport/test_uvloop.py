"""The same mesh on uvloop (the ``fast`` extra): its transports are not asyncio's classes.

Each test runs one scenario on a fresh uvloop event loop, so a difference between uvloop's
and asyncio's transports (isinstance checks, TLS upgrade, buffer limits) shows up here.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from certificates import CertificateAuthority
from support import DEADLINE

from actors import Actor, ActorSystem, Message, handler
from transport import Node, TransportError, parse_uri

uvloop = pytest.importorskip("uvloop", reason="uvloop is the optional 'fast' extra")


def run_on_uvloop(scenario: Callable[[], Awaitable[None]]) -> None:
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(asyncio.wait_for(scenario(), DEADLINE))


def test_simultaneous_connect_and_ordered_exchange_on_uvloop() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        assert type(loop).__module__.startswith("uvloop")
        async with Node("a") as a, Node("b") as b:
            got: list[Any] = []
            done = asyncio.Event()

            def on_message(peer: str, packet: Any) -> None:
                got.append(packet)
                if len(got) == 5000:
                    done.set()

            b.on("message", on_message)
            peers = await asyncio.gather(a.connect(b.info() or ""), b.connect(a.info() or ""))
            assert peers == ["b", "a"]
            for sequence in range(5000):
                while not a.send("b", sequence):
                    await a.drained("b")
            await done.wait()
            assert got == list(range(5000))
            assert a.peers == ["b"] and b.peers == ["a"]

    run_on_uvloop(scenario)


def test_mutual_tls_on_uvloop(tmp_path: pathlib.Path) -> None:
    ca = CertificateAuthority("mesh", tmp_path)

    async def scenario() -> None:
        server_a, client_a = ca.contexts("a")
        server_b, client_b = ca.contexts("b")
        async with (
            Node("a", ssl=server_a, dial_ssl=client_a) as a,
            Node("b", ssl=server_b, dial_ssl=client_b) as b,
        ):
            received = asyncio.get_running_loop().create_future()
            b.on("message", lambda peer, packet: received.set_result((peer, packet)))
            assert await a.connect(b.info() or "") == "b"
            assert a.send("b", {"over": "tls"})
            assert await received == ("a", {"over": "tls"})

    run_on_uvloop(scenario)


class Hello(Message, tag="test.uvloop.Hello"):
    name: str


class Greeter(Actor):
    @handler
    def on_hello(self, msg: Hello) -> Hello:
        return Hello(name=f"hello {msg.name}")


def test_actor_ask_on_uvloop() -> None:
    async def scenario() -> None:
        async with ActorSystem("left") as left, ActorSystem("right") as right:
            right.spawn("greeter", Greeter())
            await left.connect(right.info() or "")
            reply = await left.ask("right", "greeter", Hello(name="uvloop"), timeout=5)
            assert reply == Hello(name="hello uvloop")

    run_on_uvloop(scenario)


def test_tls_refusals_and_silent_clients_end_cleanly_on_uvloop(tmp_path: pathlib.Path) -> None:
    ca = CertificateAuthority("mesh", tmp_path)

    async def scenario() -> None:
        server, client = ca.contexts("secure")
        async with (
            Node("secure", ssl=server, dial_ssl=client, handshake_timeout=0.5) as secure,
            Node("plain", handshake_timeout=0.5) as plain,
        ):
            with pytest.raises(TransportError):
                await plain.connect(secure.info() or "")
            assert secure.peers == [] and plain.peers == []
            # A client that opens TCP and says nothing is dropped after the handshake timeout.
            host, port = parse_uri(secure.info() or "")
            reader, writer = await asyncio.open_connection(host, port)
            try:
                assert await asyncio.wait_for(reader.read(), 5.0) == b""
            finally:
                writer.close()
                await writer.wait_closed()

    run_on_uvloop(scenario)


def test_a_tls_node_on_uvloop_caps_pending_handshakes(tmp_path: pathlib.Path) -> None:
    ca = CertificateAuthority("mesh", tmp_path)

    async def scenario() -> None:
        server, client = ca.contexts("secure")
        options = {"max_pending_handshakes": 2, "handshake_timeout": 30.0}
        async with Node("secure", ssl=server, dial_ssl=client, **options) as secure:
            host, port = parse_uri(secure.info() or "")
            streams = [await asyncio.open_connection(host, port) for _ in range(5)]
            try:
                # Silent clients past the cap are closed at once; the first two are held.
                results = await asyncio.gather(
                    *(asyncio.wait_for(reader.read(), 2.0) for reader, _ in streams),
                    return_exceptions=True,
                )
                closed = [result for result in results if result == b""]
                held = [result for result in results if isinstance(result, TimeoutError)]
                assert (len(closed), len(held)) == (3, 2)
            finally:
                for _, writer in streams:
                    writer.close()
                    await writer.wait_closed()

    run_on_uvloop(scenario)
