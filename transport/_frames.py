"""Sans-I/O framing: ``uint32_be length || msgpack body``.

The decoder checks each length prefix against ``max_frame_size`` *before* it buffers the body,
so a hostile prefix cannot make the node allocate more than one frame's worth of memory.
"""

from __future__ import annotations

import functools
import struct
import threading
from collections.abc import Callable
from typing import Any

import msgpack

from .errors import EncodingError, FrameTooLarge, ProtocolError

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "HEADER_SIZE",
    "FrameDecoder",
    "encode_data",
    "encode_frame",
]

DEFAULT_MAX_FRAME_SIZE = 8 * 1024 * 1024
HEADER_SIZE = 4
# Complete frames are fed to the unpacker and decoded in batches of about this many bytes.
_UNPACK_BATCH = 1024 * 1024

_header = struct.Struct(">I")
_pack_header = _header.pack
_unpack_header = _header.unpack
_unpack_header_from = _header.unpack_from
_packb: Callable[[Any], bytes] = msgpack.Packer(use_bin_type=True, autoreset=True).pack

# The tag of a data frame; see _session for the control tags.
TAG_DATA = 0


def encode_frame(body: Any) -> bytes:
    """Serialize ``body`` with msgpack and prefix it with its length.

    Raises:
        EncodingError: msgpack cannot serialize ``body``.
    """
    try:
        payload = _packb(body)
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(f"packet is not msgpack-serializable: {exc}") from exc
    return _pack_header(len(payload)) + payload


def encode_data(packet: Any) -> bytes:
    """Encode one data packet as a complete frame (``[0, packet]``).

    This is the single encoding step of ``Node.send``; multi-dispatch calls it once and hands
    the same bytes to every peer.

    Raises:
        EncodingError: msgpack cannot serialize ``packet``.
    """
    try:
        payload = _packb([TAG_DATA, packet])
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodingError(f"packet is not msgpack-serializable: {exc}") from exc
    return _pack_header(len(payload)) + payload


