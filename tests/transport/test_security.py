"""Authentication, secure defaults, handshake flood limits and TLS, over real loopback sockets."""

from __future__ import annotations

import asyncio
import logging
import pathlib
import ssl
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from certificates import CertificateAuthority
from helpers import (
    LogWatcher,
    LoopErrors,
    RawClient,
    exchange,
    hello_body,
    raw_client,
    rejects,
    started,
)
from support import DEADLINE, EventRecorder, FaultProxy, uri_of

import transport
from transport import (
    AuthenticationError,
    ConfigurationError,
    HandshakeError,
    Node,
    TransportError,
)

COOKIE = b"correct horse battery staple"


@pytest.fixture
def log_watcher() -> Iterator[LogWatcher]:
    with LogWatcher() as watcher:
        yield watcher


# -- cookies ----------------------------------------------------------------------------------


async def test_nodes_with_the_same_cookie_connect_and_exchange_packets() -> None:
    async with started("a", "b", cookie=COOKIE) as (a, b):
        a_events, b_events = EventRecorder(a), EventRecorder(b)
        assert await a.connect(uri_of(b)) == "b"
        await b_events.wait_for(lambda: b_events.connects == ["a"])
        assert a_events.connects == ["b"]
        await exchange(a, b, "authenticated")


async def test_a_str_cookie_equals_its_utf8_bytes() -> None:
    async with (
        started("a", cookie="sésame") as (a,),
        started("b", cookie="sésame".encode()) as (b,),
    ):
        assert await a.connect(uri_of(b)) == "b"
        await exchange(a, b, "same secret")


@pytest.mark.parametrize(
    ("dialer_cookie", "listener_cookie"),
    [
        pytest.param(b"one", b"two", id="different-cookies"),
        pytest.param(b"one", None, id="cookie-on-dialer-only"),
        pytest.param(None, b"two", id="cookie-on-listener-only"),
    ],
)
@pytest.mark.parametrize(
    ("dialer_id", "listener_id"),
    [pytest.param("a", "b", id="dialer-sorts-first"), pytest.param("b", "a", id="listener-first")],
)
async def test_mismatched_cookies_refuse_the_connection(
    log_watcher: LogWatcher,
    dialer_cookie: bytes | None,
    listener_cookie: bytes | None,
    dialer_id: str,
    listener_id: str,
) -> None:
    async with (
        started(dialer_id, cookie=dialer_cookie) as (dialer,),
        started(listener_id, cookie=listener_cookie) as (listener,),
    ):
        dialer_events, listener_events = EventRecorder(dialer), EventRecorder(listener)
        with pytest.raises(AuthenticationError):
            await dialer.connect(uri_of(listener))
        # The listener has given up on that connection too (it logs why).
        await log_watcher.wait_for(f"node {listener_id}: handshake failed")

        assert dialer_events.connects == [] and listener_events.connects == []
        assert dialer.peers == [] and listener.peers == []
        assert not dialer.is_kept(listener_id)
        assert dialer.send(listener_id, "nope") is False
        assert listener.send(dialer_id, "nope") is False
        assert dialer_events.received == [] and listener_events.received == []


async def test_a_wrong_cookie_error_says_what_is_wrong() -> None:
    async with started("a", cookie=b"one") as (a,), started("b", cookie=b"two") as (b,):
        with pytest.raises(AuthenticationError, match="cookie") as info:
            await a.connect(uri_of(b))
    assert info.value.code == "auth"
    assert b"one" not in str(info.value).encode() and b"two" not in str(info.value).encode()


# -- raw sockets against a node with a cookie -------------------------------------------------


@dataclass
class CookieMesh:
    a: Node
    b: Node
    a_events: EventRecorder


@pytest.fixture
async def cookie_mesh() -> AsyncIterator[CookieMesh]:
    async with started("a", "b", cookie=COOKIE) as (a, b):
        a_events = EventRecorder(a)
        assert await b.connect(uri_of(a)) == "a"
        await a_events.wait_for(lambda: a_events.connects == ["b"])
        yield CookieMesh(a, b, a_events)


