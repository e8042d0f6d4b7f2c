import asyncio

from actors import Actor, ActorSystem, Message, handler


class Greet(Message):
    name: str


class Greeting(Message):
    text: str


class Greeter(Actor):
    @handler
    async def greet(self, msg: Greet) -> Greeting:
        return Greeting(text=f"hello, {msg.name}, from {self.context.system.id}")


async def main() -> None:
    async with ActorSystem("node-a", port=0) as a, ActorSystem("node-b", port=0) as b:
        b.spawn("greeter", Greeter())
        uri = b.info()  # None only before start()
        assert uri is not None
        await a.connect(uri)
        reply = await a.ask("node-b", "greeter", Greet(name="world"), timeout=5.0)
        print(reply.text)  # hello, world, from node-b


if __name__ == "__main__":
    asyncio.run(main())
