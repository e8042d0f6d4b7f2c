"""One socket of a node: an asyncio ``Protocol`` that feeds the core and reports back.

With TLS, the link runs a sans-I/O :class:`transport._tls.TlsSession` over the plain socket, so
the TLS handshake is part of the node's handshake: bounded by ``handshake_timeout``, counted
against ``max_pending_handshakes``, failures logged as the node's warnings, the same on asyncio
and on uvloop.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
from typing import TYPE_CHECKING, cast

from ._connection import Connection
from ._events import DialOutcome
from ._tls import TlsSession
from .errors import AuthenticationError, HandshakeError, TransportError

if TYPE_CHECKING:
    from ._node import Node

__all__ = ["Link"]

logger = logging.getLogger("transport")

# A large read is fed to the core in slices, each dispatched before the next is decoded: the
# decoded objects die young instead of all living through garbage-collector passes.
_SLICE = 16 * 1024
# The most one read takes from a socket (asyncio's own default for data_received).
_READ_SIZE = 256 * 1024

_local = threading.local()


def _read_buffer() -> memoryview:
    """This thread's receive buffer, shared by every link of every node of the thread.

    Sharing is safe because the event loop fills it (``recv_into``) and calls
    ``buffer_updated`` in one go, and everything kept from it is copied before that returns.
    It spares each read a fresh 256 KiB ``bytes`` object, which glibc serves with
    mmap/mremap/munmap: three system calls and fresh pages per read.
    """
    view: memoryview | None = getattr(_local, "read_buffer", None)
    if view is None:
        view = _local.read_buffer = memoryview(bytearray(_READ_SIZE))
    return view


class Link(asyncio.BufferedProtocol):
    """One socket: feeds the core and reports back to the node."""

    def __init__(
        self, node: Node, *, dialer: bool, uri: str | None = None, host: str | None = None
    ) -> None:
        self.node = node
        self.dialer = dialer
        self.uri = uri
        self.host = host
        self.conn: Connection | None = None
        self.transport: asyncio.Transport | None = None
        self.tls: TlsSession | None = None
        self.outcome: asyncio.Future[DialOutcome] = node._loop.create_future()
        self.lost: asyncio.Future[None] = node._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transports implement the
        # asyncio.Transport interface without subclassing it.
        transport = cast(asyncio.Transport, transport)
        node = self.node
        self.transport = transport
        node._links.add(self)
        transport.set_write_buffer_limits(high=node._high_water, low=node._low_water)
        context = node._dial_ssl if self.dialer else node._ssl
        if context is not None:
            self.tls = TlsSession(context, server_side=not self.dialer, server_hostname=self.host)
            if self.dialer:
                self.tls.start()
                self._write_tls_output()
        conn = node._core.open(dialer=self.dialer, now=node._loop.time(), uri=self.uri)
        conn.transport = self
        self.conn = conn
        node._after_core(flush=True)

    def write(self, data: bytes) -> None:
        """Write bytes from the core: encrypted first when this connection uses TLS."""
        assert self.transport is not None
        if self.tls is None:
            self.transport.write(data)
            return
        self.tls.send(data)
        self._write_tls_output()

    def _write_tls_output(self) -> None:
        assert self.tls is not None and self.transport is not None
        records = self.tls.take_output()
        if records and not self.transport.is_closing():
            self.transport.write(records)

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(_read_buffer()[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        """Feed bytes read from the socket (a view into the shared buffer, copied if kept)."""
        node = self.node
        conn = self.conn
        assert conn is not None
        if self.tls is not None:
            try:
                data = self.tls.receive(data)
            except ssl.SSLError as exc:
                self._tls_failed(exc)
                return
            self._write_tls_output()
            if not data:
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
        node._after_core(flush=True)

    def _tls_failed(self, exc: ssl.SSLError) -> None:
        node = self.node
        assert self.conn is not None and self.transport is not None
        self._write_tls_output()  # the alert that tells the peer why
        error: TransportError
        if self.dialer and isinstance(exc, ssl.SSLCertVerificationError):
            error = AuthenticationError(f"TLS verification of {self.uri} failed: {exc}")
        else:
            error = HandshakeError(f"TLS failed: {exc}", code="tls")
        logger.warning(
            "node %s: TLS with %s failed: %s",
            node._id,
            self.transport.get_extra_info("peername"),
            exc,
        )
        node._core.abort(self.conn, error)
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
