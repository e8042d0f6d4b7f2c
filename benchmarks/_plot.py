"""The throughput-against-depth plot, written next to the JSON results (needs matplotlib)."""

from __future__ import annotations

from typing import Any


def throughput_by_depth(
    path: str, depths: list[int], series: dict[str, list[float | None]], machine: dict[str, Any]
) -> str | None:
    """Plot requests/s against requests in flight, one line per system, into a PNG at ``path``.

    Args:
        path: Where to write the PNG.
        depths: The x values (requests in flight).
        series: For each system, its rate at each depth (None where it was not measured).
        machine: The machine description printed in the caption.

    Returns:
        None when the plot was written, else why not.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator
    except ImportError:
        return "matplotlib not installed (pip install -e '.[bench]')"
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    for (label, values), marker in zip(series.items(), "osd^v", strict=False):
        points = [(d, v) for d, v in zip(depths, values, strict=True) if v is not None]
        if points:
            xs, ys = zip(*points, strict=True)
            ax.plot(xs, ys, marker=marker, label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(depths, [f"{d:,}" for d in depths])
    ax.xaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("requests in flight")
    ax.set_ylabel("requests per second (log scale)")
    ax.set_title("Request/response throughput against depth in flight (one run)")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    fig.text(
        0.01,
        0.01,
        f"two processes on loopback; Python {machine['python']}, {machine['cpus']} CPUs "
        f"({machine['cpu']})",
        fontsize=7,
        alpha=0.7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return None
