"""A program that runs its own node and stops it gracefully on SIGINT or SIGTERM.

`run_until_signal` serves the system (the control actor answers ``masterless status`` and
``masterless ping``) until a signal arrives, then closes it: every actor's ``on_stop`` runs and
peers see a clean close. To show that without a second terminal, this program sends itself
SIGTERM half a second after it starts.
"""

import asyncio
import os
import signal

from actors import Actor, ActorSystem, Message, handler, run_until_signal


class Greet(Message):
    name: str


# --8<-- [start:factory]
class Greeter(Actor):
    @handler
    def on_greet(self, msg: Greet) -> Greet:
        return Greet(name=f"hello, {msg.name}")

    def on_stop(self) -> None:
        print("greeter: on_stop ran")


def greeter(system: ActorSystem) -> None:
    """A factory for `masterless run running_program:greeter`: spawn this node's actors."""
    system.spawn("greeter", Greeter())


# --8<-- [end:factory]


# --8<-- [start:main]
async def main() -> None:
    system = ActorSystem("node-a", port=0)
    await system.start()
    greeter(system)
    loop = asyncio.get_running_loop()
    loop.call_later(0.5, os.kill, os.getpid(), signal.SIGTERM)  # stand-in for an operator
    stopped_by = await run_until_signal(system)  # returns once the system is closed
    print("stopped by", stopped_by.name if stopped_by else None)


# --8<-- [end:main]

if __name__ == "__main__":
    asyncio.run(main())
