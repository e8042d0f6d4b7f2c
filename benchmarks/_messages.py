"""Message classes shared by the benchmark driver and its worker processes."""

from __future__ import annotations

import time

from actors import Actor, Message, handler


class Sample(Message, tag="bench.Sample"):
    """A three-field message, the unit of the actor throughput runs."""

    seq: int
    name: str
    value: float


class Ping(Message, tag="bench.Ping"):
    seq: int


class Pong(Message, tag="bench.Pong"):
    seq: int


class Count(Message, tag="bench.Count"):
    """Ask the sink how many samples it has handled."""


class Counted(Message, tag="bench.Counted"):
    total: int


class Stamp(Message, tag="bench.Stamp"):
    """A tell carrying its send time (``time.monotonic()``, one clock for the whole host)."""

    sent: float


class StampStats(Message, tag="bench.StampStats"):
    """Ask the sink for the delivery-latency percentiles of the stamps since the last ask."""


class Percentiles(Message, tag="bench.Percentiles"):
    count: int
    p50: float
    p99: float
    p999: float


class Sink(Actor):
    """Counts samples, answers pings and count requests, and times stamped tells."""

    def __init__(self) -> None:
        self.total = 0
        self.delays: list[float] = []

    @handler
    def on_sample(self, msg: Sample) -> None:
        self.total += 1

    @handler
    def on_ping(self, msg: Ping) -> Pong:
        return Pong(seq=msg.seq)

    @handler
    def on_count(self, msg: Count) -> Counted:
        return Counted(total=self.total)

    @handler
    def on_stamp(self, msg: Stamp) -> None:
        self.delays.append(time.monotonic() - msg.sent)

    @handler
    def on_stamp_stats(self, msg: StampStats) -> Percentiles:
        from ._util import percentiles

        stats = percentiles(self.delays)
        self.delays = []
        return Percentiles(
            count=int(stats["count"]), p50=stats["p50"], p99=stats["p99"], p999=stats["p99.9"]
        )


class Idle(Actor):
    """An actor that never receives anything (memory per idle actor)."""

    @handler
    def on_ping(self, msg: Ping) -> None:
        pass
