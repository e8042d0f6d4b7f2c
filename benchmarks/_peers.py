"""Other actor libraries and the seed, each measured in its own bounded subprocess.

``python -m benchmarks._peers NAME N [--depths 1,16]`` prints one JSON line: ``{"rate": ...}``,
``{"rates": {depth: ...}}`` (ray) or ``{"skip": "why"}``. A missing library is a skip, never an
error.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
SEED_VERSION = "0.4.1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- pykka: in-process ask ----------------------------------------------------------------------


def pykka_ask(n: int) -> dict[str, Any]:
    try:
        import pykka
    except ImportError:
        return {"skip": "pykka not installed (make bench-peers)"}

    class Echo(pykka.ThreadingActor):  # type: ignore[misc]
        def on_receive(self, message: Any) -> Any:
            return message

    ref = Echo.start()
    try:
        for i in range(min(200, n)):
            ref.ask(i)
        start = time.perf_counter()
        for i in range(n):
            ref.ask(i)
        return {"rate": n / (time.perf_counter() - start)}
    finally:
        ref.stop()


# --- thespian: multiprocTCPBase ask -------------------------------------------------------------

try:
    from thespian.actors import Actor as _ThespianActor
except ImportError:  # pragma: no cover - optional
    _ThespianActor = object


class ThespianEcho(_ThespianActor):  # type: ignore[misc, valid-type]
    def receiveMessage(self, message: Any, sender: Any) -> None:
        if isinstance(message, int):
            self.send(sender, message)


def thespian_ask(n: int) -> dict[str, Any]:
    try:
        from thespian.actors import ActorSystem
    except ImportError:
        return {"skip": "thespian not installed (make bench-peers)"}
    system = ActorSystem("multiprocTCPBase", {"Admin Port": _free_port()})
    try:
        echo = system.createActor(ThespianEcho)
        for i in range(min(100, n)):
            system.ask(echo, i, 5)
        start = time.perf_counter()
        for i in range(n):
            if system.ask(echo, i, 5) != i:
                return {"skip": "thespian ask timed out"}
        return {"rate": n / (time.perf_counter() - start)}
    finally:
        system.shutdown()


# --- xoscar: actor call across processes --------------------------------------------------------


def xoscar_call(n: int) -> dict[str, Any]:
    try:
        import xoscar as xo
    except ImportError:
        return {"skip": "xoscar not installed (make bench-peers)"}

    class Echo(xo.Actor):  # type: ignore[misc]
        def echo(self, value: Any) -> Any:
            return value

    async def main() -> dict[str, Any]:
        pool = await xo.create_actor_pool("127.0.0.1", n_process=1)
        async with pool:
            ref = await xo.create_actor(
                Echo,
                address=pool.external_address,
                uid="echo",
                allocate_strategy=xo.allocate_strategy.ProcessIndex(1),
            )
            for i in range(min(100, n)):
                await ref.echo(i)
            start = time.perf_counter()
            for i in range(n):
                await ref.echo(i)
            return {"rate": n / (time.perf_counter() - start)}

    return asyncio.run(main())


# --- ray: actor calls, one at a time and pipelined ---------------------------------------------


def ray_calls(n: int, depths: list[int]) -> dict[str, Any]:
    """Calls to one Ray actor: ``depth`` submitted, then ``ray.get`` of all of them, repeated.

    Depth 1 is the sequential call. This is Ray's own way of keeping calls in flight (a list of
    ``ObjectRef``s and one ``ray.get``), so each wave ends with nothing in flight.
    """
    try:
        import ray
    except ImportError:
        return {"skip": "ray not installed (make bench-peers)"}

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        object_store_memory=256 * 1024 * 1024,
    )
    try:

        @ray.remote
        class Echo:
            def echo(self, value: Any) -> Any:
                return value

        actor = Echo.remote()  # type: ignore[attr-defined]
        ray.get([actor.echo.remote(i) for i in range(200)])
        rates: dict[str, float] = {}
        for depth in depths:
            total = max(n, 4 * depth)
            start = time.perf_counter()
            done = 0
            while done < total:
                k = min(depth, total - done)
                ray.get([actor.echo.remote(i) for i in range(k)])
                done += k
            rates[str(depth)] = total / (time.perf_counter() - start)
        return {"rates": rates}
    finally:
        ray.shutdown()


# --- the seed library (npm masterless) ----------------------------------------------------------


def _seed_ready() -> str | None:
    if shutil.which("node") is None or shutil.which("npm") is None:
        return "node/npm not found"
    if not os.path.isdir(os.path.join(HERE, "node_modules", "masterless")):
        if os.environ.get("MASTERLESS_BENCH_INSTALL", "1") == "0":
            return "not installed, and MASTERLESS_BENCH_INSTALL=0 forbids npm install"
        try:
            subprocess.run(
                [
                    "npm",
                    "install",
                    "--no-save",
                    "--no-audit",
                    "--no-fund",
                    f"masterless@{SEED_VERSION}",
                ],
                cwd=HERE,
                check=True,
                timeout=120,
                capture_output=True,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            return f"npm install masterless@{SEED_VERSION} failed: {exc}"
    return None


def seed(mode: str, n: int, timeout: float = 100.0) -> dict[str, Any]:
    why = _seed_ready()
    if why is not None:
        return {"skip": why}
    script = os.path.join(HERE, "seed.js")
    sink = subprocess.Popen(
        ["node", script, "sink"],
        cwd=HERE,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    driver: subprocess.Popen[bytes] | None = None
    try:
        assert sink.stdout is not None
        line = sink.stdout.readline()
        if not line:
            return {"skip": f"seed sink exited before listening: {_last_line(sink)}"}
        info = json.loads(line)["info"]
        driver = subprocess.Popen(
            ["node", script, mode, info, str(n)],
            cwd=HERE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        # Watch both: a sink that dies mid-run must not leave the driver waiting for an answer.
        deadline = time.monotonic() + timeout
        while driver.poll() is None:
            if sink.poll() is not None:
                return {"skip": f"seed sink exited during the run: {_last_line(sink)}"}
            if time.monotonic() > deadline:
                return {"skip": f"seed {mode} did not finish within {timeout:.0f} s"}
            time.sleep(0.05)
        out, err = driver.communicate()
        if driver.returncode != 0:
            return {"skip": f"seed driver failed: {_tail(err)}"}
        result: dict[str, Any] = json.loads(out.splitlines()[-1])
        return result
    finally:
        for proc in (driver, sink):
            if proc is not None:
                _kill_group(proc)


def _tail(err: bytes) -> str:
    lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
    # Node prints its version last; the line naming the error is more useful.
    errors = [line for line in lines if "Error" in line]
    return (errors or lines or ["no output"])[0][:200]


def _last_line(proc: subprocess.Popen[bytes]) -> str:
    proc.wait()
    assert proc.stderr is not None
    return f"exit {proc.returncode}: {_tail(proc.stderr.read())}"


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


RUNS: dict[str, Callable[[int, list[int]], dict[str, Any]]] = {
    "ray": ray_calls,
    "pykka": lambda n, depths: pykka_ask(n),
    "thespian": lambda n, depths: thespian_ask(n),
    "xoscar": lambda n, depths: xoscar_call(n),
    "seed-oneway": lambda n, depths: seed("oneway", n),
    "seed-pingpong": lambda n, depths: seed("pingpong", n),
}


def cli() -> None:
    if sys.argv[1:] == ["--install-seed"]:
        why = _seed_ready()
        print(f"seed (npm masterless@{SEED_VERSION}): {why or 'installed'}")
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("name", choices=sorted(RUNS))
    parser.add_argument("n", type=int)
    parser.add_argument("--depths", default="1", help="comma-separated calls in flight (ray only)")
    args = parser.parse_args()
    try:
        result = RUNS[args.name](args.n, [int(d) for d in args.depths.split(",")])
    except Exception as exc:
        result = {"skip": f"{args.name} failed: {type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)  # thread pools of some libraries would otherwise keep the process alive


if __name__ == "__main__":
    cli()
