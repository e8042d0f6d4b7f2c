"""One node of a mesh spread over several machines, configured from the environment.

    MASTERLESS_ID         this node's id, unique in the mesh (required)
    MASTERLESS_HOST       address to bind (default 127.0.0.1; 0.0.0.0 for all interfaces)
    MASTERLESS_PORT       port to listen on (default 9000; 0 picks a free one)
    MASTERLESS_ADVERTISE  uri peers dial back, e.g. tcp://10.0.0.5:9000 (default: bound address)
    MASTERLESS_COOKIE     shared secret of the mesh (required off loopback)
    MASTERLESS_SEEDS      comma-separated uris of nodes to connect to at start

Runs until SIGINT or SIGTERM.
"""

import asyncio
import os
import signal

from actors import ActorSystem, NodeError


# --8<-- [start:connect]
async def connect_with_retry(system: ActorSystem, uri: str) -> str:
    """Dial a seed until it answers: the other machine may not be up yet."""
    delay = 0.1
    while True:
        try:
            return await system.connect(uri)
        except NodeError as exc:
            print(f"{uri} not reachable ({exc}); retrying in {delay:.1f} s", flush=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)


# --8<-- [end:connect]


# --8<-- [start:main]
async def main() -> None:
    env = os.environ
    cookie = env.get("MASTERLESS_COOKIE")
    seeds = [uri for uri in env.get("MASTERLESS_SEEDS", "").split(",") if uri]

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    async with ActorSystem(
        env["MASTERLESS_ID"],
        host=env.get("MASTERLESS_HOST", "127.0.0.1"),
        port=int(env.get("MASTERLESS_PORT", "9000")),
        advertise=env.get("MASTERLESS_ADVERTISE"),
        cookie=cookie.encode() if cookie else None,
    ) as system:
        system.on("node_up", lambda peer, *_: print("node up:", peer, flush=True))
        system.on("node_down", lambda peer, *_: print("node down:", peer, flush=True))
        print("listening on", system.info(), flush=True)
        # Dial the seeds in the background, so a signal stops the node even while a seed
        # is still unreachable.
        dials = [asyncio.create_task(connect_with_retry(system, uri)) for uri in seeds]
        await stop.wait()
        for dial in dials:
            dial.cancel()
        await asyncio.gather(*dials, return_exceptions=True)
    print("stopped", flush=True)


# --8<-- [end:main]

if __name__ == "__main__":
    asyncio.run(main())