def proofless_hello() -> dict[str, Any]:
    return hello_body("zz-raw", auth=True)


@pytest.mark.parametrize(
    ("bodies", "code"),
    [
        pytest.param([[0, "evil"]], "protocol", id="data-instead-of-hello"),
        pytest.param([hello_body("zz-raw"), [0, "evil"]], "auth", id="hello-without-cookie"),
        pytest.param([proofless_hello(), [0, "evil"]], "protocol", id="data-instead-of-proof"),
        pytest.param(
            [proofless_hello(), {"op": "proof", "proof": b"\0" * 32}, [0, "evil"]],
            "auth",
            id="forged-proof",
        ),
        pytest.param(
            [proofless_hello(), {"op": "proof", "proof": "not bytes"}, [0, "evil"]],
            "auth",
            id="proof-of-wrong-type",
        ),
        pytest.param(
            [proofless_hello(), {"op": "claim", "seq": 1, "alive": [], "keep": False}, [0, "x"]],
            "protocol",
            id="claim-instead-of-proof",
        ),
    ],
)
async def test_nothing_is_delivered_before_authentication(
    cookie_mesh: CookieMesh, bodies: list[Any], code: str
) -> None:
    async with raw_client(uri_of(cookie_mesh.a)) as raw:
        for body in bodies:
            await raw.send_body(body)
        replies = await raw.read_until_eof(timeout=DEADLINE)
    assert [reject_code for reject_code, _ in rejects(replies)] == [code]
    assert cookie_mesh.a_events.received == []
    assert cookie_mesh.a_events.connects == ["b"]
    assert cookie_mesh.a.peers == ["b"]
    await exchange(cookie_mesh.a, cookie_mesh.b, "still-serving")


async def test_a_listener_with_a_cookie_proves_nothing_to_a_dialer_without_one(
    cookie_mesh: CookieMesh,
) -> None:
    """A dialer that claims no cookie gets no proof (nothing to collect for an offline attack)."""
    async with raw_client(uri_of(cookie_mesh.a)) as raw:
        await raw.send_body(hello_body("zz-raw"))
        replies = await raw.read_until_eof(timeout=DEADLINE)
    assert all("proof" not in reply for reply in replies if isinstance(reply, dict))
    assert [code for code, _ in rejects(replies)] == ["auth"]


async def test_a_replayed_handshake_is_rejected(log_watcher: LogWatcher) -> None:
    """Bytes recorded from an honest dialer do not authenticate again: the nonce is fresh."""
    async with (
        started("listener", cookie=COOKIE) as (listener,),
        FaultProxy(uri_of(listener)) as proxy,
    ):
        events = EventRecorder(listener)
        async with started("dialer", cookie=COOKIE) as (dialer,):
            assert await dialer.connect(proxy.uri) == "listener"
            assert dialer.send("listener", "secret-1")
            await events.wait_message("dialer", "secret-1")
        await events.wait_for(lambda: events.disconnects == [("dialer", "closed")])
        [recorded] = proxy.client_bytes
        assert b"secret-1" in recorded  # the recording holds the whole honest session

        async with raw_client(uri_of(listener)) as raw:
            await raw.send_bytes(bytes(recorded))
            replies = await raw.read_until_eof(timeout=DEADLINE)

        hello, *rest = replies
        assert hello["op"] == "hello" and isinstance(hello["proof"], bytes)
        assert [code for code, _ in rejects(rest)] == ["auth"]
        assert "dialer's proof does not match" in await log_watcher.wait_for("proof")
        assert events.received == [("dialer", "secret-1")]
        assert events.connects == ["dialer"]
        assert listener.peers == []


