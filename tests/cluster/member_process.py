"""A clustered transport node in its own process, for the SIGKILL and restart tests.

Usage: ``python member_process.py '{"id": ..., "seeds": [...], "options": {...}}'``. Prints one
JSON line ``{"uri": ..., "incarnation": ...}`` once listening, then runs until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from transport import Node


async def main(config: dict[str, object]) -> None:
    options = dict(config["options"])  # type: ignore[call-overload]
    node = Node(str(config["id"]), seeds=list(config["seeds"]), cluster=True, **options)  # type: ignore[call-overload]
    async with node:
        sys.stdout.write(json.dumps({"uri": node.info(), "incarnation": node.incarnation}) + "\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))
