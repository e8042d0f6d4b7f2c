"""Sans-I/O TLS for one connection: ciphertext in, plaintext out, and the other way round.

An ``ssl.SSLObject`` over two ``ssl.MemoryBIO``s (what asyncio's own ``sslproto`` does), so the
TLS handshake runs inside the node's handshake: it is bounded by ``handshake_timeout``, counts
against ``max_pending_handshakes`` and behaves the same on asyncio and on uvloop.
"""

from __future__ import annotations

import ssl

__all__ = ["TlsSession"]

_READ_SIZE = 256 * 1024


class TlsSession:
    """One side of a TLS session, driven by the bytes passed in.

    Args:
        context: the ``ssl.SSLContext`` of this side.
        server_side: True on the listening side.
        server_hostname: the host the dialer expects the certificate to name.

    After every call, :meth:`take_output` returns the TLS records to write to the socket.
    ``ssl.SSLError`` (and its ``SSLCertVerificationError``) raised by :meth:`receive` means the
    session failed; the caller closes the connection.
    """

    __slots__ = ("_incoming", "_object", "_outgoing", "_pending", "established")

    def __init__(
        self, context: ssl.SSLContext, *, server_side: bool, server_hostname: str | None = None
    ) -> None:
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._object = context.wrap_bio(
            self._incoming,
            self._outgoing,
            server_side=server_side,
            server_hostname=None if server_side else server_hostname,
        )
        self._pending: list[bytes] = []
        self.established = False

    def start(self) -> None:
        """Begin the handshake (the dialer's ClientHello goes to the output)."""
        self._handshake()

    def receive(self, data: bytes | memoryview) -> bytes:
        """Feed TLS records from the socket; return the plaintext they carried.

        Raises:
            ssl.SSLError: the handshake failed or a record is invalid.
        """
        self._incoming.write(data)
        if not self.established and not self._handshake():
            return b""
        chunks: list[bytes] = []
        while True:
            try:
                chunk = self._object.read(_READ_SIZE)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def send(self, plaintext: bytes) -> None:
        """Encrypt ``plaintext`` (held back until the handshake is done)."""
        if not self.established:
            self._pending.append(plaintext)
            return
        self._object.write(plaintext)

    def take_output(self) -> bytes:
        """The TLS records to write to the socket now."""
        return self._outgoing.read()

    def _handshake(self) -> bool:
        try:
            self._object.do_handshake()
        except ssl.SSLWantReadError:
            return False
        self.established = True
        for plaintext in self._pending:
            self._object.write(plaintext)
        self._pending.clear()
        return True
