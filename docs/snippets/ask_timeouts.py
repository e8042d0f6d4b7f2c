"""Request/reply with ask: replies, remote errors and timeouts."""

import asyncio

from actors import Actor, ActorSystem, Message, RemoteError, handler


# --8<-- [start:actor]
class Divide(Message):
    numerator: float
    denominator: float


class Slow(Message):
    seconds: float


class Result(Message):
    value: float


class Calculator(Actor):
    @handler
    def divide(self, msg: Divide) -> Result:
        # The return value is the reply. A ZeroDivisionError raised here travels back to
        # the asker as a RemoteError; the actor itself keeps running.
        return Result(value=msg.numerator / msg.denominator)

    @handler
    async def slow(self, msg: Slow) -> Result:
        await asyncio.sleep(msg.seconds)  # stands for slow work, e.g. a database call
        return Result(value=msg.seconds)


# --8<-- [end:actor]


async def main() -> None:
    async with (
        ActorSystem("client", port=0) as client,
        ActorSystem("server", port=0) as server,
    ):
        server.spawn("calculator", Calculator())
        uri = server.info()  # None only before start()
        assert uri is not None
        await client.connect(uri)
        calculator = client.ref("server", "calculator")

        # --8<-- [start:reply]
        result = await calculator.ask(Divide(numerator=10, denominator=4), timeout=5.0)
        print("10 / 4 =", result.value)  # 10 / 4 = 2.5
        # --8<-- [end:reply]

        # --8<-- [start:error]
        try:
            await calculator.ask(Divide(numerator=1, denominator=0), timeout=5.0)
        except RemoteError as exc:
            print("remote error:", exc)  # names ZeroDivisionError and its message
        # --8<-- [end:error]

        # --8<-- [start:timeout]
        try:
            await calculator.ask(Slow(seconds=1.0), timeout=0.1)
        except TimeoutError:
            # The request may still be processed; its late reply is dropped.
            print("no reply within 0.1 s")
        # --8<-- [end:timeout]

        # --8<-- [start:after]
        # The actor is still there. This ask queues behind the slow one and is answered
        # after it: one message at a time, in arrival order.
        result = await calculator.ask(Divide(numerator=9, denominator=3), timeout=5.0)
        print("9 / 3 =", result.value)  # 9 / 3 = 3.0
        # --8<-- [end:after]


if __name__ == "__main__":
    asyncio.run(main())
