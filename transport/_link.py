"""One socket of a node: an asyncio ``Protocol`` that feeds its owner and reports back.

A :class:`Link` knows nothing of :class:`transport.Node`: it talks to a :class:`LinkOwner`, the
calls below, and names its connection by the handle the owner gave it.

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
from typing import Protocol, cast

from ._events import DialOutcome
from ._tls import TlsSession
from .errors import AuthenticationError, HandshakeError, TransportError

__all__ = ["Link", "LinkOwner"]

logger = logging.getLogger("transport")

# A large read is fed to the owner in slices, each handled before the next is decoded: the
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


class LinkOwner(Protocol):
    """What a :class:`Link` needs from the node that owns it."""

    @property
    def id(self) -> str:
        """The owner's node id, for log lines."""
        ...

    def link_made(self, link: Link) -> int:
        """A socket is open: register ``link`` and return the handle of its connection."""
        ...

    def link_received(self, handle: int, data: bytes | memoryview) -> None:
        """Plain bytes arrived on ``handle`` (a view into a shared buffer: copy what is kept)."""
        ...

    def link_failed(self, handle: int, error: TransportError) -> None:
        """The link found ``handle`` broken below the protocol (a TLS error)."""
        ...

    def link_paused(self, handle: int, paused: bool) -> None:
        """The socket's write buffer crossed the high (True) or the low (False) mark."""
        ...

    def link_lost(self, link: Link) -> None:
        """The socket of ``link`` closed."""
        ...


class Link(asyncio.BufferedProtocol):
    """One socket: feeds its owner and writes what the owner hands it.

    Args:
        owner: the node this socket belongs to.
        loop: the owner's event loop.
        dialer: True when this node opened the socket.
        tls: TLS context to wrap the socket in, or None.
        write_limits: the socket's (high, low) write-buffer marks.
        uri: the dialed uri (dialer only).
        host: the dialed host, for TLS name checks (dialer only).
    """

    def __init__(
        self,
        owner: LinkOwner,
        loop: asyncio.AbstractEventLoop,
        *,
        dialer: bool,
        tls: ssl.SSLContext | None,
        write_limits: tuple[int, int],
        uri: str | None = None,
        host: str | None = None,
    ) -> None:
        self.owner = owner
        self.dialer = dialer
        self.uri = uri
        self.host = host
        self.handle = -1
        self.paused = False
        self.transport: asyncio.Transport | None = None
        self.tls: TlsSession | None = None
        self._tls_context = tls
        self._write_limits = write_limits
        # The loop that reads into it runs in this thread.
        self._read_buffer = _read_buffer()
        self.outcome: asyncio.Future[DialOutcome] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()

    def __repr__(self) -> str:
        role = "dialer" if self.dialer else "listener"
        return f"<Link #{self.handle} {role} uri={self.uri!r}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A cast, not an isinstance check: uvloop's TCP transports implement the
        # asyncio.Transport interface without subclassing it.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport
        high, low = self._write_limits
        transport.set_write_buffer_limits(high=high, low=low)
        if self._tls_context is not None:
            self.tls = TlsSession(
                self._tls_context, server_side=not self.dialer, server_hostname=self.host
            )
            if self.dialer:
                self.tls.start()
                self._write_tls_output()
        self.handle = self.owner.link_made(self)

    @property
    def closed(self) -> bool:
        """True once the socket is closing or closed."""
        return self.transport is None or self.transport.is_closing()

    def write(self, data: bytes) -> None:
        """Write bytes from the core: encrypted first when this connection uses TLS."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        if self.tls is None:
            transport.write(data)
            return
        self.tls.send(data)
        self._write_tls_output()

    def close(self) -> None:
        """Close the socket once what was written is sent."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Close the socket at once, dropping what is unsent."""
        if self.transport is not None:
            self.transport.abort()

    def _write_tls_output(self) -> None:
        assert self.tls is not None and self.transport is not None
        records = self.tls.take_output()
        if records and not self.transport.is_closing():
            self.transport.write(records)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._read_buffer

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read_buffer[:nbytes])

    def data_received(self, data: bytes | memoryview) -> None:
        """Hand bytes read from the socket to the owner, decrypted first under TLS."""
        if self.tls is not None:
            try:
                data = self.tls.receive(data)
            except ssl.SSLError as exc:
                self._tls_failed(exc)
                return
            self._write_tls_output()
            if not data:
                return
        owner = self.owner
        if len(data) <= _SLICE:
            owner.link_received(self.handle, data)
            return
        view = memoryview(data)
        for start in range(0, len(data), _SLICE):
            owner.link_received(self.handle, view[start : start + _SLICE])

    def _tls_failed(self, exc: ssl.SSLError) -> None:
        assert self.transport is not None
        self._write_tls_output()  # the alert that tells the peer why
        error: TransportError
        if self.dialer and isinstance(exc, ssl.SSLCertVerificationError):
            error = AuthenticationError(f"TLS verification of {self.uri} failed: {exc}")
        else:
            error = HandshakeError(f"TLS failed: {exc}", code="tls")
        logger.warning(
            "node %s: TLS with %s failed: %s",
            self.owner.id,
            self.transport.get_extra_info("peername"),
            exc,
        )
        self.owner.link_failed(self.handle, error)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.link_lost(self)
        if not self.lost.done():
            self.lost.set_result(None)

    def pause_writing(self) -> None:
        self.paused = True
        self.owner.link_paused(self.handle, True)

    def resume_writing(self) -> None:
        self.paused = False
        self.owner.link_paused(self.handle, False)
