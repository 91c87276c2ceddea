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


async def test_the_texts_an_agent_writes_to_the_team_status_go_through_the_policy() -> None:
    """A team's status is read by whoever may read the team: its texts are held to the logs
    boundary, like events."""
    from hive.api.agentteam import AgentStatus, RunOutcome, RunStatus
    from hive.runtime.privacy.wiring import ScrubbedStatus

    class Writer:
        def __init__(self) -> None:
            self.entries: list[AgentStatus] = []
            self.runs: list[RunStatus] = []

        async def report(self, status: AgentStatus) -> None:
            self.entries.append(status)

        async def report_run(self, run: RunStatus) -> None:
            self.runs.append(run)

        async def generation(self) -> int:
            return 7

    policy = {"mode": "fast", "rules": [{"entity": "EMAIL_ADDRESS", "strategy": "redact"}]}
    writer = Writer()
    status = ScrubbedStatus(writer, Guard(PrivacySpec.model_validate(policy), agent="lead"))
    await status.report(AgentStatus(name="lead", current_task="Write to ada@example.com"))
    await status.report_run(
        RunStatus(
            outcome=RunOutcome.FAILED,
            coordinator="lead",
            result="Told ada@example.com",
            message="ada@example.com bounced",
        )
    )
    (entry,) = writer.entries
    (run,) = writer.runs
    for text in (entry.current_task, run.result, run.message):
        assert text is not None
        assert "ada@example.com" not in text
    assert (entry.name, run.coordinator) == ("lead", "lead")  # the rest as it was
    assert await status.generation() == 7  # everything else passes through
