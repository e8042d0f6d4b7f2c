"""Run the counter ping-pong across two OS processes, as ``make demo`` does.

Starts ``counter_pingpong.py --role left --port 0``, reads the uri it prints, starts
``--role right --connect URI``, relays both outputs line by line, and exits non-zero if either
process fails or the whole run exceeds ``--timeout`` seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "counter_pingpong.py"
URI_LINE = re.compile(r"listening on (tcp://\S+)")


async def relay(name: str, stream: asyncio.StreamReader) -> None:
    """Print a child's output, prefixed with its name, until it closes."""
    async for raw in stream:
        print(f"{name:>5} | {raw.decode(errors='replace').rstrip()}", flush=True)


async def start(role: str, *args: str) -> asyncio.subprocess.Process:
    env = dict(os.environ)
    # Let the children import the packages from this checkout even when not installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE.parent), env.get("PYTHONPATH")]))
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLE),
        "--role",
        role,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )


async def read_uri(left: asyncio.subprocess.Process) -> str:
    """Relay the left node's first lines until it says where it listens."""
    assert left.stdout is not None
    async for raw in left.stdout:
        line = raw.decode(errors="replace").rstrip()
        print(f" left | {line}", flush=True)
        match = URI_LINE.search(line)
        if match:
            return match.group(1)
    raise RuntimeError("the left node exited before printing its uri")


async def run(args: argparse.Namespace) -> int:
    common = ["--limit", str(args.limit), "--timeout", str(args.timeout)]
    if args.every:
        common += ["--every", str(args.every)]
    processes: list[asyncio.subprocess.Process] = []
    try:
        async with asyncio.timeout(args.timeout + 10):
            left = await start("left", "--port", "0", *common)
            processes.append(left)
            uri = await read_uri(left)
            right = await start("right", "--connect", uri, *common)
            processes.append(right)
            assert left.stdout is not None and right.stdout is not None
            await asyncio.gather(relay("left", left.stdout), relay("right", right.stdout))
            codes = [await process.wait() for process in processes]
    except TimeoutError:
        print(f"demo: timed out after {args.timeout + 10} s", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"demo: failed: {exc}", file=sys.stderr)
        return 1
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
    if any(codes):
        print(f"demo: exit codes left={codes[0]} right={codes[1]}", file=sys.stderr)
        return 1
    print("demo: both nodes finished", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=10_000, help="hops before stopping")
    parser.add_argument("--every", type=int, default=0, help="progress every N hops")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds for each node")
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
