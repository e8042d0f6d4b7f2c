"""``python -m benchmarks``: run the suite, print a table of figures and ratios, save it.

Every figure is printed beside the raw-asyncio baseline measured in the same run and in the
same event loop: throughputs against the baseline's one-way msgs/s (same packet size), round
trips against its sequential ping-pong. Targets print PASS or MISS; a miss never fails the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from . import _cluster, _codec, _hostile, _opcount, _pipeline, _plot, _suite
from ._util import have_uvloop, run

SECTIONS = (
    "baseline",
    "transport",
    "multi",
    "actors",
    "pipeline",
    "latency",
    "group",
    "opcodes",
    "hostile",
    "codec",
    "scale",
    "cluster",
    "peers",
    "uvloop",
)
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


@dataclass
class Config:
    repeat: int
    warmup: int
    oneway_n: dict[str, int]
    rtt_n: int
    multi_n: int
    fanouts: list[int]
    tell_n: int
    fanout: int
    fanout_n: int
    mesh_sizes: list[int]
    burst_per_pair: int
    memory_mesh: int
    memory_actors: int
    peer_rtt_n: int
    seed_oneway_n: int
    codec_n: int
    depths: list[int]
    pipeline_n: int
    pipeline_per_lane: int
    latency_depth: int
    latency_seconds: float
    ray_n: int
    opcode_n: int
    sizes: list[str] = field(default_factory=lambda: ["40 B", "4 KiB", "256 KiB"])


FULL = Config(
    repeat=3,
    warmup=20_000,
    oneway_n={"40 B": 300_000, "4 KiB": 40_000, "256 KiB": 1_000},
    rtt_n=4_000,
    multi_n=50_000,
    fanouts=[1, 4, 16],
    tell_n=100_000,
    fanout=16,
    fanout_n=10_000,
    mesh_sizes=[10, 50, 100],
    burst_per_pair=10,
    memory_mesh=20,
    memory_actors=1_000,
    peer_rtt_n=2_000,
    seed_oneway_n=300_000,
    codec_n=200_000,
    depths=[1, 16, 256, 4096],
    pipeline_n=40_000,
    pipeline_per_lane=100,
    latency_depth=256,
    latency_seconds=3.0,
    ray_n=2_000,
    opcode_n=4_096,
)

SMOKE = Config(
    repeat=1,
    warmup=1_000,
    oneway_n={"40 B": 5_000, "4 KiB": 500, "256 KiB": 20},
    rtt_n=200,
    multi_n=1_000,
    fanouts=[1, 4],
    tell_n=2_000,
    fanout=4,
    fanout_n=200,
    mesh_sizes=[5],
    burst_per_pair=2,
    memory_mesh=4,
    memory_actors=50,
    peer_rtt_n=100,
    seed_oneway_n=5_000,
    codec_n=2_560,
    depths=[1, 16, 256, 4096],
    pipeline_n=4_096,
    pipeline_per_lane=1,
    latency_depth=16,
    latency_seconds=0.2,
    ray_n=0,  # ray.init() alone takes seconds: smoke runs skip Ray
    opcode_n=256,
)


@dataclass
class Row:
    section: str
    name: str
    value: float | None
    unit: str
    baseline: float | None = None
    ratio: float | None = None
    note: str = ""


@dataclass
class Target:
    text: str
    status: str  # PASS, MISS or SKIP
    measured: str


class Report:
    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.targets: list[Target] = []
        self.values: dict[str, float] = {}

    def add(
        self,
        key: str,
        section: str,
        name: str,
        value: float | None,
        unit: str,
        baseline: float | None = None,
        note: str = "",
        higher_is_better: bool = True,
    ) -> None:
        ratio = None
        if value is not None and baseline:
            ratio = value / baseline if higher_is_better else baseline / value
        if value is not None:
            self.values[key] = value
        self.rows.append(Row(section, name, value, unit, baseline, ratio, note))

    def target(self, text: str, ok: bool | None, measured: str) -> None:
        status = "SKIP" if ok is None else "PASS" if ok else "MISS"
        self.targets.append(Target(text, status, measured))


def progress(text: str) -> None:
    print(f"  {time.strftime('%H:%M:%S')} {text}", flush=True)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "skipped"
    if unit == "s":
        # Under 0.1 s two decimals of a second hide the figure (a small raw mesh: ~2 ms).
        return f"{value * 1e3:.1f} ms" if value < 0.1 else f"{value:.2f} s"
    if unit == "ms":
        return f"{value:.2f} ms"
    if unit == "KiB":
        return f"{value:.2f} KiB"
    if unit == "B":
        return f"{value:.0f} B"
    if unit == "msgs":
        return f"{value:,.0f}"
    if unit == "ops":
        return f"{value:,.0f} opcodes"
    if unit == "us":
        return f"{value:,.0f} µs"
    return f"{value:,.0f} {unit}"


def _peer(
    name: str, n: int, timeout: float = 120.0, extra: list[str] | None = None
) -> dict[str, Any]:
    """Run one peer measurement in its own session, bounded and always cleaned up."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "benchmarks._peers", name, str(n), *(extra or [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        result: dict[str, Any] = json.loads(out.decode().splitlines()[-1])
        return result
    except subprocess.TimeoutExpired:
        return {"skip": f"{name} did not finish within {timeout:.0f} s"}
    except (ValueError, IndexError):
        return {"skip": f"{name} printed no result"}
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, 9)
        proc.wait()


