"""The message codec on its own, in one process: how masterless encodes and decodes a message,
beside the alternatives the design allows (each as a ratio to what masterless does).

Every variant turns the same three-field ``Sample`` into the same wire envelope, or back into a
validated ``Sample``; a variant whose library is not installed (ormsgpack) is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import msgpack
from pydantic import TypeAdapter

from actors import encode_message
from transport._frames import HEADER_SIZE, FrameDecoder, encode_data

from ._messages import Sample

try:
    import ormsgpack
except ImportError:
    ormsgpack = None

_NO_ORMSGPACK = "skipped: ormsgpack not installed"

Variant = tuple[str, Callable[[], Any] | None, str]


def _framed(body: bytes) -> bytes:
    """A frame as the transport writes it: the body behind its uint32 length."""
    return len(body).to_bytes(HEADER_SIZE, "big") + body


def _rate(fn: Callable[[], Any], n: int, batch: int = 1) -> float:
    """Operations per second of ``fn`` (each call handles ``batch`` messages), best of three."""
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(n // batch):
            fn()
        best = max(best, (n // batch) * batch / (time.perf_counter() - start))
    return best


def encode_variants() -> list[Variant]:
    """Message to frame bytes, as a node would send it."""
    message = Sample(seq=7, name="benchmark", value=2.5)
    packb = msgpack.Packer(use_bin_type=True, autoreset=True).pack

    def envelope(payload: Any) -> list[Any]:
        return [0, "sink", "bench.Sample", payload, "bench-driver", None, None]

    def masterless() -> bytes:
        tag, payload = encode_message(message)
        return encode_data([0, "sink", tag, payload, "bench-driver", None, None])

    def model_dump() -> bytes:
        return _framed(packb([0, envelope(message.model_dump())]))

    serializer = Sample.__pydantic_serializer__

    def to_python() -> bytes:
        return _framed(packb([0, envelope(serializer.to_python(message))]))

    def new_packer() -> bytes:
        return _framed(msgpack.packb([0, envelope(message.__dict__)], use_bin_type=True))

    variants: list[Variant] = [
        ("masterless: field dict + shared Packer (baseline)", masterless, ""),
        ("model_dump() + shared Packer", model_dump, ""),
        ("pydantic-core to_python() + shared Packer", to_python, ""),
        ("field dict + msgpack.packb (a Packer per call)", new_packer, ""),
    ]
    if ormsgpack is None:
        variants.append(("ormsgpack, native pydantic", None, _NO_ORMSGPACK))
    else:
        option = ormsgpack.OPT_SERIALIZE_PYDANTIC

        def ormsgpack_native() -> bytes:
            body = ormsgpack.packb([0, envelope(message)], option=option)
            return len(body).to_bytes(HEADER_SIZE, "big") + body

        variants.append(("ormsgpack, native pydantic", ormsgpack_native, ""))
    return variants


def decode_variants() -> list[Variant]:
    """Frame bytes to a validated message, as a node receives a read of many frames."""
    batch = 256
    frame = encode_data(
        [0, "sink", "bench.Sample", {"seq": 7, "name": "benchmark", "value": 2.5}, "d", None, None]
    )
    read = frame * batch
    validate = Sample.__pydantic_validator__.validate_python
    decoder = FrameDecoder()

    def masterless() -> None:
        for _, packet in decoder.feed(read):
            validate(packet[3])

    def model_validate() -> None:
        for _, packet in decoder.feed(read):
            Sample.model_validate(packet[3])

    adapter = TypeAdapter(list[Sample])

    def list_adapter() -> None:
        adapter.validate_python([packet[3] for _, packet in decoder.feed(read)])

    body = frame[HEADER_SIZE:]

    def unpackb_each() -> None:
        for _ in range(batch):
            validate(msgpack.unpackb(body)[1][3])

    def construct() -> None:
        for _, packet in decoder.feed(read):
            Sample.model_construct(**packet[3])

    variants: list[Variant] = [
        ("masterless: FrameDecoder + validate_python (baseline)", masterless, ""),
        ("FrameDecoder + Model.model_validate", model_validate, ""),
        ("FrameDecoder + TypeAdapter(list[Model]) per read", list_adapter, ""),
        ("msgpack.unpackb per frame + validate_python", unpackb_each, ""),
        ("FrameDecoder + model_construct (NO validation, reference)", construct, ""),
    ]
    if ormsgpack is None:
        variants.append(("ormsgpack.unpackb per frame + validate_python", None, _NO_ORMSGPACK))
    else:

        def ormsgpack_each() -> None:
            for _ in range(batch):
                validate(ormsgpack.unpackb(body)[1][3])

        variants.append(("ormsgpack.unpackb per frame + validate_python", ormsgpack_each, ""))
    return variants


def codec_runs(
    n: int, progress: Callable[[str], None]
) -> dict[str, list[tuple[str, float | None, str]]]:
    """Messages per second for each encode and decode variant (None when skipped)."""
    out: dict[str, list[tuple[str, float | None, str]]] = {}
    for kind, variants, batch in (
        ("encode", encode_variants(), 1),
        ("decode", decode_variants(), 256),
    ):
        rows: list[tuple[str, float | None, str]] = []
        for label, fn, note in variants:
            rate = None if fn is None else _rate(fn, n, batch)
            progress(f"{kind}: {label}: " + ("skipped" if rate is None else f"{rate:,.0f} msgs/s"))
            rows.append((label, rate, note))
        out[kind] = rows
    return out
