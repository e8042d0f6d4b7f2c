"""One socket of a node: an asyncio ``Protocol`` that feeds the core and reports back.

A listener with TLS accepts plain TCP and upgrades here, so the TLS handshake counts against
the node's ``max_pending_handshakes`` and ``handshake_timeout`` like the rest of the handshake.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, cast

from ._connection import Connection
from ._events import DialOutcome

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["Link"]

logger = logging.getLogger("transport")

# A large read is fed to the core in slices, each dispatched before the next is decoded: the
# decoded objects die young instead of all living through garbage-collector passes.
_SLICE = 16 * 1024


class Link(asyncio.Protocol):
    """One socket: feeds the core and reports back to the node."""

    def __init__(self, node: Node, *, dialer: bool, uri: str | None = None) -> None:
        self.node = node
        self.dialer = dialer
        self.uri = uri
        self.conn: Connection | None = None
        self.transport: asyncio.Transport | None = None
        self.outcome: asyncio.Future[DialOutcome] = node._loop.create_future()
        self.lost: asyncio.Future[None] = node._loop.create_future()
        self.upgrade: asyncio.Task[None] | None = None
        self.early: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transports implement the
        # asyncio.Transport interface without subclassing it.
        transport = cast(asyncio.Transport, transport)
        node = self.node
        self.transport = transport
        node._links.add(self)
        if node._link_upgrades_tls and not self.dialer:
            self._start_tls(transport)
            return
        self._open()

    def _open(self) -> None:
        node = self.node
        assert self.transport is not None
        self.transport.set_write_buffer_limits(high=node._high_water, low=node._low_water)
        conn = node._core.open(dialer=self.dialer, now=node._loop.time(), uri=self.uri)
        conn.transport = self
        self.conn = conn
        for data in self.early:
            node._core.receive_data(conn, data, node._loop.time())
        self.early.clear()
        node._after_core(flush=True)

    def _start_tls(self, transport: asyncio.Transport) -> None:
        """Run the listener's TLS handshake under the node's own limits.

        The server listens in plain TCP and upgrades here, so an incoming TLS handshake counts
        against ``max_pending_handshakes``, is bounded by ``handshake_timeout`` and a failure
        is logged as this node's warning.
        """
        node = self.node
        if node._core.pending_handshakes + node._tls_pending >= node._max_pending_handshakes:
            logger.warning(
                "node %s: refusing a connection: %d handshakes already pending",
                node._id,
                node._max_pending_handshakes,
            )
            transport.abort()
            return
        transport.pause_reading()
        node._tls_pending += 1
        self.upgrade = node._loop.create_task(self._upgrade(transport))

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        node = self.node
        assert node._ssl is not None
        try:
            secure = await node._loop.start_tls(
                transport,
                self,
                node._ssl,
                server_side=True,
                ssl_handshake_timeout=node._handshake_timeout,
            )
        except (OSError, TimeoutError, ConnectionError) as exc:
            peer = transport.get_extra_info("peername")
            logger.warning(
                "node %s: TLS handshake with %s failed: %s",
                node._id,
                peer,
                str(exc) or type(exc).__name__,
            )
            transport.abort()
            self._forget()
            return
        except asyncio.CancelledError:
            transport.abort()
            self._forget()
            raise
        finally:
            node._tls_pending -= 1
        if secure is None:
            self._forget()
            return
        self.transport = secure
        self._open()

    def _forget(self) -> None:
        self.node._links.discard(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        node = self.node
        conn = self.conn
        if conn is None:
            # TLS delivers the first records before start_tls() returns to _upgrade.
            self.early.append(data)
            return
        core = node._core
        now = node._loop.time()
        if len(data) <= _SLICE:
            core.receive_data(conn, data, now)
        else:
            view = memoryview(data)
            for start in range(0, len(data), _SLICE):
                core.receive_data(conn, view[start : start + _SLICE], now)
                if core.events:
                    node._dispatch(core.take_events())
            view.release()
        node._after_core(flush=True)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        node = self.node
        node._links.discard(self)
        if self.conn is not None:
            node._core.connection_lost(self.conn, node._loop.time())
            node._wake_drain_waiters(self.conn)
        node._after_core(flush=True)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        if self.conn is not None:
            self.node._core.set_paused(self.conn, True)

    def resume_writing(self) -> None:
        if self.conn is not None:
            self.node._core.set_paused(self.conn, False)
            self.node._wake_drain_waiters(self.conn)
