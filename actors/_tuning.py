"""Opt-in process tuning for high message rates."""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]


def tune_gc(young_threshold: int = 50_000, *, freeze: bool = True) -> tuple[int, int, int]:
    """Make the cyclic garbage collector run less often, for throughput.

    Every message in flight allocates a few container objects (the decoded envelope, the
    payload, the validated model, the mailbox entry). When thousands of them wait at once (busy
    actors, async handlers, deep mailboxes), they survive young collections and get promoted,
    and the default threshold (700 allocations) makes the collector rescan them over and over.
    Raising the young-generation threshold trades a little peak memory for that time;
    ``freeze`` also moves every object alive now (modules, classes, long-lived state) out of
    the collector's sight, as ``gc.freeze()`` does. The benchmarks page shows what it measured.

    This changes the whole process, so masterless never calls it by itself: call it once at
    start-up, after imports, if message throughput matters more than a few MiB of memory.

    Args:
        young_threshold: allocations between young-generation collections.
        freeze: also call ``gc.freeze()``.

    Returns:
        The thresholds in force before the call, for ``gc.set_threshold(*previous)``.
    """
    previous = gc.get_threshold()
    if freeze:
        gc.freeze()
    gc.set_threshold(young_threshold, previous[1], previous[2])
    return previous