def run_suite(cfg: Config, only: set[str], smoke: bool, report: Report) -> None:
    def want(section: str) -> bool:
        return not only or section in only

    sizes = cfg.sizes
    base: dict[str, float] = {}
    # The baseline is measured whenever anything is compared with it.
    print("== raw asyncio baseline (two processes, length-prefixed msgpack over Protocols)")
    base = run(lambda: _suite.baseline(cfg, "asyncio", sizes, progress))
    for size in sizes:
        report.add(
            f"raw oneway {size}",
            "baseline",
            f"raw asyncio one-way, {size}",
            base[f"oneway {size}"],
            "msgs/s",
        )
    report.add("raw pingpong", "baseline", "raw asyncio ping-pong", base["pingpong"], "rt/s")
    one = base["oneway 40 B"]
    rtt = base["pingpong"]

    if want("transport"):
        print("== transport: Node.send between two processes")
        t = run(lambda: _suite.transport_runs(cfg, "asyncio", sizes, progress))
        for size in sizes:
            report.add(
                f"transport oneway {size}",
                "transport",
                f"Node.send one-way, {size}",
                t[f"oneway {size}"],
                "msgs/s",
                base[f"oneway {size}"],
            )
        report.add(
            "transport pingpong", "transport", "Node.send ping-pong", t["pingpong"], "rt/s", rtt
        )
    if want("multi"):
        print("== transport: multi-dispatch, one encode for all peers")
        m = run(lambda: _suite.multi_dispatch(cfg, "asyncio", cfg.fanouts, progress))
        for k in cfg.fanouts:
            report.add(
                f"multi {k}",
                "transport",
                f"send([{k} peers]) deliveries",
                m[f"{k} deliveries"],
                "msgs/s",
                one,
                note=f"{m[f'{k} sends']:,.0f} sends/s, {m[f'{k} bytes']:.0f} B encoded per send",
            )
    if want("actors"):
        print("== actors")
        a = run(lambda: _suite.actor_runs(cfg, "asyncio", True, progress))
        report.add(
            "raw oneway interleaved",
            "actors",
            "raw asyncio one-way, 40 B, in turn with the tells",
            a["raw oneway"],
            "msgs/s",
        )
        report.add(
            "actor tell", "actors", "tell, two processes", a["tell"], "msgs/s", a["raw oneway"]
        )
        report.add("actor ask", "actors", "ask, two processes", a["ask"], "rt/s", rtt)
        report.add(
            "actor ask 1proc",
            "actors",
            "ask, two systems in one process",
            a["ask 1proc"],
            "rt/s",
            rtt,
        )
        report.add("actor ask local", "actors", "ask, same system", a["ask local"], "rt/s", rtt)
        report.add(
            "actor tell local", "actors", "tell, same system", a["tell local"], "msgs/s", one
        )
    if want("pipeline"):
        print("== pipeline: asks in flight, against raw request/response (a future per request)")
        pl = run(lambda: _pipeline.pipeline_runs(cfg, progress))
        for depth in cfg.depths:
            report.add(
                f"raw pipe {depth}",
                "pipeline",
                f"raw asyncio request/response, {depth} in flight",
                pl[f"raw {depth}"],
                "req/s",
            )
        report.add(
            "pipe pingpong",
            "pipeline",
            "raw asyncio ping-pong (wait_for per round trip), interleaved with ask, 1 in flight",
            pl["pingpong"],
            "rt/s",
        )
        for depth in cfg.depths:
            report.add(
                f"ask pipe {depth}",
                "pipeline",
                f"ask, two processes, {depth} in flight",
                pl[f"ask {depth}"],
                "req/s",
                pl[f"raw {depth}"],
            )
    if want("latency"):
        print("== latency: percentiles at half the measured maximum rate, raw offered the same")
        lat = run(lambda: _pipeline.latency_runs(cfg, progress))
        for kind, unit_name in (("ask", "round trip"), ("tell", "delivery")):
            ours, raw = lat[kind], lat[f"raw {kind}"]
            for q in ("p50", "p99", "p99.9"):
                report.add(
                    f"raw {kind} {q}",
                    "latency",
                    f"raw asyncio {unit_name} {q}",
                    raw[q] * 1e6,
                    "us",
                )
            for q in ("p50", "p99", "p99.9"):
                report.add(
                    f"{kind} {q}",
                    "latency",
                    f"{kind} {unit_name} {q}",
                    ours[q] * 1e6,
                    "us",
                    raw[q] * 1e6,
                    note=_load_note(lat[f"{kind} max"], ours, raw),
                )
    if want("group"):
        print(f"== group: one message to {cfg.fanout} nodes, counted once")
        g = run(lambda: _pipeline.group_runs(cfg, progress))
        k = cfg.fanout
        report.add(
            "raw group", "group", f"raw asyncio, one frame to {k} connections", g["raw"], "sends/s"
        )
        for key, label in (
            ("transport", f"Node.send([{k} peers])"),
            ("actors", f"tell([{k} nodes])"),
        ):
            report.add(
                f"{key} group",
                "group",
                label,
                g[key],
                "sends/s",
                g["raw"],
                note=f"{g[key] * k:,.0f} deliveries/s",
            )
    if want("opcodes"):
        print("== opcodes: interpreter work per request, both ends in one process (traced)")
        ops = run(lambda: _opcount.opcode_runs(cfg, progress))
        report.add("raw ops oneway", "opcodes", "raw asyncio one-way", ops["raw oneway"], "ops")
        for depth in (1, 256):
            report.add(
                f"raw ops {depth}",
                "opcodes",
                f"raw asyncio request/response, {depth} in flight",
                ops[f"raw {depth}"],
                "ops",
            )
        report.add(
            "tell ops",
            "opcodes",
            "tell, per message",
            ops["tell"],
            "ops",
            ops["raw oneway"],
            note="top: " + _top(ops["tell top"]),
        )
        for depth in (1, 256):
            report.add(
                f"ask ops {depth}",
                "opcodes",
                f"ask, {depth} in flight",
                ops[f"ask {depth}"],
                "ops",
                ops[f"raw {depth}"],
                note=f"{ops[f'ask {depth}'] / 2:,.0f} per packet; top: "
                + _top(ops[f"ask {depth} top"]),
            )
    if want("hostile"):
        print("== hostile: a good peer's ask latency while another peer floods 6 MB asks")
        h = run(lambda: _hostile.hostile_runs(*_hostile.COUNTS[smoke], progress))
        _hostile.report_rows(report, h)
    if want("codec"):
        print("== codec: encode and decode a message in one process, against what masterless does")
        c = _codec.codec_runs(cfg.codec_n, progress)
        for kind, rows in c.items():
            baseline = rows[0][1]
            for index, (label, rate, note) in enumerate(rows):
                report.add(
                    f"codec {kind} {index}",
                    "codec",
                    f"{kind}: {label}",
                    rate,
                    "msgs/s",
                    None if index == 0 else baseline,
                    note=note,
                )
    if want("scale"):
        print("== scale: N nodes in one process, full mesh")
        s = run(lambda: _suite.scale(cfg, progress))
        for n in cfg.mesh_sizes:
            report.add(
                f"settle {n}", "scale", f"{n}-node full mesh: time to settle", s[f"settle {n}"], "s"
            )
            report.add(
                f"lost {n}",
                "scale",
                f"{n}-node all-to-all burst: lost",
                s[f"lost {n}"],
                "msgs",
                note=f"of {s[f'burst {n}']:,.0f} sent",
            )
        report.add(
            "mem conn",
            "scale",
            f"memory per idle connection ({cfg.memory_mesh}-node mesh, both ends)",
            s["bytes per connection"] / 1024,
            "KiB",
        )
        report.add(
            "mem actor",
            "scale",
            f"memory per idle actor ({cfg.memory_actors} actors)",
            s["bytes per actor"] / 1024,
            "KiB",
        )
    if want("cluster"):
        processes = 2 if smoke else _cluster.PROCESSES
        print(f"== cluster: N members over {processes} processes join through one seed")
        counts = [5] if smoke else [30, 100, 200]
        # Smoke runs detection with fast heartbeats (0.2 s / 1 s) to stay short.
        heartbeat = (0.2, 1.0) if smoke else (1.0, 5.0)
        idle_seconds = 1.0 if smoke else 10.0
        cl = run(
            lambda: _cluster.cluster_runs(counts, idle_seconds, heartbeat, progress, processes)
        )

        def join_rows(cl: dict[str, Any], n: int, suffix: str, label: str) -> bool:
            """The join rows of size ``n`` (``suffix`` " slow": its run with timeouts scaled);
            whether it converged."""
            key = f"{n}{suffix}"
            joined = f"{label}: join through one seed"
            if f"unconverged {key}" in cl:
                note = cl[f"unconverged {key}"]
                report.add(f"converge {key}", "cluster", joined, None, "s", note=note)
                return False
            if f"converge {key}" not in cl:
                return False
            converged, raw = cl[f"converge {key}"], cl[f"raw {n}"]
            report.add(f"converge {key}", "cluster", joined, converged, "s", raw)
            idle = f"{label}: idle gossip per member"
            report.add(f"gossip idle {key}", "cluster", idle, cl[f"idle {key}"], "B/s")
            return True

        for n in counts:
            if f"skip {n}" in cl:
                note = f"skipped: {cl[f'skip {n}']}"
                report.add(f"converge {n}", "cluster", f"{n} members: join", None, "s", note=note)
                continue
            spread = f"{n} members over {cl[f'processes {n}']} processes"
            report.add(
                f"raw mesh {n}",
                "cluster",
                f"{spread}: raw asyncio full mesh, every pair dialled once",
                cl[f"raw {n}"],
                "s",
                note=f"{n * (n - 1) // 2:,} connections",
            )
            if not join_rows(cl, n, "", spread):
                join_rows(cl, n, " slow", f"{spread}, timeouts x{_cluster.SLOW_SCALE:g}")
        detect_label = f"SIGKILL to member_down on all ({cl['detect size']:.0f} members)"
        if "detect" in cl:
            report.add("detect", "cluster", detect_label, cl["detect"], "s")
        else:
            note = f"skipped: {cl['skip detect']}"
            report.add("detect", "cluster", detect_label, None, "s", note=note)
        if "converge 100" in cl:
            report.target(
                f"100 members converge in <= 5 s (over {cl['processes 100']} processes)",
                cl["converge 100"] <= 5.0,
                f"{cl['converge 100']:.2f} s",
            )
        idles = [cl[key] for key in cl if key.startswith("idle ")]
        worst = max(idles) if idles else None
        report.target(
            "idle gossip <= 1 KiB/s per member",
            None if worst is None else worst <= 1024,
            "skipped" if worst is None else f"{worst:.0f} B/s",
        )
        detect = cl.get("detect")
        report.target(
            f"detection <= heartbeat timeout + 2 s ({heartbeat[1] + 2:.0f} s)",
            None if detect is None else detect <= heartbeat[1] + 2,
            "skipped" if detect is None else f"{detect:.2f} s",
        )
    if want("peers"):
        print("== peers (each optional; skipped when not installed)")
        runs = [
            ("seed-oneway", "seed (npm masterless) one-way", "msgs/s", one, cfg.seed_oneway_n),
            ("seed-pingpong", "seed (npm masterless) ping-pong", "rt/s", rtt, cfg.peer_rtt_n),
            ("pykka", "Pykka ask, in-process threads", "rt/s", rtt, cfg.peer_rtt_n),
            ("thespian", "Thespian multiprocTCPBase ask", "rt/s", rtt, cfg.peer_rtt_n // 2),
            ("xoscar", "xoscar actor call, two processes", "rt/s", rtt, cfg.peer_rtt_n),
        ]
        _ray_rows(cfg, report, rtt)
        for key, label, unit, against, n in runs:
            result = _peer(key, n)
            if "skip" in result:
                progress(f"{label}: SKIPPED: {result['skip']}")
                report.add(key, "peers", label, None, unit, note=f"skipped: {result['skip']}")
            else:
                progress(f"{label}: {result['rate']:,.0f} {unit}")
                report.add(key, "peers", label, result["rate"], unit, against)
    if want("uvloop"):
        if not have_uvloop():
            print("== uvloop: SKIPPED: uvloop not installed (pip install 'masterless[fast]')")
            report.add(
                "uv skip", "uvloop", "uvloop runs", None, "", note="skipped: uvloop not installed"
            )
        else:
            print("== uvloop: baseline, transport and actors again on uvloop")
            ub = run(lambda: _suite.baseline(cfg, "uvloop", ["40 B"], progress), "uvloop")
            ut = run(lambda: _suite.transport_runs(cfg, "uvloop", ["40 B"], progress), "uvloop")
            ua = run(lambda: _suite.actor_runs(cfg, "uvloop", False, progress), "uvloop")
            uone, urtt = ub["oneway 40 B"], ub["pingpong"]
            report.add("uv raw oneway", "uvloop", "raw one-way, 40 B (uvloop)", uone, "msgs/s")
            report.add("uv raw pingpong", "uvloop", "raw ping-pong (uvloop)", urtt, "rt/s")
            report.add(
                "uv transport oneway",
                "uvloop",
                "Node.send one-way, 40 B (uvloop)",
                ut["oneway 40 B"],
                "msgs/s",
                uone,
            )
            report.add(
                "uv transport pingpong",
                "uvloop",
                "Node.send ping-pong (uvloop)",
                ut["pingpong"],
                "rt/s",
                urtt,
            )
            report.add(
                "uv actor tell",
                "uvloop",
                "tell, two processes (uvloop)",
                ua["tell"],
                "msgs/s",
                ua["raw oneway"],
            )
            report.add(
                "uv actor ask", "uvloop", "ask, two processes (uvloop)", ua["ask"], "rt/s", urtt
            )
            report.add(
                "uv actor ask 1proc",
                "uvloop",
                "ask, one process (uvloop)",
                ua["ask 1proc"],
                "rt/s",
                urtt,
            )
    judge(report, cfg)


def _top(top: list[tuple[str, float]], k: int = 5) -> str:
    return ", ".join(f"{name} {ops:.0f}" for name, ops in top[:k])


def _load_note(top: float, ours: dict[str, float], raw: dict[str, float]) -> str:
    note = (
        f"at {ours['offered']:,.0f}/s (half of {top:,.0f}/s); achieved {ours['achieved']:,.0f}/s, "
        f"raw {raw['achieved']:,.0f}/s"
    )
    if ours.get("refused"):
        note += f"; {ours['refused']:,.0f} refused past the high-water mark"
    return note


def _ray_rows(cfg: Config, report: Report, rtt: float) -> None:
    """Ray's sequential and pipelined actor calls, against the raw twins of the same depth."""
    depths = cfg.depths
    if not cfg.ray_n:
        result: dict[str, Any] = {"skip": "not run in smoke mode (ray.init() alone takes seconds)"}
    else:
        result = _peer(
            "ray", cfg.ray_n, timeout=300, extra=["--depths", ",".join(map(str, depths))]
        )
    for depth in depths:
        key = f"ray pipe {depth}"
        label = (
            "Ray actor call, sequential (ray.init(num_cpus=2))"
            if depth == 1
            else f"Ray actor calls, {depth} in flight"
        )
        unit = "rt/s" if depth == 1 else "req/s"
        against = rtt if depth == 1 else report.values.get(f"raw pipe {depth}")
        if "skip" in result:
            if depth == depths[0]:
                progress(f"Ray: SKIPPED: {result['skip']}")
            report.add(key, "peers", label, None, unit, note=f"skipped: {result['skip']}")
        else:
            rate = result["rates"][str(depth)]
            progress(f"{label}: {rate:,.0f} {unit}")
            report.add(key, "peers", label, rate, unit, against)


def judge(report: Report, cfg: Config) -> None:
    v = report.values

    def ratio(a: str, b: str) -> float | None:
        return v[a] / v[b] if a in v and b in v and v[b] else None

    def check(text: str, r: float | None, at_least: float) -> None:
        report.target(
            text, None if r is None else r >= at_least, "n/a" if r is None else f"{r:.2f}x"
        )

    check(
        "transport one-way send >= 0.8x raw (40 B)",
        ratio("transport oneway 40 B", "raw oneway 40 B"),
        0.8,
    )
    check(
        "actor tell >= 0.6x raw one-way (measured in turn)",
        ratio("actor tell", "raw oneway interleaved"),
        0.6,
    )
    check("actor tell >= 1.5x seed one-way", ratio("actor tell", "seed-oneway"), 1.5)
    check(
        "pipelined ask (256 in flight) >= 0.8x raw request/response",
        ratio("ask pipe 256", "raw pipe 256"),
        0.8,
    )
    ray_pipelined = [v[f"ray pipe {d}"] for d in cfg.depths if d > 1 and f"ray pipe {d}" in v]
    check(
        "pipelined ask (256 in flight) >= 20x Ray pipelined calls (its best depth)",
        v["ask pipe 256"] / max(ray_pipelined) if ray_pipelined and "ask pipe 256" in v else None,
        20.0,
    )
    # Measured in turn with the raw ping-pong (the pipeline section), so that both see the
    # same load; without that section, the actors section's ask against the baseline's.
    sequential = "ask pipe 1" if "ask pipe 1" in v else "actor ask"
    check(
        "sequential ask >= 0.85x raw ping-pong (two processes)",
        ratio("ask pipe 1", "pipe pingpong") or ratio("actor ask", "raw pingpong"),
        0.85,
    )
    check("sequential ask >= 8x Ray sequential calls", ratio(sequential, "ray pipe 1"), 8.0)
    p99 = ratio("ask p99", "raw ask p99")
    report.target(
        "ask p99 <= 2x raw p99 (same offered rate)",
        None if p99 is None else p99 <= 2.0,
        "n/a" if p99 is None else f"{p99:.2f}x",
    )
    check("ask >= 4x Thespian round trips", ratio("actor ask", "thespian"), 4.0)
    mem_conn = v.get("mem conn")
    report.target(
        "<= 64 KiB per idle connection",
        None if mem_conn is None else mem_conn <= 64,
        _kib(mem_conn),
    )
    mem_actor = v.get("mem actor")
    report.target(
        "<= 4 KiB per idle actor", None if mem_actor is None else mem_actor <= 4, _kib(mem_actor)
    )
    biggest = max(cfg.mesh_sizes)
    settle = v.get(f"settle {biggest}")
    report.target(
        f"{biggest}-node full mesh settles in <= 10 s"
        + ("" if biggest == 100 else " (smoke: small N)"),
        None if settle is None else settle <= 10,
        "n/a" if settle is None else f"{settle:.2f} s",
    )
    lost = [v[f"lost {n}"] for n in cfg.mesh_sizes if f"lost {n}" in v]
    report.target(
        "zero messages lost in the all-to-all burst",
        None if not lost else sum(lost) == 0,
        "n/a" if not lost else f"{sum(lost):.0f} lost",
    )


def _kib(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} KiB"


def machine() -> dict[str, Any]:
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "cpu": cpu,
        "uvloop": have_uvloop(),
    }


