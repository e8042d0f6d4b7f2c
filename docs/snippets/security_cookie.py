"""Cookie authentication: same cookie connects, a wrong one is refused."""

import asyncio
import secrets

from actors import ActorSystem, NodeError
from transport import AuthenticationError


async def main() -> None:
    # --8<-- [start:cookie]
    cookie = secrets.token_bytes(32)  # in production: read it from a secret store or a file

    async with (
        ActorSystem("node-a", port=0, cookie=cookie) as node_a,
        ActorSystem("node-b", port=0, cookie=cookie) as node_b,
        ActorSystem("intruder", port=0, cookie=b"a guess") as intruder,
    ):
        uri = node_b.info()  # None only before start()
        assert uri is not None
        peer = await node_a.connect(uri)
        print("node-a connected to", peer)  # node-a connected to node-b

        try:
            await intruder.connect(uri)
        except NodeError as exc:
            # The transport's AuthenticationError is chained as the cause.
            assert isinstance(exc.__cause__, AuthenticationError)
            print("intruder refused:", exc.__cause__)
    # --8<-- [end:cookie]


if __name__ == "__main__":
    asyncio.run(main())
