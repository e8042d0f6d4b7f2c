"""Replies of any type: a key-value actor that answers with plain values."""

import asyncio
from datetime import UTC, datetime

from actors import Actor, ActorSystem, AskError, Message, NodeDownError, handler


# --8<-- [start:actor]
class Put(Message):
    key: str
    value: int


class Get(Message):
    key: str


class Keys(Message):
    pass


class Stamp(Message):
    pass


class Store(Actor):
    def __init__(self) -> None:
        self.data: dict[str, int] = {}

    @handler
    def put(self, msg: Put) -> None:
        self.data[msg.key] = msg.value

    @handler
    def get(self, msg: Get) -> int | None:
        return self.data.get(msg.key)  # a plain int (or None) is the reply

    @handler
    def keys(self, msg: Keys) -> list[str]:
        return sorted(self.data)

    @handler
    def stamp(self, msg: Stamp) -> datetime:
        return datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


# --8<-- [end:actor]


async def main() -> None:
    async with (
        ActorSystem("client", port=0) as client,
        ActorSystem("server", port=0) as server,
    ):
        server.spawn("store", Store())
        uri = server.info()  # None only before start()
        assert uri is not None
        await client.connect(uri)

        # --8<-- [start:values]
        client.tell("server", "store", Put(key="apples", value=3))
        count = await client.ask("server", "store", Get(key="apples"))
        print("apples:", count)  # apples: 3
        names = await client.ask("server", "store", Keys())
        print("keys:", names)  # keys: ['apples']
        # --8<-- [end:values]

        # --8<-- [start:reply_type]
        # reply_type validates the reply on arrival and types the call: mypy sees an int.
        total: int = await client.ask("server", "store", Get(key="apples"), reply_type=int)
        print("total + 1 =", total + 1)  # total + 1 = 4

        # A datetime travels as ISO text; reply_type=datetime turns it back.
        when = await client.ask("server", "store", Stamp())
        print("native:", when)  # native: 2026-12-01T09:30:00+00:00
        stamp = await client.ask("server", "store", Stamp(), reply_type=datetime)
        print("typed:", stamp.isoformat(timespec="minutes"))  # typed: 2026-12-01T09:30+00:00

        try:
            await client.ask("server", "store", Keys(), reply_type=int)
        except AskError as exc:
            print("not an int:", type(exc).__name__)  # not an int: AskError
        # --8<-- [end:reply_type]

        # --8<-- [start:fail_fast]
        print("is server up?", client.is_up("server"))  # is server up? True
        try:
            await client.ask("elsewhere", "store", Keys(), timeout=None)
        except NodeDownError as exc:
            # Raised at once: an ask never waits for a node that is not connected.
            print("node down:", exc.node_id)  # node down: elsewhere
        # --8<-- [end:fail_fast]


if __name__ == "__main__":
    asyncio.run(main())
