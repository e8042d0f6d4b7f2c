"""Case 8, beyond tests/transport/test_security.py (which covers wrong and missing cookies,
a replayed dialer session, data before authentication and a silent flood of the handshake
slots): a replayed *listener* session against an honest dialer, a slowloris handshake, and a
flood that keeps reconnecting while an honest peer gets in.
"""

from __future__ import annotations

import asyncio
import contextlib

from fault_helpers import DEADLINE, Changed, EventLog, Proxies, port_of, uri_of

from transport import AuthenticationError, HandshakeError, Node
from transport._frames import FrameDecoder, encode_frame

COOKIE = b"fault-suite-cookie"


async def read_until_closed(reader: asyncio.StreamReader) -> bytes:
    """Every byte until EOF, keeping what arrived before a reset.

    The slowloris keeps writing after the node has sent its reject and closed, so the node's
    kernel may answer a late byte with a reset; ``reader.read()`` would then raise and drop
    the reject it had already received.
    """
    chunks: list[bytes] = []
    with contextlib.suppress(ConnectionResetError):
        while chunk := await reader.read(65536):
            chunks.append(chunk)
    return b"".join(chunks)


async def test_a_replayed_listener_session_does_not_authenticate_to_an_honest_dialer(
    proxies: Proxies,
) -> None:
    async with Node("listener", cookie=COOKIE) as listener, Node("dialer", cookie=COOKIE) as dialer:
        proxy = await proxies(uri_of(listener))
        log, listener_log = EventLog(dialer), EventLog(listener)
        assert await dialer.connect(proxy.uri) == "listener"
        await listener_log.wait_event(("connect", "dialer"))
        assert listener.send("dialer", "secret")
        await log.wait_for(lambda: log.messages("listener") == ["secret"])
        recorded = bytes(proxy.pairs[0].forwarded["down"])  # the listener's whole session
        hello = FrameDecoder().feed(recorded)[0]
        assert hello["op"] == "hello" and isinstance(hello["proof"], bytes)
        await dialer.disconnect("listener")

        # An impostor replays the listener's recorded bytes to whoever dials it.
        async def impostor(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(recorded)
            with contextlib.suppress(OSError):
                await writer.drain()
                await reader.read()  # until the dialer hangs up
            writer.close()

        server = await asyncio.start_server(impostor, "127.0.0.1", 0)
        try:
            uri = f"tcp://127.0.0.1:{server.sockets[0].getsockname()[1]}"
            try:
                await dialer.connect(uri)
            except AuthenticationError as exc:
                assert "proof does not match" in str(exc)
            else:
                raise AssertionError("a replayed listener proof authenticated")
        finally:
            server.close()
            await server.wait_closed()
        assert dialer.peers == []
        assert log.messages("listener") == ["secret"]  # nothing from the replay
        assert log.lifecycle == [("connect", "listener"), ("disconnect", "listener", "closed")]


async def test_a_slowloris_handshake_is_cut_at_the_timeout_while_an_honest_peer_connects() -> None:
    handshake_timeout = 0.5
    async with (
        Node("a", cookie=COOKIE, handshake_timeout=handshake_timeout) as a,
        Node("b", cookie=COOKIE) as b,
    ):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", int(uri_of(a).rsplit(":", 1)[1])
        )
        try:
            hello = encode_frame({"op": "hello", "v": 1})
            loop = asyncio.get_running_loop()
            opened_at = loop.time()

            sent = [0]

            async def trickle() -> None:
                for index in range(len(hello)):
                    writer.write(hello[index : index + 1])
                    sent[0] += 1
                    await writer.drain()
                    await asyncio.sleep(0.1)  # the slowness is the attack under test

            trickling = asyncio.ensure_future(trickle())
            # Meanwhile an honest peer connects at once.
            assert await b.connect(uri_of(a)) == "a"
            async with asyncio.timeout(DEADLINE):
                leftover = await read_until_closed(reader)  # the node's reject, then EOF
            closed_after = loop.time() - opened_at
            sent_before_close = sent[0]
            trickling.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await trickling
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        [reject] = FrameDecoder().feed(leftover)
        assert reject["op"] == "reject" and "timed out" in reject["reason"]
        # Cut at the timeout, not before, and while the hello was still trickling in (it
        # takes about 0.1 s a byte); an upper bound in seconds would only measure the load.
        assert closed_after >= handshake_timeout
        assert sent_before_close < len(hello), (sent_before_close, len(hello))
        assert a.peers == ["b"]


async def test_a_reconnecting_flood_stays_within_the_pending_limit_and_an_honest_peer_gets_in() -> (
    None
):
    limit = 3
    async with (
        Node("a", cookie=COOKIE, max_pending_handshakes=limit, handshake_timeout=0.3) as a,
        Node("b", cookie=COOKIE) as b,
    ):
        log = EventLog(a)
        pending_seen: list[int] = []
        opened = Changed()
        real_open = a._core.open

        def counting_open(**kwargs: object) -> object:
            conn = real_open(**kwargs)  # type: ignore[arg-type]
            pending_seen.append(a._core.pending_handshakes)
            opened.notify()
            return conn

        a._core.open = counting_open  # type: ignore[method-assign]
        port = port_of(uri_of(a))
        stop = asyncio.Event()

        async def attacker() -> None:
            while not stop.is_set():
                try:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    continue
                try:
                    writer.write(b"\x00\x00")  # half a length prefix, then silence
                    await reader.read()  # until the node refuses (busy) or times us out
                except OSError:
                    pass
                finally:
                    writer.close()
                    with contextlib.suppress(OSError):
                        await writer.wait_closed()

        attackers = [asyncio.ensure_future(attacker()) for _ in range(3 * limit)]
        try:
            # The attackers fill every handshake slot.
            await opened.wait_for(lambda: max(pending_seen, default=0) >= limit)
            # The honest peer retries on "busy", as a user would; a slot frees within a timeout.
            peer = None
            async with asyncio.timeout(DEADLINE):
                while peer is None:
                    try:
                        peer = await b.connect(uri_of(a))
                    except HandshakeError as exc:
                        assert exc.code in ("busy", "protocol"), exc
            assert peer == "a"
            await log.wait_event(("connect", "b"))
        finally:
            stop.set()
            for task in attackers:
                task.cancel()
            await asyncio.gather(*attackers, return_exceptions=True)
        assert max(pending_seen) <= limit
        assert len(pending_seen) > 3 * limit  # the flood really kept coming
        assert log.messages() == [] and a.peers == ["b"]
