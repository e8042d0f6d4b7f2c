"""The decider's rule on claims, case by case (the table in transport._dedup)."""

from __future__ import annotations

import pytest

from transport._dedup import Claim, Committed, Verdict, judge_claim

OLD = Committed(incarnation=7, claim_seq=5, connection_id=b"old-conn")


@pytest.mark.parametrize(
    ("committed", "claim", "verdict"),
    [
        pytest.param(None, Claim(7, 1, []), Verdict.COMMIT, id="nothing-committed"),
        pytest.param(OLD, Claim(8, 1, [b"old-conn"]), Verdict.REPLACE_RESTARTED, id="restarted"),
        pytest.param(OLD, Claim(7, 6, []), Verdict.REPLACE_LOST, id="newer-claim-old-gone"),
        pytest.param(OLD, Claim(7, 6, [b"old-conn"]), Verdict.DUPLICATE, id="old-still-held"),
        pytest.param(OLD, Claim(7, 4, []), Verdict.DUPLICATE, id="older-claim-raced"),
        pytest.param(OLD, Claim(7, 5, []), Verdict.DUPLICATE, id="same-claim-seq"),
        pytest.param(
            OLD, Claim(7, 6, [b"other", b"conns"]), Verdict.REPLACE_LOST, id="others-held"
        ),
    ],
)
def test_the_decider_judges_a_claim(
    committed: Committed | None, claim: Claim, verdict: Verdict
) -> None:
    assert judge_claim(committed, claim) is verdict
