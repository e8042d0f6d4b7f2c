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

    __slots__ = ("_buffer", "_max_frame_size", "error")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size
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
            while True:
                lengths, end, more = self._complete_frames(buffer, offset)
                if lengths:
                    bodies += self._unpack(view[offset:end], lengths)
                    offset = end
                if not more or self.error is not None:
                    break
        finally:
            view.release()
        if self.error is not None:
            buffer.clear()
        elif offset:
            del buffer[:offset]
        return bodies

    def _complete_frames(self, buffer: bytearray, offset: int) -> tuple[list[int], int, bool]:
        """Body lengths of the complete frames from ``offset``, one batch's worth, its end, and
        whether complete frames remain after it.

        A batch holds one frame, or as many as fit in ``_UNPACK_BATCH`` bytes, so the shared
        unpacker's buffer stays bounded however large the read was. A length prefix above the
        limit ends the batch and sets :attr:`error`.
        """
        size = len(buffer)
        limit = self._max_frame_size
        batch_end = offset + _UNPACK_BATCH
        lengths: list[int] = []
        while size - offset >= HEADER_SIZE:
            (length,) = _unpack_header_from(buffer, offset)
            if length > limit:
                self.error = FrameTooLarge(
                    f"frame of {length} bytes exceeds max_frame_size={limit}"
                )
                break
            end = offset + HEADER_SIZE + length
            if end > size:
                break
            if end > batch_end and lengths:
                return lengths, offset, True
            lengths.append(length)
            offset = end
        return lengths, offset, False

    def _unpack_one(self, body: memoryview) -> list[Any]:
        try:
            return [_unpackb_for(self._max_frame_size)(body)]
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            self.error = ProtocolError(f"malformed msgpack frame: {exc}")
            self.error.__cause__ = exc
            return []
        finally:
            body.release()

    def _unpack(self, frames: memoryview, lengths: list[int]) -> list[Any]:
        """Decode a run of complete frames (prefixes included) with the shared unpacker.

        The run is fed in one call; each prefix is skipped and the value after it must end
        exactly at its frame's end. The unpacker is left empty, or discarded on an error.
        """
        unpacker = _unpacker_for(self._max_frame_size)
        bodies: list[Any] = []
        append = bodies.append
        try:
            try:
                unpacker.feed(frames)
            finally:
                frames.release()  # an exception's traceback must not pin the decoder's buffer
            skip = unpacker.read_bytes
            unpack = unpacker.unpack
            tell = unpacker.tell
            position = tell()
            for length in lengths:
                skip(HEADER_SIZE)
                body = unpack()
                position += HEADER_SIZE + length
                if tell() != position:
                    raise ValueError("a frame must hold exactly one msgpack value")
                append(body)
        except (ValueError, TypeError, msgpack.OutOfData, msgpack.UnpackException) as exc:
            # Bytes may be left in the shared unpacker: nobody else may use it.
            _discard_unpacker(self._max_frame_size)
            if self.error is None:
                self.error = ProtocolError(f"malformed msgpack frame: {exc}")
                self.error.__cause__ = exc
        except BaseException:
            _discard_unpacker(self._max_frame_size)
            raise
        return bodies


_local = threading.local()


def _unpacker_for(max_frame_size: int) -> Any:
    """This thread's shared unpacker for frames of at most ``max_frame_size`` bytes."""
    unpackers: dict[int, Any] | None = getattr(_local, "unpackers", None)
    if unpackers is None:
        unpackers = _local.unpackers = {}
    unpacker = unpackers.get(max_frame_size)
    if unpacker is None:
        unpacker = unpackers[max_frame_size] = msgpack.Unpacker(
            # It holds one batch of complete frames, prefixes included: one frame, or at most
            # _UNPACK_BATCH bytes.
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
