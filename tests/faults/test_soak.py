"""Case 9: two nodes exchange numbered packets both ways while a proxy injects random faults.

The transport promises at most once and per-connection FIFO; it cannot report a packet that
was already handed to a connection (``send`` returned True) and then died in a socket buffer
when that connection was cut. The accounting is therefore:

* every received packet was accepted by ``send`` (True); none arrives twice or out of order;
* a packet refused by ``send`` (False) is reported dropped and never arrives;
* a packet accepted but never received is lost *only across a connection loss*: its sender
  saw a ``disconnect`` after sending it. Precisely: group accepted packets by the sender's
  *epoch* (how many disconnects it had seen when it sent them); within an epoch the received
  packets are a prefix of the accepted ones, and the last epoch (ended by a fence packet after
  the faults stop) loses nothing.

``SOAK_SECONDS`` sets the length (5 s by default; ``make soak`` runs 60 s); ``SOAK_SEED`` the
random seed.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import defaultdict
from dataclasses import dataclass, field

import pytest
from fault_helpers import FAST, FaultProxy, Proxies, linked

from transport import Node

SOAK_SECONDS = float(os.environ.get("SOAK_SECONDS", "5"))
SOAK_SEED = int(os.environ.get("SOAK_SEED", str(random.randrange(2**32))))
BURST = 10
PACE = 0.002


@dataclass
class Sender:
    """Numbered packets from ``node`` to ``peer``, with what ``send`` said about each."""

    node: Node
    peer: str
    disconnects: int = 0
    accepted: dict[int, int] = field(default_factory=dict)  # seq -> sender epoch
    refused: list[int] = field(default_factory=list)
    next_seq: int = 0

    def __post_init__(self) -> None:
        self.node.on("disconnect", self._on_disconnect)

    def _on_disconnect(self, peer: str, reason: str) -> None:
        if peer == self.peer:
            self.disconnects += 1

    def send_one(self) -> int:
        seq = self.next_seq
        self.next_seq += 1
        if self.node.send(self.peer, seq):
            self.accepted[seq] = self.disconnects
        else:
            self.refused.append(seq)
        return seq

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            for _ in range(BURST):
                self.send_one()
            await asyncio.sleep(PACE)  # pacing the load, not synchronizing


def check_accounting(sender: Sender, received: list[int], fence: int) -> dict[str, int]:
    """Assert the at-most-once accounting above; return the tallies."""
    assert received == sorted(set(received)), "a packet arrived twice or out of order"
    assert received[-1] == fence
    assert set(received) <= set(sender.accepted), "a refused packet arrived"
    got = set(received)
    by_epoch: dict[int, list[int]] = defaultdict(list)
    for seq, epoch in sender.accepted.items():
        by_epoch[epoch].append(seq)
    final_epoch = sender.accepted[fence]
    lost = 0
    for epoch, seqs in sorted(by_epoch.items()):
        delivered = [seq for seq in seqs if seq in got]
        # Within one epoch, losses are a suffix: a connection died and took its tail along.
        assert delivered == seqs[: len(delivered)], f"gap inside epoch {epoch}"
        missing = len(seqs) - len(delivered)
        if missing:
            assert epoch < final_epoch, f"lost in epoch {epoch} without a disconnect after it"
        lost += missing
    assert len(received) + lost == len(sender.accepted)
    return {
        "sent": sender.next_seq,
        "refused": len(sender.refused),
        "delivered": len(received),
        "lost_in_cut_connections": lost,
        "disconnects": sender.disconnects,
    }


async def inject_faults(proxy: FaultProxy, rng: random.Random, until: float) -> list[str]:
    loop = asyncio.get_running_loop()
    done: list[str] = []
    while loop.time() < until:
        fault = rng.choice(["cut", "blackhole", "stall", "delay", "drip", "calm"])
        done.append(fault)
        if fault == "cut":
            proxy.cut()
        elif fault == "blackhole":
            proxy.blackhole()
        elif fault == "stall":
            proxy.stall()
        elif fault == "delay":
            proxy.delay(0.02)
        elif fault == "drip":
            proxy.drip()
        # How long the fault lasts is the thing under test (some outlast heartbeat_timeout).
        await asyncio.sleep(rng.uniform(0.05, 0.7))
        proxy.heal()
        await asyncio.sleep(rng.uniform(0.05, 0.3))
    return done


@pytest.mark.soak
@pytest.mark.timeout(SOAK_SECONDS + 90)  # the run itself, then reconnect and the fence
async def test_soak_every_packet_is_delivered_in_order_or_accounted_for(
    proxies: Proxies,
) -> None:
    rng = random.Random(SOAK_SEED)
    options = {**FAST, "queue_max_packets": 2000}
    async with linked(proxies, **options) as (a, b, log_a, log_b, proxy):
        a_to_b, b_to_a = Sender(a, "b"), Sender(b, "a")
        stop = asyncio.Event()
        senders = [asyncio.ensure_future(s.run(stop)) for s in (a_to_b, b_to_a)]
        loop = asyncio.get_running_loop()
        try:
            faults = await inject_faults(proxy, rng, loop.time() + SOAK_SECONDS)
        finally:
            stop.set()
            await asyncio.gather(*senders)
        proxy.heal()

        # Fence: once both sides are up again, one last packet each way, then nothing is due.
        await log_a.wait_for(lambda: a.peers == ["b"], timeout=10)
        await log_b.wait_for(lambda: b.peers == ["a"], timeout=10)
        fence_ab, fence_ba = a_to_b.send_one(), b_to_a.send_one()
        assert fence_ab in a_to_b.accepted and fence_ba in b_to_a.accepted
        await log_b.wait_for(lambda: fence_ab in log_b.messages("a"), timeout=30)
        await log_a.wait_for(lambda: fence_ba in log_a.messages("b"), timeout=30)

        tallies = {
            "a->b": check_accounting(a_to_b, log_b.messages("a"), fence_ab),
            "b->a": check_accounting(b_to_a, log_a.messages("b"), fence_ba),
        }
        print(f"soak seed={SOAK_SEED} seconds={SOAK_SECONDS} faults={faults} {tallies}")
        # The run exercised something: packets flowed and at least one fault broke the link.
        assert tallies["a->b"]["delivered"] > 100 and tallies["b->a"]["delivered"] > 100
        assert proxy.cuts > 0 or a_to_b.disconnects > 0, f"no fault hit (seed {SOAK_SEED})"
        # One connection at the end, and the lifecycle alternates connect / disconnect.
        for log, peer in ((log_a, "b"), (log_b, "a")):
            kinds = [event[0] for event in log.lifecycle if event[1] == peer]
            assert kinds == ["connect", "disconnect"] * (len(kinds) // 2) + ["connect"]
