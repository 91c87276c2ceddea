"""Budgets before the run, proved with Z3 on hand-made teams: the least and most model calls and
tokens of a run per pattern, a maxTokens below the least run refused with the numbers, a
deadline the least run cannot meet refused, the team's own estimates used, unknown as such."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hive.verify.budget import check_budget
from hive.verify.protocol import protocol_of

NOW = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)


def hierarchy(**budget: Any) -> dict[str, Any]:
    return {
        "pattern": "hierarchical",
        "delegation": {"maxRevisions": 1},
        "budget": budget,
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["mid", "solo"]},
            {"name": "mid", "role": "senior", "subordinates": ["leaf"]},
            {"name": "leaf", "role": "junior"},
            {"name": "solo", "role": "junior"},
        ],
    }


def test_the_least_and_most_calls_of_a_hierarchy() -> None:
    report = check_budget(protocol_of(hierarchy(), tokens_per_call=100), now=NOW)
    assert report.outcome == "proved"
    # least: lead plans, solo works, lead reviews and answers
    assert report.least_calls == 4
    # most: mid's subtask = 2 + 6 subtasks x 2 attempts x (leaf 1 + review 1) = 26 calls;
    # lead's = 2 + 6 x 2 x (26 + 1) = 326
    assert report.most_calls == 326
    assert (report.least_tokens, report.most_tokens) == (400, 32600)


def test_swarm_and_negotiation_runs() -> None:
    swarm = {
        "pattern": "swarm",
        "swarm": {"maxRounds": 3, "maxSubtasks": 4},
        "agents": [{"name": "a", "role": "junior"}],
    }
    report = check_budget(protocol_of(swarm), now=NOW)
    assert (report.least_calls, report.most_calls) == (1 + 2 * 2, 1 + 3 * 5)
    talks = {
        "pattern": "negotiation",
        "negotiation": {"maxRounds": 2},
        "agents": [{"name": n, "role": "senior"} for n in ("a", "b", "c")],
    }
    report = check_budget(protocol_of(talks), now=NOW)
    assert (report.least_calls, report.most_calls) == (6, 12)


def test_a_budget_below_the_least_run_is_refuted_with_the_numbers() -> None:
    report = check_budget(protocol_of(hierarchy(maxTokens=1500, tokensPerCall=500)), now=NOW)
    assert report.outcome == "refuted"
    assert report.violated == "BudgetCanBeMet"
    assert (
        "budget.maxTokens 1500 is below the least work of any run: 4 model calls x 500 tokens "
        "= 2000 tokens"
    ) in report.lines


@pytest.mark.parametrize(
    ("limit", "said"),
    [
        (2000, "budget.maxTokens 2000: a run may need up to 163000 tokens"),
        (163000, "budget.maxTokens 163000: every run fits, the worst included"),
    ],
)
def test_a_budget_the_least_run_fits_is_kept(limit: int, said: str) -> None:
    report = check_budget(protocol_of(hierarchy(maxTokens=limit, tokensPerCall=500)), now=NOW)
    assert report.outcome == "proved"
    assert any(line.startswith(said) for line in report.lines), report.lines


def test_a_deadline_the_least_run_cannot_meet_is_refuted() -> None:
    soon = (NOW + dt.timedelta(seconds=30)).isoformat()
    report = check_budget(protocol_of(hierarchy(deadline=soon, secondsPerCall=10)), now=NOW)
    assert report.outcome == "refuted"
    assert report.violated == "DeadlineCanBeMet"
    assert report.lines[-1] == (
        f"budget.deadline {soon} cannot be met: 30 s left; the least run makes 4 model calls "
        "in sequence x 10 s = 40 s (budget.secondsPerCall)"
    )
    later = (NOW + dt.timedelta(seconds=41)).isoformat()
    kept = check_budget(protocol_of(hierarchy(deadline=later, secondsPerCall=10)), now=NOW)
    assert kept.outcome == "proved"
    assert "can be met" in kept.lines[-1]


def test_the_settings_estimate_is_used_when_the_team_gives_none() -> None:
    report = check_budget(protocol_of(hierarchy(maxTokens=1500), tokens_per_call=300), now=NOW)
    assert report.outcome == "proved"
    assert report.least_tokens == 1200


def test_an_unknown_is_reported_as_unknown() -> None:
    spec = hierarchy(maxTokens=1000)
    spec["delegation"] = {"maxRevisions": 10, "maxDepth": 8}
    spec["agents"] = (
        [
            {"name": f"s{i}", "role": "senior", "subordinates": [f"s{i + 1}", f"t{i}"]}
            for i in range(7)
        ]
        + [{"name": "s7", "role": "junior"}]
        + [{"name": f"t{i}", "role": "junior"} for i in range(7)]
    )
    report = check_budget(protocol_of(spec), now=NOW, timeout_ms=1)
    assert report.outcome == "unknown"
    assert report.lines == [
        "budget: Z3 could not bound the run's model calls within 1 ms (unknown)"
    ]