class FrameDecoder:
    """Incremental decoder: feed bytes, get decoded msgpack bodies back.

    Each length prefix is checked before its body is buffered. Complete bodies are decoded by
    a ``msgpack.Unpacker`` that must end exactly at each frame's end, so a frame holds exactly
    one msgpack value; every container or string inside it is bounded by ``max_frame_size``.
    The unpacker (about 40 KiB with its parse stack) is shared by every decoder of the thread:
    each :meth:`feed` leaves it empty, so an idle connection only costs its partial frame.

    Errors are sticky: :meth:`feed` returns the frames decoded before the first bad one and
    sets :attr:`error`; the decoder then ignores further bytes.

    Args:
        max_frame_size: the largest body accepted, in bytes.
    """

    __slots__ = ("_buffer", "_max_frame_size", "_unpackb", "error")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size
        self._unpackb = _unpackb_for(max_frame_size)
        self.error: ProtocolError | None = None

    @property
    def buffered(self) -> int:
        """Bytes received but not yet decoded (a partial frame)."""
        return len(self._buffer)

    def feed(self, data: bytes | memoryview) -> list[Any]:
        """Add ``data`` and return every complete frame's decoded body, in order.

        On a length prefix above ``max_frame_size`` (:class:`FrameTooLarge`) or a body that is
        not exactly one valid msgpack value (:class:`ProtocolError`), returns the bodies
        before it and sets :attr:`error`.
        """
        if self.error is not None:
            return []
        buffer = self._buffer
        if not buffer and len(data) >= HEADER_SIZE:
            (length,) = _unpack_header_from(data, 0)
            if HEADER_SIZE + length == len(data) and length <= self._max_frame_size:
                # Exactly one whole frame, the usual read of a request or a reply: decoded
                # in one call, without buffering (unpackb refuses trailing bytes itself).
                return self._unpack_one(memoryview(data)[HEADER_SIZE:])
        buffer += data
        bodies: list[Any] = []
        offset = 0
        view = memoryview(buffer)
        try:
            while self.error is None:
                batch_end = self._batch_end(buffer, offset)
                if batch_end == offset:
                    break
                offset = self._unpack(view, offset, batch_end, bodies)
        finally:
            view.release()
        if self.error is not None:
            buffer.clear()
        elif offset:
            del buffer[:offset]
        return bodies

    def _batch_end(self, buffer: bytearray, offset: int) -> int:
        """Where the batch of bytes to decode from ``offset`` ends; ``offset`` when the frame
        there is not complete yet (or its prefix is above the limit, which sets :attr:`error`).

        A batch holds the first frame whole and reaches ``_UNPACK_BATCH`` bytes if the buffer
        does, so the shared unpacker's buffer stays bounded however large the read was.
        """
        size = len(buffer)
        if size - offset < HEADER_SIZE:
            return offset
        length: int = _unpack_header_from(buffer, offset)[0]
        if length > self._max_frame_size:
            self._too_large(length)
            return offset
        end = offset + HEADER_SIZE + length
        if end > size:
            return offset
        return max(end, min(size, offset + _UNPACK_BATCH))

    def _too_large(self, length: int) -> None:
        self.error = FrameTooLarge(
            f"frame of {length} bytes exceeds max_frame_size={self._max_frame_size}"
        )

    def _unpack_one(self, body: memoryview) -> list[Any]:
        try:
            return [self._unpackb(body)]
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            self.error = ProtocolError(f"malformed msgpack frame: {exc}")
            self.error.__cause__ = exc
            return []
        finally:
            body.release()

    def _unpack(self, view: memoryview, offset: int, batch_end: int, bodies: list[Any]) -> int:
        """Decode the complete frames of ``view[offset:batch_end]`` into ``bodies`` with the
        shared unpacker; return the end of the last one decoded.

        The batch is fed in one call. Each length prefix is checked before its body is
        decoded, and the value after it must end exactly at its frame's end. The bytes of a
        frame that ends after the batch are skipped, so the unpacker is left empty; it is
        discarded on an error.
        """
        unpacker = _unpacker_for(self._max_frame_size)
        limit = self._max_frame_size
        append = bodies.append
        # The loop counts in the unpacker's positions: tell() counts every byte it was fed.
        start: int = unpacker.tell()
        done = start
        stop = start + batch_end - offset
        try:
            batch = view[offset:batch_end]
            try:
                unpacker.feed(batch)
            finally:
                batch.release()  # an exception's traceback must not pin the decoder's buffer
            skip = unpacker.read_bytes
            unpack = unpacker.unpack
            tell = unpacker.tell
            while stop - done >= HEADER_SIZE:
                (length,) = _unpack_header(skip(HEADER_SIZE))
                if length > limit:
                    self._too_large(length)
                    break
                end = done + HEADER_SIZE + length
                if end > stop:
                    break
                body = unpack()
                if tell() != end:
                    raise ValueError("a frame must hold exactly one msgpack value")
                append(body)
                done = end
            skip(stop - tell())  # the start of a frame that ends after the batch
        except (ValueError, TypeError, msgpack.OutOfData, msgpack.UnpackException) as exc:
            # Bytes may be left in the shared unpacker: nobody else may use it.
            _discard_unpacker(self._max_frame_size)
            self.error = ProtocolError(f"malformed msgpack frame: {exc}")
            self.error.__cause__ = exc
        except BaseException:
            _discard_unpacker(self._max_frame_size)
            raise
        return offset + done - start


_local = threading.local()


def _unpacker_for(max_frame_size: int) -> Any:
    """This thread's shared unpacker for frames of at most ``max_frame_size`` bytes."""
    unpackers: dict[int, Any] | None = getattr(_local, "unpackers", None)
    if unpackers is None:
        unpackers = _local.unpackers = {}
    unpacker = unpackers.get(max_frame_size)
    if unpacker is None:
        unpacker = unpackers[max_frame_size] = msgpack.Unpacker(
            # It holds one batch, prefixes included: one whole frame, or at most _UNPACK_BATCH
            # bytes.
            max_buffer_size=max(max_frame_size + HEADER_SIZE, _UNPACK_BATCH),
            **_decode_options(max_frame_size),
        )
    return unpacker


def _unpackb_for(max_frame_size: int) -> Callable[[memoryview], Any]:
    """``msgpack.unpackb`` with the shared unpacker's limits, for a single whole frame."""
    unpackb: Callable[[memoryview], Any] | None = _unpackbs.get(max_frame_size)
    if unpackb is None:
        unpackb = _unpackbs[max_frame_size] = functools.partial(
            msgpack.unpackb, **_decode_options(max_frame_size)
        )
    return unpackb


def _decode_options(max_frame_size: int) -> dict[str, Any]:
    """How every frame body is decoded: str keys only, no container or string above the limit."""
    return {
        "raw": False,
        "strict_map_key": True,
        "max_str_len": max_frame_size,
        "max_bin_len": max_frame_size,
        "max_array_len": max_frame_size,
        "max_map_len": max_frame_size // 2,
        "max_ext_len": max_frame_size,
    }


_unpackbs: dict[int, Callable[[memoryview], Any]] = {}


def _discard_unpacker(max_frame_size: int) -> None:
    getattr(_local, "unpackers", {}).pop(max_frame_size, None)
