"""A program that builds its own ActorSystem and serves it with run_until_signal()."""

from __future__ import annotations

import asyncio

from cli_app import Recorder

from actors import ActorSystem, run_until_signal


async def main() -> None:
    system = ActorSystem("user-program")
    await system.start()
    system.spawn("recorder", Recorder())
    print("ready", system.info(), flush=True)
    stopped_by = await run_until_signal(system)
    print(
        "stopped by", stopped_by.name if stopped_by else None, "closed", system.closed, flush=True
    )


if __name__ == "__main__":
    asyncio.run(main())
