"""Sans-I/O: the decider's verdict on a follower's claim, the dedup rule in one place.

For each pair of nodes the one whose id sorts lower decides. After authenticating a
connection the follower claims it, telling its claim sequence number and which of its other
connections to the decider it still holds. The decider judges the claim against the
connection it has committed for that pair, if any:

=====================================================  =======================================
situation                                               verdict
=====================================================  =======================================
nothing committed                                       ``COMMIT`` this connection
the claimant's incarnation differs (it restarted)       ``REPLACE_RESTARTED``: drop the old one
newer claim, and the follower no longer holds the old   ``REPLACE_LOST``: the follower's word is
                                                        trusted (Erlang's ``alive`` exchange)
anything else                                           ``DUPLICATE``: reject this connection
=====================================================  =======================================

"Newer" matters: claims for two connections travel on two sockets and can arrive in either
order; one sent before the follower knew of the committed connection must not tear it down.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum

__all__ = ["Claim", "Committed", "Verdict", "judge_claim"]


class Verdict(Enum):
    """What the decider does with a claimed connection."""

    COMMIT = "commit"
    REPLACE_RESTARTED = "restarted"
    REPLACE_LOST = "lost"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Committed:
    """The connection the decider has committed for the pair."""

    incarnation: int
    claim_seq: int
    connection_id: bytes


@dataclass(frozen=True, slots=True)
class Claim:
    """A follower's claim on a new connection."""

    incarnation: int
    seq: int
    alive: Collection[bytes]


def judge_claim(committed: Committed | None, claim: Claim) -> Verdict:
    """The decider's verdict on ``claim`` given the connection it has committed, if any."""
    if committed is None:
        return Verdict.COMMIT
    if committed.incarnation != claim.incarnation:
        return Verdict.REPLACE_RESTARTED
    if claim.seq > committed.claim_seq and committed.connection_id not in claim.alive:
        return Verdict.REPLACE_LOST
    return Verdict.DUPLICATE
