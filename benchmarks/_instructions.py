"""A fixed tell workload for instruction counting: ``python -m benchmarks._instructions N``.

Two actor systems in this process, 2,000 warm-up tells, then ``N`` tells of the three-field
`Sample` and one ask that waits for them all. Run under valgrind's callgrind at two values of
``N`` and divide the difference of the instruction totals by the difference of ``N``: that is
the machine instructions per tell, both ends and the event loop included, startup excluded.
Unlike wall-clock figures on a shared machine, it moves only when the code does (two runs of
the same tree differ by about 0.3 %), so it settles changes too small to time::

    valgrind --tool=callgrind --callgrind-out-file=a.out python -m benchmarks._instructions 1000
    valgrind --tool=callgrind --callgrind-out-file=b.out python -m benchmarks._instructions 21000

As in `benchmarks._opcount`, the transport's burst gap is widened so that writes coalesce
under the tool's slowdown as they do untraced.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import transport._node as node_module
from actors import ActorSystem

from ._messages import Count, Sample, Sink


async def tells(n: int) -> None:
    """2,000 warm-up tells, then ``n`` more, each batch confirmed by an ask."""
    node_module._BURST_GAP = 1.0
    # Under callgrind a step runs ~50x slower: heartbeats must not take that for a dead peer.
    slow: dict[str, Any] = {"heartbeat_interval": 10.0, "heartbeat_timeout": 600.0}
    async with ActorSystem("bench-a", **slow) as a, ActorSystem("bench-b", **slow) as b:
        b.spawn("sink", Sink())
        peer = await a.connect(b.info() or "")
        tell = a.tell
        for rounds in (2000, n):
            for i in range(rounds):
                tell(peer, "sink", Sample(seq=i, name="benchmark", value=2.5))
                if i % 256 == 255:
                    await asyncio.sleep(0)
            await a.ask(peer, "sink", Count())


if __name__ == "__main__":
    asyncio.run(tells(int(sys.argv[1])))
