"""Hypothesis fuzzing of the actor layer over a real socket (issue 14, item 7).

A raw peer authenticated to node "a" writes random hostile envelopes (wrong kinds and field
types, deep nesting, multi-MiB strings, maps of many keys, asks whose replies cannot be sent),
then a good tell, in one write. After every case: the good tell arrived, a good peer (an
`ActorSystem` of its own) still gets its asks answered and its tells handled, no actor died,
the raw peer is still connected and got no oversized frame back, and the node's log stayed under
a size bound.

The run is bounded: a fixed number of examples (``ENVELOPE_FUZZ_EXAMPLES``, default 40), each
under a deadline, and no shrinking (a failing case is reported as drawn).
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
from hostile_actors import (
    ASK,
    ERROR,
    REPLY,
    REPLY_BOUND,
    SINKS,
    TELL,
    Deep,
    Huge,
    LogBytes,
    Many,
    Note,
    Probe,
    RawPeer,
    Sink,
    data_frame,
    envelope,
)
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from actors import ActorSystem

MIB = 1024 * 1024
MAX_FRAME = 8 * MIB
CASE_DEADLINE = 10.0
# What one case may cost in log text (every level, fully formatted), and one line.
LOG_BOUND = 32 * 1024
LOG_LINE_BOUND = 2048
# Good seqs sit far above the small ints the fuzzer draws, so no hostile packet fakes one.
GOOD_SEQ_BASE = 10**12

FUZZ = settings(
    max_examples=int(os.environ.get("ENVELOPE_FUZZ_EXAMPLES", "40")),
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
small_ints = st.integers(min_value=-1000, max_value=1000)
scalars = (
    st.none()
    | st.booleans()
    | ints
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.binary(max_size=40)
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
# 980 levels: deep, yet within the transport's unpacker once wrapped in frame, envelope, map.
deep = st.builds(Deep, st.sampled_from([50, 400, 520, 980]), scalars)
huge = st.builds(Huge, st.sampled_from([4096, 1 << 16, 1 << 20, 3 * MIB]), st.booleans())
hostile_values = values | deep | huge

kinds = (
    st.sampled_from([TELL, ASK, REPLY, ERROR])
    | st.sampled_from([1.0, True, False, 0.0, -1, 4, 2**40, None, "1"])
    | hostile_values
)
targets = st.sampled_from([*SINKS, "nobody", ""]) | hostile_values
tags = (
    st.sampled_from(
        ["hostile.Note", "hostile.Probe", "hostile.Tree", "no.such.tag", "masterless.NodeUp"]
    )
    | hostile_values
)
payloads = (
    st.fixed_dictionaries(
        {},
        optional={"seq": small_ints | hostile_values, "value": hostile_values, "extra": values},
    )
    | st.builds(Many, st.sampled_from([1000, 100_000, 500_000]))
    | hostile_values
)
correlation_ids = small_ints | hostile_values
senders = st.sampled_from(["zz-raw", None, "a"]) | hostile_values
envelopes = st.builds(envelope, kinds, targets, tags, payloads, correlation_ids, senders, senders)
# Asks whose replies the node cannot send: too large, or nested too deep to encode.
unsendable = st.builds(
    envelope,
    st.just(ASK),
    st.sampled_from(list(SINKS)),
    st.sampled_from(["hostile.MakeBig", "hostile.MakeDeep", "hostile.Tree"]),
    st.sampled_from([{"size": 10 * MIB}, {"depth": 600}, {"value": Deep(600)}]),
    small_ints,
)
packets = envelopes | unsendable | st.lists(values, max_size=9) | hostile_values
cases = st.lists(packets, min_size=1, max_size=3)

KNOWN_BAD: list[list[Any]] = [
    [envelope(ASK, Deep(980), "hostile.Note", {"seq": 1}, 1)],
    [envelope(ASK, "sink", Huge(3 * MIB), {"seq": 1}, 2)],
    [envelope(ASK, Huge(3 * MIB, binary=True), "hostile.Note", {"seq": 1}, 3)],
    [envelope(True, "sink", "hostile.Probe", {"seq": 4}, 4)],
    [envelope(ASK, "sink", "hostile.Note", Many(500_000), 5)],
    [envelope(ASK, "async-sink", "hostile.MakeBig", {"size": 10 * MIB}, 6)],
    [envelope(ASK, "sink", "hostile.Tree", {"value": Deep(600)}, 7)],
]


class Mesh:
    """Node "a" (both sinks), a good peer "b" connected to it, and a raw hostile peer."""

    def __init__(
        self, system: ActorSystem, good: ActorSystem, raw: RawPeer, sinks: dict[str, Sink]
    ) -> None:
        self.system = system
        self.good = good
        self.raw = raw
        self.sinks = sinks
        self.seq = GOOD_SEQ_BASE

    @classmethod
    async def start(cls) -> Mesh:
        system = ActorSystem("a", heartbeat_interval=1.0, heartbeat_timeout=60.0)
        good = ActorSystem("b", heartbeat_interval=1.0, heartbeat_timeout=60.0)
        await system.start()
        await good.start()
        sinks = {name: factory() for name, factory in SINKS.items()}
        for name, sink in sinks.items():
            system.spawn(name, sink)
        uri = system.info()
        assert uri is not None
        await good.connect(uri)
        return cls(system, good, await RawPeer.open(system), sinks)

    async def check(self, case: list[Any], log: LogBytes) -> bool:
        """Run one case and check its aftermath; False when the case was not sendable."""
        self.seq += 1
        seq = self.seq
        frames = [data_frame(packet) for packet in case]
        if any(len(frame) > MAX_FRAME - 64 for frame in frames):
            return False  # the transport refuses such a frame before the actor layer sees it
        log.reset()
        self.raw.largest = 0
        async with asyncio.timeout(CASE_DEADLINE):
            await self.raw.write(
                *frames, data_frame(envelope(TELL, "sink", "hostile.Note", {"seq": seq}))
            )
            await self.sinks["sink"].wait_note(seq)
            for name in SINKS:
                reply = await self.good.ask("a", name, Probe(seq=seq), timeout=CASE_DEADLINE)
                assert reply == Probe(seq=seq)
            assert self.good.tell("a", "async-sink", Note(seq=seq))
            await self.sinks["async-sink"].wait_note(seq)
        assert set(self.system.actors) == set(SINKS), f"an actor died: {self.system.actors}"
        assert not self.raw.eof, "the node dropped the raw peer over well-formed frames"
        assert self.raw.largest <= REPLY_BOUND, f"the node sent a {self.raw.largest}-byte frame"
        assert log.largest <= LOG_LINE_BOUND, f"a {log.largest}-char log line: {log.sample}"
        assert log.total <= LOG_BOUND, f"{log.total} chars logged in {log.records} records"
        return True

    async def close(self) -> None:
        await self.raw.close()
        await self.good.close()
        await self.system.close()


@pytest.mark.timeout(600)
def test_hostile_envelopes_cost_a_good_peer_nothing() -> None:
    with asyncio.Runner(debug=True) as runner, LogBytes() as log:
        mesh = runner.run(Mesh.start())
        ran: list[bool] = []
        try:

            @FUZZ
            @given(case=cases)
            def check(case: list[Any]) -> None:
                ran.append(runner.run(mesh.check(case, log)))

            for known in KNOWN_BAD:
                check = example(case=known)(check)
            check()
            # The fuzzer really ran: the known cases and most drawn ones reached the node.
            assert sum(ran) >= len(KNOWN_BAD) + FUZZ.max_examples // 2, ran
        finally:
            runner.run(mesh.close())
