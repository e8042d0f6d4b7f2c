"""A cluster in one process: three nodes join through a seed; metadata; a graceful leave."""

import asyncio

from transport import Member, Node

HEARTBEAT = 0.2  # fast timings so the example runs in a moment (defaults: 1 s and 5 s)
SILENCE = 1.0


async def main() -> None:
    # --8<-- [start:join]
    # The first node has no seeds.
    seed = Node("seed", cluster=True, heartbeat_interval=HEARTBEAT, heartbeat_timeout=SILENCE)
    await seed.start()
    uri = seed.info() or ""
    others = [
        Node(f"node-{i}", seeds=[uri], heartbeat_interval=HEARTBEAT, heartbeat_timeout=SILENCE)
        for i in range(3)
    ]
    for node in others:
        await node.start()  # dials the seed, learns the members, dials each one
    for node in [seed, *others]:
        await node.wait_for_members(4, timeout=10.0)
    print("node-0 sees", sorted(others[0].members))
    print("node-0 is connected to", sorted(others[0].peers))
    # --8<-- [end:join]

    # --8<-- [start:metadata]
    updated = asyncio.Event()
    seed.on("member_updated", lambda member: updated.set())
    others[0].set_metadata(b"role=worker")  # opaque to the mesh, gossiped to every member
    await asyncio.wait_for(updated.wait(), 10.0)
    print("seed reads node-0's metadata:", seed.members["node-0"].metadata)
    # --8<-- [end:metadata]

    # --8<-- [start:leave]
    gone = asyncio.Event()

    def on_member_down(member: Member, reason: str) -> None:
        print(f"seed: member_down {member.id} ({reason})")
        gone.set()

    seed.on("member_down", on_member_down)
    await others[2].close()  # a graceful close: "left", everywhere at once
    await asyncio.wait_for(gone.wait(), 10.0)
    print("seed now sees", sorted(seed.members))
    # --8<-- [end:leave]
    seed.off("member_down", on_member_down)

    for node in [*others[:2], seed]:
        await node.close()


asyncio.run(main())
