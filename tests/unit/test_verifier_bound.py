"""The operator's verdicts by protocol digest stay bounded: a cluster whose teams keep changing
their protocols keeps the most recently used REPORTS_KEPT, and one evicted is worked out again
(asked for, it is missing, so the check starts anew)."""

from __future__ import annotations

from hive.verify.check import VerifyReport
from hive.verify.verdicts import REPORTS_KEPT, Verifier


def test_only_the_most_recent_verdicts_are_kept() -> None:
    verifier = Verifier()
    for n in range(REPORTS_KEPT + 10):
        verifier.reports[f"digest-{n}"] = VerifyReport(
            outcome="verified", pattern="hierarchical", properties=[]
        )
        if n == REPORTS_KEPT - 1:
            assert verifier.reports.get("digest-0") is not None  # used: kept longer
    assert len(verifier.reports) == REPORTS_KEPT
    assert "digest-0" in verifier.reports
    assert "digest-1" not in verifier.reports
    assert f"digest-{REPORTS_KEPT + 9}" in verifier.reports
