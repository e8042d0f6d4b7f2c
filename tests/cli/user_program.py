"""A program that builds its own ActorSystem and serves it with system.run_until_signal()."""

from __future__ import annotations

import asyncio

from cli_app import Recorder

from actors import ActorSystem


async def main() -> None:
    system = ActorSystem("user-program")
    await system.start()
    system.spawn("recorder", Recorder())
    print("ready", system.info(), flush=True)
    stopped_by = await system.run_until_signal()
    print(
        "stopped by", stopped_by.name if stopped_by else None, "closed", system.closed, flush=True
    )


if __name__ == "__main__":
    asyncio.run(main())
