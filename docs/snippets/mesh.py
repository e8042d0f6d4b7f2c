"""The transport on its own: one node dials two others, sends to one, fans out to both."""

import asyncio
from typing import Any

from transport import Node

BURST = 1000


async def main() -> None:
    async with Node("hub") as hub, Node("left") as left, Node("right") as right:
        # --8<-- [start:receive]
        def greet(peer: str, packet: Any) -> None:
            if "hello" in packet:  # one call per packet
                print(f"left got {packet} from {peer}")

        received: dict[str, list[Any]] = {"left": [], "right": []}
        wanted = {"left": 1 + BURST, "right": BURST}
        everything_arrived = asyncio.Event()

        def collector(node_id: str) -> Any:
            def on_packets(peer: str, packets: list[Any]) -> None:
                # One call per socket read, with every packet of that read, in order.
                received[node_id].extend(packets)
                if all(len(received[n]) == wanted[n] for n in wanted):
                    everything_arrived.set()

            return on_packets

        left.on("message", greet)
        left.on("packets", collector("left"))
        right.on("packets", collector("right"))
        # --8<-- [end:receive]

        # --8<-- [start:connect]
        for node in (left, right):
            # Returns the peer's id once it is up, and keeps the peer: if the connection
            # drops, the hub re-dials it with backoff and queues packets for it meanwhile.
            await hub.connect(node.info() or "")
        print("hub is connected to", ", ".join(sorted(hub.peers)))
        # --8<-- [end:connect]

        # --8<-- [start:send]
        hub.send("left", {"hello": "left"})  # True: handed to the connection
        for n in range(BURST):
            # Encoded once, handed to both connections; a burst leaves in one write each.
            handed = hub.send(["left", "right"], {"n": n})
        print("the last packet was handed to", handed, "peers")
        # --8<-- [end:send]

        await asyncio.wait_for(everything_arrived.wait(), 10)
        in_order = [packet["n"] for packet in received["right"]] == list(range(BURST))
        print("right received", len(received["right"]), "packets, in order:", in_order)


asyncio.run(main())
