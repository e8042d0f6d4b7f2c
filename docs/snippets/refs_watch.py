"""Refs in messages, and death watch."""

import asyncio

from actors import Actor, ActorRef, ActorSystem, Message, Terminated, handler


# --8<-- [start:refs]
class Job(Message):
    n: int
    reply_to: ActorRef  # a ref is a field type like any other


class Done(Message):
    n: int
    square: int


class Worker(Actor):
    @handler
    def job(self, msg: Job) -> None:
        # The ref arrived over the network; it works here, on the worker's node.
        msg.reply_to.tell(Done(n=msg.n, square=msg.n * msg.n))


class Collector(Actor):
    def __init__(self, results: "asyncio.Queue[Done]") -> None:
        self.results = results

    @handler
    def done(self, msg: Done) -> None:
        self.results.put_nowait(msg)


# --8<-- [end:refs]


# --8<-- [start:watch]
class Watch(Message):
    ref: ActorRef


class Quit(Message):
    pass


class Monitor(Actor):
    def __init__(self, ended: "asyncio.Queue[Terminated]") -> None:
        self.ended = ended

    @handler
    def watch(self, msg: Watch) -> None:
        self.context.watch(msg.ref)  # watching twice is the same as once

    @handler
    def terminated(self, msg: Terminated) -> None:
        self.ended.put_nowait(msg)  # exactly one per watch


class Quitter(Actor):
    @handler
    async def quit(self, msg: Quit) -> None:
        await self.context.system.stop(self.context.name)


# --8<-- [end:watch]


async def main() -> None:
    async with (
        ActorSystem("client", port=0) as client,
        ActorSystem("server", port=0) as server,
    ):
        uri = server.info()  # None only before start()
        assert uri is not None
        await client.connect(uri)

        # --8<-- [start:send_ref]
        results: asyncio.Queue[Done] = asyncio.Queue()
        collector = client.spawn("collector", Collector(results))
        server.spawn("worker", Worker())
        client.tell("server", "worker", Job(n=7, reply_to=collector))
        done = await asyncio.wait_for(results.get(), 5.0)
        print(f"{done.n} squared is {done.square}")  # 7 squared is 49
        # --8<-- [end:send_ref]

        # --8<-- [start:run_watch]
        ended: asyncio.Queue[Terminated] = asyncio.Queue()
        client.spawn("monitor", Monitor(ended))
        server.spawn("quitter", Quitter())
        for target in (
            client.ref("server", "quitter"),  # will stop: "stopped"
            client.ref("server", "nobody"),  # does not exist: "not_found"
            client.ref("nowhere", "x"),  # node not connected: "node_down"
        ):
            await client.ask("client", "monitor", Watch(ref=target))
        # Sent after the watch, on the same connection: the watch is in place when it arrives.
        client.tell("server", "quitter", Quit())
        for _ in range(3):
            notice = await asyncio.wait_for(ended.get(), 5.0)
            print(f"{notice.ref.node_id}/{notice.ref.name}: {notice.reason}")
        # --8<-- [end:run_watch]


if __name__ == "__main__":
    asyncio.run(main())
