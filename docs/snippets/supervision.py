"""Supervision policies and dead letters."""

import asyncio

from actors import Actor, ActorSystem, AskError, Message, handler


# --8<-- [start:actor]
class Job(Message):
    item: str


class HowMany(Message):
    pass


class Done(Message):
    count: int


class Worker(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.done = 0

    @handler
    def job(self, msg: Job) -> None:
        if msg.item == "poison":
            raise ValueError(f"cannot process {msg.item!r}")
        self.done += 1

    @handler
    def how_many(self, msg: HowMany) -> Done:
        return Done(count=self.done)


# --8<-- [end:actor]


async def main() -> None:
    async with ActorSystem("node-a", port=0) as system:
        # --8<-- [start:spawn]
        system.spawn("resuming", Worker())  # supervision="resume" is the default
        system.spawn("restarting", Worker, supervision="restart")  # a factory, not an instance
        system.spawn("stopping", Worker(), supervision="stop")
        # --8<-- [end:spawn]

        # --8<-- [start:run]
        for name in ("resuming", "restarting", "stopping"):
            for item in ("a", "b", "poison", "c"):
                system.tell("node-a", name, Job(item=item))
            try:
                done = await system.ask("node-a", name, HowMany(), timeout=5.0)
                print(f"{name}: {done.count} jobs counted")
            except AskError as exc:  # the actor is gone: the ask became a dead letter
                print(f"{name}: {exc}")
        # --8<-- [end:run]

        # --8<-- [start:dead]
        system.tell("node-a", "nobody-by-this-name", Job(item="lost"))
        print("dead letters so far:", system.dead_letters)
        # --8<-- [end:dead]


if __name__ == "__main__":
    asyncio.run(main())
