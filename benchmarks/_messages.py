"""Message classes shared by the benchmark driver and its worker processes."""

from __future__ import annotations

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


class Sink(Actor):
    """Counts samples, answers pings and count requests."""

    def __init__(self) -> None:
        self.total = 0

    @handler
    def on_sample(self, msg: Sample) -> None:
        self.total += 1

    @handler
    def on_ping(self, msg: Ping) -> Pong:
        return Pong(seq=msg.seq)

    @handler
    def on_count(self, msg: Count) -> Counted:
        return Counted(total=self.total)


class Idle(Actor):
    """An actor that never receives anything (memory per idle actor)."""

    @handler
    def on_ping(self, msg: Ping) -> None:
        pass
