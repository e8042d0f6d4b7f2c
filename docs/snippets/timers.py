"""Timers: messages an actor schedules for itself."""

import asyncio

from actors import Actor, ActorSystem, Message, Timer, handler


# --8<-- [start:actor]
class Tick(Message):
    pass


class GiveUp(Message):
    pass


class Poller(Actor):
    def __init__(self, finished: asyncio.Event) -> None:
        self.finished = finished
        self.ticks = 0
        self.polling: Timer | None = None

    def on_start(self) -> None:
        # Every 50 ms, starting now; and a one-shot deadline in 10 s.
        self.polling = self.context.schedule(0.0, Tick(), every=0.05)
        self.context.schedule(10.0, GiveUp())

    @handler
    def tick(self, msg: Tick) -> None:
        self.ticks += 1
        print("tick", self.ticks)
        if self.ticks == 3 and self.polling is not None:
            self.polling.cancel()  # no Tick from it is handled after this
            self.finished.set()

    @handler
    def give_up(self, msg: GiveUp) -> None:
        print("gave up")  # never printed: the actor stops first, and its timers end with it


# --8<-- [end:actor]


async def main() -> None:
    async with ActorSystem("node-a", port=0) as system:
        finished = asyncio.Event()
        system.spawn("poller", Poller(finished))
        await asyncio.wait_for(finished.wait(), 5.0)
        await system.stop("poller")  # the 10 s timer is cancelled here
        print("dead letters:", system.dead_letters)  # dead letters: 0


if __name__ == "__main__":
    asyncio.run(main())