def table(report: Report) -> list[str]:
    lines = [
        "| section | measurement | figure | raw baseline | ratio | note |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.rows:
        figure = _fmt(row.value, row.unit)
        if row.value is None and row.note.startswith("not converged"):
            figure = "not converged"
        lines.append(
            f"| {row.section} | {row.name} | {figure} | "
            f"{_fmt(row.baseline, row.unit) if row.baseline else ''} | "
            f"{'' if row.ratio is None else f'{row.ratio:.2f}x'} | {row.note} |"
        )
    lines += ["", "| target | measured | result |", "|---|---|---|"]
    for t in report.targets:
        lines.append(f"| {t.text} | {t.measured} | {t.status} |")
    return lines


def spread(paths: list[str]) -> list[str]:
    """A Markdown table: each target's measured value in every run, its range, and its passes."""
    runs = []
    for path in paths:
        with open(path) as handle:
            runs.append(json.load(handle))
    texts: list[str] = []
    for run_ in runs:
        for t in run_["targets"]:
            if t["text"] not in texts:
                texts.append(t["text"])
    lines = [
        f"| target | {len(runs)} runs: lowest to highest | passed | each run |",
        "|---|---|---|---|",
    ]
    for text in texts:
        found = [t for r in runs for t in r["targets"] if t["text"] == text]
        measured = [t for t in found if t["status"] != "SKIP"]
        if not measured:
            lines.append(f"| {text} | n/a | skipped | |")
            continue
        values = [_number(t["measured"]) for t in measured]
        unit = measured[0]["measured"].lstrip("0123456789.,-")
        low, high = min(values), max(values)
        passed = sum(t["status"] == "PASS" for t in measured)
        each = ", ".join(t["measured"] for t in measured)
        span = f"{low:.2f}{unit} to {high:.2f}{unit}"
        lines.append(f"| {text} | {span} | {passed} of {len(measured)} | {each} |")
    return lines


def _number(measured: str) -> float:
    digits = ""
    for char in measured:
        if char.isdigit() or char in ".-":
            digits += char
        elif char != ",":
            break
    return float(digits)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--smoke", action="store_true", help="tiny counts: checks the suite runs, in seconds"
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        default=[],
        metavar="NAME",
        help=f"run only this section (repeatable): {', '.join(SECTIONS)}",
    )
    parser.add_argument(
        "--json", metavar="PATH", help="write results as JSON (default: benchmarks/results/)"
    )
    parser.add_argument(
        "--markdown",
        metavar="PATH",
        help="write the table as Markdown (default: benchmarks/results/)",
    )
    parser.add_argument(
        "--spread",
        nargs="+",
        metavar="JSON",
        help="print no run: the spread of each target over these result files, as Markdown",
    )
    args = parser.parse_args(argv)
    if args.spread:
        print("\n".join(spread(args.spread)))
        return 0
    cfg = SMOKE if args.smoke else FULL
    report = Report()
    info = machine()
    print(
        f"masterless benchmarks ({'smoke' if args.smoke else 'full'}): Python {info['python']}, "
        f"{info['cpus']} CPUs ({info['cpu']}), "
        f"uvloop {'installed' if info['uvloop'] else 'missing'}"
    )
    started = time.perf_counter()
    run_suite(cfg, set(args.only) - {"baseline"}, args.smoke, report)
    elapsed = time.perf_counter() - started
    lines = table(report)
    print()
    print("\n".join(lines))
    print(f"\n(total {elapsed:.1f} s; targets print PASS/MISS and never fail the run)")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    mode = "smoke" if args.smoke else "full"
    json_path = args.json or os.path.join(RESULTS, f"{mode}-{stamp}.json")
    md_path = args.markdown or os.path.join(RESULTS, f"{mode}-{stamp}.md")
    for path in (json_path, md_path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(json_path, "w") as handle:
        json.dump(
            {
                "mode": mode,
                "machine": info,
                "seconds": elapsed,
                "rows": [asdict(r) for r in report.rows],
                "targets": [asdict(t) for t in report.targets],
            },
            handle,
            indent=2,
        )
    with open(md_path, "w") as handle:
        handle.write("\n".join(lines) + "\n")
    print(f"wrote {json_path} and {md_path}")
    series = {
        label: [report.values.get(f"{prefix} {depth}") for depth in cfg.depths]
        for label, prefix in (
            ("raw asyncio request/response", "raw pipe"),
            ("masterless ask", "ask pipe"),
            ("Ray actor calls", "ray pipe"),
        )
    }
    if any(value is not None for values in series.values() for value in values):
        png_path = os.path.splitext(json_path)[0] + ".png"
        why = _plot.throughput_by_depth(png_path, cfg.depths, series, info)
        print(f"plot: not written: {why}" if why else f"wrote {png_path}")
    return 0


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    sys.exit(main())
