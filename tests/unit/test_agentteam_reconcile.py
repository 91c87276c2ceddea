"""The AgentTeam status builder: conditions after the API conventions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from hive.reconcile.agentteam import team_status

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "goal": "answer",
        "model": {"name": "m"},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["dev"]},
            {"name": "dev", "role": "junior"},
        ],
    }
    base.update(overrides)
    return base


def ready(status: Any) -> Any:
    return next(c for c in status.conditions if c.type == "Ready")


def test_a_valid_team_is_ready_with_observed_generation() -> None:
    status = team_status(spec(), None, generation=3, now=T0)
    cond = ready(status)
    assert (cond.status, cond.reason, cond.observed_generation) == ("True", "SpecAccepted", 3)
    assert status.observed_generation == 3
    assert status.agents_total == 2
    assert cond.message


def test_an_invalid_spec_names_the_field_and_is_not_ready() -> None:
    bad = spec(agents=[{"name": "lead", "role": "boss"}])
    cond = ready(team_status(bad, None, generation=1, now=T0))
    assert cond.status == "False"
    assert cond.reason == "InvalidSpec"
    assert cond.message.startswith("spec.agents[0].role:")


def test_transition_time_is_kept_while_status_does_not_change() -> None:
    first = team_status(spec(), None, generation=1, now=T0)
    later = team_status(
        spec(goal="other"), first.wire(), generation=2, now=T0 + dt.timedelta(hours=1)
    )
    assert ready(later).last_transition_time == T0
    assert ready(later).observed_generation == 2
    broken = team_status(
        spec(agents=[]), later.wire(), generation=3, now=T0 + dt.timedelta(hours=2)
    )
    assert ready(broken).last_transition_time == T0 + dt.timedelta(hours=2)


def test_suspended_team_reports_suspended_phase() -> None:
    status = team_status(spec(suspend=True), None, generation=1, now=T0)
    assert status.phase == "Suspended"
    assert ready(status).reason == "Suspended"
