"""Quickstart: two nodes, one counter actor, tell and ask."""

import asyncio

from actors import Actor, ActorSystem, Message, handler


# --8<-- [start:messages]
class Add(Message):
    amount: int


class GetTotal(Message):
    pass


class Total(Message):
    value: int


# --8<-- [end:messages]


# --8<-- [start:actor]
class Counter(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @handler
    def add(self, msg: Add) -> None:
        self.total += msg.amount

    @handler
    def get_total(self, msg: GetTotal) -> Total:
        return Total(value=self.total)


# --8<-- [end:actor]


# --8<-- [start:main]
async def main() -> None:
    async with (
        ActorSystem("node-a", port=0) as node_a,
        ActorSystem("node-b", port=0) as node_b,
    ):
        node_b.spawn("counter", Counter())

        # Dial node-b by its uri; from now on both nodes address each other by id.
        uri = node_b.info()  # None only before start()
        assert uri is not None
        await node_a.connect(uri)

        # tell: fire and forget. True means "handed to the transport".
        for amount in (1, 2, 3):
            node_a.tell("node-b", "counter", Add(amount=amount))

        # ask: wait for the handler's return value. Messages from one node to one actor
        # are handled in the order they were sent, so this sees all three adds.
        total = await node_a.ask("node-b", "counter", GetTotal(), timeout=5.0)
        print("total:", total.value)  # total: 6

        # A ref names one actor on one node; it has tell and ask too.
        counter = node_a.ref("node-b", "counter")
        counter.tell(Add(amount=4))
        total = await counter.ask(GetTotal(), timeout=5.0)
        print("total:", total.value)  # total: 10


# --8<-- [end:main]


# --8<-- [start:run]
if __name__ == "__main__":
    import logging

    # One line, so that warnings and errors (a handler that raised, dead letters, lost
    # connections) are printed to stderr instead of vanishing.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    asyncio.run(main())
# --8<-- [end:run]
