"""Hostile actor envelopes over a real socket (issue 14): what one peer sends must not cost the
messages after it, nor an actor, nor unbounded logs; a reply the node cannot send becomes a
`RemoteError` for the asker and the actor carries on.

Every hostile packet is written in the same write as a good tell behind it, so the node decodes
both from one read: the tell must arrive whatever the packet before it held.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from hostile_actors import (
    ASK,
    ERROR,
    REPLY,
    REPLY_BOUND,
    SINKS,
    TELL,
    Boom,
    Deep,
    Huge,
    Items,
    LogBytes,
    MakeBig,
    MakeDeep,
    Many,
    Note,
    Probe,
    RawPeer,
    Sink,
    data_frame,
    envelope,
)

from actors import ActorSystem, DeadLetterError, RemoteError

MIB = 1024 * 1024
# What one hostile packet may cost in log text (all levels, fully formatted), and one line.
LOG_BOUND = 16 * 1024
LOG_LINE_BOUND = 2048

SIZE_WORDS = re.compile(r"size|bytes|too large", re.IGNORECASE)
DEPTH_WORDS = re.compile(r"depth|nest|recursion", re.IGNORECASE)


@dataclass
class Host:
    system: ActorSystem
    sinks: dict[str, Sink]
    raw: RawPeer
    log: LogBytes

    async def good_tell_arrives(self, seq: int, sink: str = "sink") -> None:
        await self.sinks[sink].wait_note(seq)

    def alive(self) -> None:
        assert set(self.system.actors) == set(SINKS), self.system.actors


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    """Node "a" hosting a sync and an async sink, with a raw peer authenticated to it."""
    # Long heartbeats: a hostile case may keep the raw peer silent (or the node busy) a while.
    system = ActorSystem("a", heartbeat_interval=1.0, heartbeat_timeout=60.0)
    await system.start()
    sinks: dict[str, Sink] = {}
    for name, factory in SINKS.items():
        sinks[name] = factory()
        system.spawn(name, sinks[name])
    raw = await RawPeer.open(system)
    with LogBytes() as log:
        try:
            yield Host(system, sinks, raw, log)
        finally:
            await raw.close()
            await system.close()


def tell(seq: int, sink: str = "sink") -> bytes:
    return data_frame(envelope(TELL, sink, "hostile.Note", {"seq": seq}))


HUGE = 3 * MIB

# (id, hostile packet, correlation id the node must answer with a small error, or None)
HOSTILE: list[Any] = [
    pytest.param(envelope(ASK, "sink", "hostile.Note", Deep(990), 11), 11, id="deep-payload"),
    pytest.param(
        envelope(ASK, Deep(990), "hostile.Note", {"seq": 1}, 12),
        12,
        id="deep-target",
    ),
    pytest.param(envelope(ASK, "sink", Deep(990), {"seq": 1}, 13), 13, id="deep-tag"),
    pytest.param(
        envelope(ASK, "nobody", "hostile.Note", Deep(990), 14), 14, id="deep-payload-unknown-actor"
    ),
    pytest.param(
        envelope(ASK, "sink", "hostile.Probe", {"seq": 1}, Deep(990)), None, id="deep-cid"
    ),
    pytest.param(
        envelope(Deep(990), "sink", "hostile.Note", {"seq": 1}, 15),
        None,
        id="deep-kind",
    ),
    pytest.param(
        envelope(TELL, "sink", "hostile.Note", {"seq": 1}, None, Deep(990), Deep(990)),
        None,
        id="deep-senders",
    ),
    pytest.param(Deep(990), None, id="deep-packet"),
    pytest.param(envelope(ERROR, None, "DeadLetter", Deep(990), 16), None, id="deep-error-reply"),
    pytest.param(envelope(REPLY, None, "hostile.Probe", Deep(990), 17), None, id="deep-reply"),
    pytest.param(
        envelope(ASK, Huge(HUGE), "hostile.Note", {"seq": 1}, 21),
        21,
        id="huge-target",
    ),
    pytest.param(envelope(ASK, "sink", Huge(HUGE), {"seq": 1}, 22), 22, id="huge-tag"),
    pytest.param(
        envelope(ASK, Huge(HUGE, binary=True), "hostile.Note", {"seq": 1}, 23),
        23,
        id="huge-bytes",
    ),
    pytest.param(envelope(ASK, ["x" * 64] * 50_000, "t", {}, 24), 24, id="huge-list-target"),
    pytest.param(
        envelope(ASK, "sink", "hostile.Note", {"seq": "9" * HUGE}, 25), 25, id="huge-field-value"
    ),
    pytest.param(
        envelope(ASK, "sink", "hostile.Note", Many(500_000), 26),
        26,
        id="500k-extra-keys",
    ),
    pytest.param(
        envelope(ASK, "sink", "hostile.Note", {"seq": Items(1_000_000)}, 27),
        27,
        id="million-items",
    ),
    pytest.param(
        envelope(ERROR, None, "DeadLetter", [Huge(HUGE), Huge(HUGE)], 28), None, id="huge-error"
    ),
    pytest.param(
        envelope(TELL, "sink", "hostile.Note", {"seq": 1}, Huge(HUGE)), None, id="huge-cid"
    ),
]


@pytest.mark.parametrize(("packet", "answered"), HOSTILE)
async def test_a_hostile_packet_costs_neither_the_tell_behind_it_nor_unbounded_logs(
    host: Host, packet: Any, answered: int | None
) -> None:
    await host.raw.write(data_frame(packet), tell(1000))
    await host.good_tell_arrives(1000)
    if answered is not None:
        answer = await host.raw.answer(answered)
        assert answer[0] == ERROR and answer[2] == "DeadLetter", str(answer)[:300]
    assert host.raw.largest <= REPLY_BOUND, f"the node sent a {host.raw.largest}-byte frame back"
    assert host.log.largest <= LOG_LINE_BOUND, (
        f"a {host.log.largest}-char log line: {host.log.sample}"
    )
    assert host.log.total <= LOG_BOUND, (
        f"{host.log.total} chars logged ({host.log.records} records)"
    )
    # The node still serves the raw peer: an ask in a later read is answered.
    await host.raw.write(data_frame(envelope(ASK, "sink", "hostile.Probe", {"seq": 7}, 99)))
    reply = await host.raw.answer(99)
    assert reply[0] == REPLY and reply[3] == {"seq": 7}
    host.alive()


@pytest.mark.parametrize(
    "kind",
    [
        *(pytest.param(kind) for kind in (1.0, True, 0.0, False)),
        *(-1, 4, 2**40, "1", None, [1]),
    ],
)
async def test_an_envelope_kind_must_be_an_int_of_the_known_set(host: Host, kind: Any) -> None:
    dead_before = host.system.stats().dead_letters_by_reason.get("malformed_envelope", 0)
    await host.raw.write(
        data_frame(envelope(kind, "sink", "hostile.Probe", {"seq": 5}, 31)),
        data_frame(envelope(kind, "sink", "hostile.Note", {"seq": 55})),
        tell(1000),
    )
    await host.good_tell_arrives(1000)
    sink = host.sinks["sink"]
    assert 5 not in sink.probes and 55 not in sink.notes, "a wrong-typed kind was taken as ask/tell"
    assert all(packet[0] != REPLY for packet in host.raw.answers(31))
    dead = host.system.stats().dead_letters_by_reason.get("malformed_envelope", 0)
    assert dead == dead_before + 2


@pytest.mark.parametrize("sink", list(SINKS))
@pytest.mark.parametrize(
    ("request_", "words"),
    [
        pytest.param(MakeBig(size=10 * MIB), SIZE_WORDS, id="10MiB-reply"),
        pytest.param(MakeDeep(depth=600), DEPTH_WORDS, id="600-deep-reply"),
        pytest.param(MakeBig(size=10 * MIB, plain=True), SIZE_WORDS, id="10MiB-plain-reply"),
        pytest.param(MakeDeep(depth=600, plain=True), DEPTH_WORDS, id="600-deep-plain-reply"),
        pytest.param(MakeDeep(depth=2000, plain=True), DEPTH_WORDS, id="2000-deep-plain-reply"),
    ],
)
async def test_a_reply_the_node_cannot_send_fails_the_raw_ask_and_the_actor_carries_on(
    host: Host, sink: str, request_: MakeBig | MakeDeep, words: re.Pattern[str]
) -> None:
    tag = type(request_).__message_tag__
    await host.raw.write(
        data_frame(envelope(ASK, sink, tag, request_.model_dump(), 41)), tell(1000, sink)
    )
    answer = await host.raw.answer(41)
    assert answer[0] == ERROR and answer[2] == "RemoteError", str(answer)[:300]
    assert words.search(str(answer[3])), answer[3]
    await host.good_tell_arrives(1000, sink)
    await host.raw.write(data_frame(envelope(ASK, sink, "hostile.Probe", {"seq": 8}, 42)))
    reply = await host.raw.answer(42)
    assert reply[0] == REPLY and reply[3] == {"seq": 8}
    assert host.raw.largest <= REPLY_BOUND
    host.alive()


@pytest.mark.parametrize("sink", list(SINKS))
@pytest.mark.parametrize(
    ("request_", "words"),
    [
        pytest.param(MakeBig(size=10 * MIB), SIZE_WORDS, id="10MiB-reply"),
        pytest.param(MakeDeep(depth=600), DEPTH_WORDS, id="600-deep-reply"),
        pytest.param(MakeBig(size=10 * MIB, plain=True), SIZE_WORDS, id="10MiB-plain-reply"),
        pytest.param(MakeDeep(depth=600, plain=True), DEPTH_WORDS, id="600-deep-plain-reply"),
        pytest.param(MakeDeep(depth=2000, plain=True), DEPTH_WORDS, id="2000-deep-plain-reply"),
    ],
)
async def test_a_reply_the_node_cannot_send_is_a_remote_error_for_an_actor_system_asker(
    host: Host, sink: str, request_: MakeBig | MakeDeep, words: re.Pattern[str]
) -> None:
    async with ActorSystem("b") as asker:
        uri = host.system.info()
        assert uri is not None
        await asker.connect(uri)
        with pytest.raises(RemoteError) as failure:
            await asker.ask("a", sink, request_, timeout=10.0)
        assert words.search(str(failure.value)), str(failure.value)
        # The actor carries on: the next message is handled and answered.
        assert await asker.ask("a", sink, Probe(seq=9), timeout=10.0) == Probe(seq=9)
        assert asker.tell("a", sink, Note(seq=1001))
        await host.good_tell_arrives(1001, sink)
    host.alive()


@pytest.mark.parametrize("sink", list(SINKS))
@pytest.mark.parametrize("size", [10 * MIB, -1], ids=["10MiB-message", "unprintable"])
async def test_a_handler_exception_reaches_the_asker_in_a_sendable_answer(
    host: Host, sink: str, size: int
) -> None:
    async with ActorSystem("b") as asker:
        uri = host.system.info()
        assert uri is not None
        await asker.connect(uri)
        with pytest.raises(RemoteError) as failure:
            await asker.ask("a", sink, Boom(size=size), timeout=10.0)
        error = failure.value
        if size > 0:
            assert error.type_name == "ValueError" and len(error.remote_message) < 2000
            assert str(size) in error.remote_message  # the length is said
        else:
            assert error.type_name == "Unprintable" and "str()" in error.remote_message
        assert await asker.ask("a", sink, Probe(seq=3), timeout=10.0) == Probe(seq=3)
    host.alive()


@pytest.mark.parametrize(
    ("tag", "payload"),
    [
        pytest.param(1, {"p": [["k"]] * 100_000}, id="malformed-pair-coded"),  # 1: pair-coded
        pytest.param("hostile.Probe", Many(500_000), id="500k-keys"),
        pytest.param(Huge(HUGE), {"seq": 1}, id="huge-tag"),
        pytest.param("hostile.Probe", {"seq": Deep(980)}, id="deep-field"),
        pytest.param(None, Items(1_000_000), id="million-items"),
    ],
)
async def test_a_hostile_reply_fails_only_the_ask_it_answers(
    host: Host, tag: Any, payload: Any
) -> None:
    asking = asyncio.ensure_future(host.system.ask("zz-raw", "anyone", Probe(seq=1), timeout=10.0))
    async with asyncio.timeout(10.0):
        while not any(type(p) is list and p[:1] == [ASK] for p in host.raw.data()):
            await host.raw.changed()
    [ask] = [p for p in host.raw.data() if type(p) is list and p[:1] == [ASK]]
    reply = envelope(REPLY, None, tag, payload, ask[6])
    await host.raw.write(data_frame(reply), tell(1000))
    with pytest.raises(DeadLetterError) as failure:
        await asking
    assert failure.value.reason == "invalid_reply" and len(failure.value.detail) < 1000
    await host.good_tell_arrives(1000)
    assert host.log.largest <= LOG_LINE_BOUND, host.log.sample
    host.alive()