async def test_a_replayed_handshake_is_rejected_while_the_honest_peer_is_up() -> None:
    async with (
        started("listener", cookie=COOKIE) as (listener,),
        FaultProxy(uri_of(listener)) as proxy,
        started("dialer", cookie=COOKIE) as (dialer,),
    ):
        events = EventRecorder(listener)
        assert await dialer.connect(proxy.uri) == "listener"
        assert dialer.send("listener", "secret-1")
        await events.wait_message("dialer", "secret-1")

        async with raw_client(uri_of(listener)) as raw:
            await raw.send_bytes(bytes(proxy.client_bytes[0]))
            replies = await raw.read_until_eof(timeout=DEADLINE)

        assert [code for code, _ in rejects(replies)] == ["auth"]
        assert events.received == [("dialer", "secret-1")]
        assert events.connects == ["dialer"] and events.disconnects == []
        await exchange(listener, dialer, "honest peer unharmed")


# -- secure defaults ----------------------------------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "example.org"])
def test_a_non_loopback_bind_without_cookie_is_refused_with_the_reason(host: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Node("x", host=host)
    message = str(info.value)
    assert host in message
    assert "without a cookie" in message
    assert "anyone who can reach the port" in message
    assert "insecure=True" in message
    assert isinstance(info.value, transport.TransportError)


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_a_loopback_bind_needs_no_cookie(host: str) -> None:
    assert Node("x", host=host).id == "x"


@pytest.mark.parametrize("options", [{"cookie": COOKIE}, {"insecure": True}])
async def test_a_wildcard_bind_is_allowed_with_a_cookie_or_insecure(options: Any) -> None:
    async with Node("x", host="0.0.0.0", **options) as node:
        uri = uri_of(node)
        assert uri.startswith("tcp://0.0.0.0:")


# -- handshake flood ----------------------------------------------------------------------------


FLOOD = 10
MAX_PENDING = 4
FLOOD_HANDSHAKE_TIMEOUT = 1.5


async def test_a_flood_of_silent_connections_is_capped(log_watcher: LogWatcher) -> None:
    async with (
        started(
            "a",
            cookie=COOKIE,
            max_pending_handshakes=MAX_PENDING,
            handshake_timeout=FLOOD_HANDSHAKE_TIMEOUT,
        ) as (a,),
        started("b", cookie=COOKIE) as (b,),
    ):
        a_events = EventRecorder(a)
        flood = [await RawClient.open(uri_of(a)) for _ in range(FLOOD)]
        readers = [asyncio.ensure_future(client.read_until_eof(DEADLINE)) for client in flood]
        try:
            # Everything past the limit is refused at once with "busy" and closed ...
            refused = []
            for next_done in asyncio.as_completed(readers, timeout=DEADLINE):
                refused.append(rejects(await next_done))
                if len(refused) == FLOOD - MAX_PENDING:
                    break
            assert refused == [[("busy", "too many pending handshakes")]] * (FLOOD - MAX_PENDING)
            held = [reader for reader in readers if not reader.done()]
            assert len(held) == MAX_PENDING
            await log_watcher.wait_for("handshakes already pending")

            # ... an honest node too, while the silent ones hold every slot ...
            with pytest.raises(HandshakeError) as info:
                await b.connect(uri_of(a))
            assert info.value.code == "busy"

            # ... until the silent ones time out; then the honest node gets in.
            for bodies in await asyncio.gather(*held):
                assert rejects(bodies) == [
                    ("protocol", f"handshake timed out after {FLOOD_HANDSHAKE_TIMEOUT} s")
                ]
            assert await b.connect(uri_of(a)) == "a"
            await exchange(a, b, "after the flood")
            assert a_events.connects == ["b"]
            assert a_events.received == [("b", ["to-a", "after the flood"])]
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for client in flood:
                await client.close()


async def test_closing_a_flood_socket_frees_its_slot() -> None:
    async with (
        started("a", cookie=COOKIE, max_pending_handshakes=1) as (a,),
        started("b", cookie=COOKIE) as (b,),
    ):
        a_events = EventRecorder(a)
        async with raw_client(uri_of(a)) as holder:
            # Prove the holder took the only slot: a second raw socket is turned away.
            async with raw_client(uri_of(a)) as second:
                assert rejects(await second.read_until_eof(DEADLINE))[0][0] == "busy"
            await holder.send_eof()
            # The node closes its side once it has seen the holder's EOF: the slot is free.
            assert await holder.read_until_eof(DEADLINE) == []
        assert await b.connect(uri_of(a)) == "a"
        await a_events.wait_for(lambda: a_events.connects == ["b"])


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture
async def debug_loop() -> AsyncIterator[LoopErrors]:
    """Asyncio debug mode on (issue 2 item 12), and what the loop reports collected.

    In debug mode asyncio reports a failed TLS handshake it ran itself as an error; the node
    must run (and report) its TLS handshakes itself.
    """
    loop = asyncio.get_running_loop()
    debug = loop.get_debug()
    loop.set_debug(True)
    errors = LoopErrors(loop)
    try:
        yield errors
    finally:
        errors.restore()
        loop.set_debug(debug)


@pytest.fixture
def ca(tmp_path: pathlib.Path) -> CertificateAuthority:
    return CertificateAuthority("mesh", tmp_path)


@pytest.fixture
def rogue_ca(tmp_path: pathlib.Path) -> CertificateAuthority:
    return CertificateAuthority("rogue", tmp_path)


def tls_node(node_id: str, ca: CertificateAuthority, **options: Any) -> Node:
    server, client = ca.contexts(node_id)
    return Node(node_id, ssl=server, dial_ssl=client, **options)


async def test_two_tls_nodes_connect_and_exchange_encrypted_packets(
    ca: CertificateAuthority,
) -> None:
    async with (
        tls_node("a", ca) as a,
        tls_node("b", ca) as b,
        FaultProxy(uri_of(b)) as proxy,
    ):
        b_events = EventRecorder(b)
        assert await a.connect(proxy.uri) == "b"
        await b_events.wait_for(lambda: b_events.connects == ["a"])
        await exchange(a, b, "plaintext-marker")
        # What crossed the wire from a is not readable: no frame, no packet, no id.
        [wire] = proxy.client_bytes
        assert len(wire) > 0
        assert b"plaintext-marker" not in wire and b"hello" not in wire


async def test_without_tls_the_same_bytes_would_be_readable() -> None:
    """The control for the test above: the proxy does see a plaintext session."""
    async with started("a", "b") as (a, b), FaultProxy(uri_of(b)) as proxy:
        assert await a.connect(proxy.uri) == "b"
        await exchange(a, b, "plaintext-marker")
        assert b"plaintext-marker" in proxy.client_bytes[0]


async def test_tls_and_a_cookie_together(ca: CertificateAuthority) -> None:
    async with tls_node("a", ca, cookie=COOKIE) as a, tls_node("b", ca, cookie=COOKIE) as b:
        assert await a.connect(uri_of(b)) == "b"
        await exchange(a, b, "both layers")


@pytest.mark.usefixtures("debug_loop")
async def test_a_plain_node_cannot_connect_to_a_tls_node(ca: CertificateAuthority) -> None:
    async with tls_node("secure", ca) as secure, started("plain") as (plain,):
        secure_events, plain_events = EventRecorder(secure), EventRecorder(plain)
        with pytest.raises(TransportError):
            await plain.connect(uri_of(secure))
        assert plain.peers == [] and secure.peers == []
        assert plain_events.connects == [] and secure_events.connects == []
        assert secure_events.received == []


@pytest.mark.usefixtures("debug_loop")
async def test_a_tls_node_cannot_connect_to_a_plain_node(ca: CertificateAuthority) -> None:
    async with tls_node("secure", ca) as secure, started("plain") as (plain,):
        secure_events, plain_events = EventRecorder(secure), EventRecorder(plain)
        with pytest.raises(TransportError):
            await secure.connect(uri_of(plain))
        assert plain.peers == [] and secure.peers == []
        assert plain_events.connects == [] and secure_events.connects == []


@pytest.mark.usefixtures("debug_loop")
async def test_a_server_certificate_from_an_untrusted_ca_fails_verification(
    ca: CertificateAuthority, rogue_ca: CertificateAuthority
) -> None:
    # The rogue server trusts our CA, so only our verification of its certificate can fail.
    rogue_server, rogue_client = rogue_ca.contexts("rogue", trust=ca)
    async with (
        tls_node("a", ca) as a,
        Node("rogue", ssl=rogue_server, dial_ssl=rogue_client) as rogue,
    ):
        rogue_events = EventRecorder(rogue)
        with pytest.raises(AuthenticationError, match="TLS verification") as info:
            await a.connect(uri_of(rogue))
        assert "certificate verify failed" in str(info.value)
        assert a.peers == [] and rogue.peers == []
        assert rogue_events.connects == []


@pytest.mark.usefixtures("debug_loop")
async def test_a_client_certificate_from_an_untrusted_ca_is_refused(
    ca: CertificateAuthority, rogue_ca: CertificateAuthority
) -> None:
    # The rogue client trusts our CA, so only the server's check of the client cert can fail.
    rogue_server, rogue_client = rogue_ca.contexts("rogue", trust=ca)
    async with (
        tls_node("a", ca) as a,
        Node("rogue", ssl=rogue_server, dial_ssl=rogue_client) as rogue,
    ):
        a_events = EventRecorder(a)
        with pytest.raises(TransportError):
            await rogue.connect(uri_of(a))
        assert a.peers == [] and rogue.peers == []
        assert a_events.connects == [] and a_events.received == []


@pytest.mark.usefixtures("debug_loop")
async def test_a_client_without_a_certificate_is_refused_by_mutual_tls(
    ca: CertificateAuthority,
) -> None:
    anonymous = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    anonymous.load_verify_locations(ca.ca_file)
    async with tls_node("a", ca) as a, Node("anon", dial_ssl=anonymous) as anon:
        a_events = EventRecorder(a)
        with pytest.raises(TransportError):
            await anon.connect(uri_of(a))
        assert a.peers == [] and a_events.connects == []


@pytest.mark.usefixtures("debug_loop")
async def test_a_tls_refusal_on_the_dialing_side_logs_no_error(
    ca: CertificateAuthority, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with tls_node("secure", ca) as secure, started("plain") as (plain,):
        with pytest.raises(TransportError):
            await secure.connect(uri_of(plain))
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


async def test_a_failed_tls_handshake_is_a_warning_not_an_event_loop_error(
    ca: CertificateAuthority, caplog: pytest.LogCaptureFixture, debug_loop: LoopErrors
) -> None:
    caplog.set_level(logging.WARNING, logger="transport")
    async with tls_node("secure", ca) as secure, started("plain") as (plain,):
        with pytest.raises(TransportError):
            await plain.connect(uri_of(secure))
    debug_loop.check()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("node secure" in message and "TLS" in message for message in warnings), warnings


@pytest.mark.usefixtures("debug_loop")
async def test_a_silent_client_on_a_tls_node_is_closed_after_the_handshake_timeout(
    ca: CertificateAuthority,
) -> None:
    async with (
        tls_node("secure", ca, handshake_timeout=0.5) as secure,
        raw_client(uri_of(secure)) as silent,
    ):
        # Plain TCP, no ClientHello: the node must drop it like any silent client.
        assert await silent.read_until_eof(timeout=3.0) == []


@pytest.mark.usefixtures("debug_loop")
async def test_a_tls_node_caps_connections_that_never_start_tls(ca: CertificateAuthority) -> None:
    async with tls_node("secure", ca, max_pending_handshakes=2, handshake_timeout=30.0) as secure:
        clients = [await RawClient.open(uri_of(secure)) for _ in range(5)]
        readers = [asyncio.ensure_future(client.read_until_eof(DEADLINE)) for client in clients]
        try:
            # Three past the cap are dropped at once (no TLS, so no reject frame: just closed).
            for refused, next_done in enumerate(asyncio.as_completed(readers, timeout=DEADLINE)):
                assert await next_done == []
                if refused == 2:
                    break
            assert sum(not reader.done() for reader in readers) == 2
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
            for client in clients:
                await client.close()
