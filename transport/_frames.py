"""Sans-I/O framing: ``uint32_be length || msgpack body``.

The decoder checks each length prefix against ``max_frame_size`` *before* it buffers the body,
so a hostile prefix cannot make the node allocate more than one frame's worth of memory.
"""

from __future__ import annotations

import struct
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

_header = struct.Struct(">I")
_pack_header = _header.pack
_unpack_header_from = _header.unpack_from
_packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack

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
    return _pack_header(len(payload)) + bytes(payload)


def encode_data(packet: Any) -> bytes:
    """Encode one data packet as a complete frame (``[0, packet]``).

    This is the single encoding step of ``Node.send``; multi-dispatch calls it once and hands
    the same bytes to every peer.
    """
    return encode_frame([TAG_DATA, packet])


class FrameDecoder:
    """Incremental decoder: feed bytes, get decoded msgpack bodies back.

    Args:
        max_frame_size: the largest body accepted, in bytes.
    """

    __slots__ = ("_buffer", "_max_frame_size", "_unpack_kwargs")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self._buffer = bytearray()
        self._max_frame_size = max_frame_size
        self._unpack_kwargs: dict[str, Any] = {
            "raw": False,
            "strict_map_key": True,
            "max_str_len": max_frame_size,
            "max_bin_len": max_frame_size,
            "max_array_len": max_frame_size,
            "max_map_len": max_frame_size // 2,
            "max_ext_len": max_frame_size,
        }

    @property
    def buffered(self) -> int:
        """Bytes received but not yet decoded (a partial frame)."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Any]:
        """Add ``data`` and return every complete frame's decoded body, in order.

        Raises:
            FrameTooLarge: a length prefix exceeds ``max_frame_size``.
            ProtocolError: a body is not valid msgpack (or breaks the unpacker limits).
        """
        buffer = self._buffer
        buffer += data
        size = len(buffer)
        offset = 0
        bodies: list[Any] = []
        unpack_kwargs = self._unpack_kwargs
        limit = self._max_frame_size
        view = memoryview(buffer)
        try:
            while size - offset >= HEADER_SIZE:
                (length,) = _unpack_header_from(buffer, offset)
                if length > limit:
                    raise FrameTooLarge(f"frame of {length} bytes exceeds max_frame_size={limit}")
                end = offset + HEADER_SIZE + length
                if end > size:
                    break
                try:
                    bodies.append(
                        msgpack.unpackb(view[offset + HEADER_SIZE : end], **unpack_kwargs)
                    )
                except (ValueError, TypeError, msgpack.UnpackException) as exc:
                    raise ProtocolError(f"malformed msgpack frame: {exc}") from exc
                offset = end
        finally:
            view.release()
        if offset:
            del buffer[:offset]
        return bodies
