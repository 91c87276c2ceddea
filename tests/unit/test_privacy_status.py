"""A guard's counts as the team's status.privacy: by entity, boundary and action, and the
destinations that got personal data in clear."""

from __future__ import annotations

import datetime as dt

from hive.api.privacy import Boundary, PrivacySpec, Strategy
from hive.runtime.privacy.guard import Guard

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=dt.UTC)


def test_nothing_found_is_an_empty_report() -> None:
    status = Guard(PrivacySpec(), agent="lead").status(NOW)
    assert status.found == 0
    assert status.in_clear == []
    assert status.reported_at == NOW.replace(microsecond=0)


def test_findings_by_entity_boundary_and_action_and_what_went_out_in_clear() -> None:
    policy = {
        "mode": "fast",
        "rules": [
            {"entity": "EMAIL_ADDRESS", "strategy": "redact"},
        ],
    }
    guard = Guard(PrivacySpec.model_validate(policy), agent="lead")
    guard.scrub_text("ada@example.com or bob@example.org", Boundary.MODEL_PROMPTS, "model")
    guard.ledger.add("PHONE_NUMBER", Boundary.TOOL_INPUTS, "search", Strategy.ALLOW)  # let out
    status = guard.status(NOW)
    assert status.found == 3
    assert status.by_entity == {"EMAIL_ADDRESS": 2, "PHONE_NUMBER": 1}
    assert status.by_boundary == {"modelPrompts": 2, "toolInputs": 1}
    assert status.actions == {"redact": 2, "allow": 1}
    assert status.in_clear == ["toolInputs:search"]
    assert status.since == guard.ledger.started.replace(microsecond=0)
