"""Actor groups across a cluster: workers on three nodes, one tell_group, a member leaving."""

import asyncio

from actors import Actor, ActorSystem, MemberDown, MemberUp, Message, handler

HEARTBEAT = 0.2  # fast timings so the example runs in a moment (defaults: 1 s and 5 s)
SILENCE = 1.0
lines = asyncio.Queue[str]()  # what the actors saw, printed in order by main()


class Job(Message):
    n: int


class Worker(Actor):
    @handler
    def on_job(self, msg: Job) -> None:
        lines.put_nowait(f"{self.context.system.id}/{self.context.name} got job {msg.n}")


class Lookout(Actor):
    @handler
    def on_member_up(self, msg: MemberUp) -> None:
        lines.put_nowait(f"lookout: {msg.member_id} is up")

    @handler
    def on_member_down(self, msg: MemberDown) -> None:
        lines.put_nowait(f"lookout: {msg.member_id} is down ({msg.reason})")


async def main() -> None:
    # --8<-- [start:cluster]
    first = ActorSystem(
        "node-a", cluster=True, heartbeat_interval=HEARTBEAT, heartbeat_timeout=SILENCE
    )
    first.spawn("lookout", Lookout())  # gets MemberUp / MemberDown messages
    first.spawn("worker", Worker(), groups=["workers"])
    await first.start()
    others = [
        ActorSystem(
            f"node-{x}",
            seeds=[first.info() or ""],
            heartbeat_interval=HEARTBEAT,
            heartbeat_timeout=SILENCE,
        )
        for x in "bc"
    ]
    for system in others:
        system.spawn("worker", Worker(), groups=["workers"])
        await system.start()
    await first.wait_for_members(3, timeout=10.0)
    print(*sorted([await lines.get(), await lines.get()]), sep="\n")
    # --8<-- [end:cluster]

    # --8<-- [start:groups]
    # A member's groups arrive with its entry, so they are known once it is up.
    print("workers:", [f"{ref.node_id}/{ref.name}" for ref in first.group("workers")])
    handed = first.tell_group("workers", Job(n=1))  # encoded once, one delivery per member
    print("tell_group handed the job to", handed, "workers")
    print(*sorted([await lines.get() for _ in range(handed)]), sep="\n")
    # --8<-- [end:groups]

    # --8<-- [start:leave]
    await others[1].close()  # node-c leaves: its worker leaves the group everywhere
    print(await lines.get())
    print("workers:", [f"{ref.node_id}/{ref.name}" for ref in first.group("workers")])
    # --8<-- [end:leave]
    await others[0].close()
    await first.close()


asyncio.run(main())
