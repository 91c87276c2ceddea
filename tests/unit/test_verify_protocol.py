"""The protocol read from a team spec, the TLA+ module generated from it, and the Verified
condition made of a report (pure parts; TLC itself runs in tests/integration/test_verify_tlc.py)."""

from __future__ import annotations

import datetime as dt

import pytest

from hive.api.agentteam import Pattern
from hive.errors import InvalidInput
from hive.verify.check import VerifyReport
from hive.verify.protocol import protocol_of
from hive.verify.tlaspec import generate, reachability
from hive.verify.verdicts import verified_condition

BASE = {"goal": "g", "model": {"name": "m"}}


def test_the_protocol_follows_the_spec_and_the_api_defaults() -> None:
    protocol = protocol_of(
        {
            **BASE,
            "agents": [
                {"name": "lead", "role": "senior", "subordinates": ["w"]},
                {"name": "w", "role": "junior"},
            ],
            "delegation": {"maxRevisions": 4},
            "budget": {"maxTokens": 900},
        }
    )
    assert protocol.pattern is Pattern.HIERARCHICAL
    assert protocol.coordinator == "lead"
    assert protocol.subordinates == {"lead": ("w",), "w": ()}
    assert (protocol.max_revisions, protocol.max_depth, protocol.max_tokens) == (4, 3, 900)
    assert protocol.consensus_percent == 66


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**BASE}, "spec.agents"),
        ({**BASE, "agents": [{"role": "junior"}]}, "spec.agents[0].name"),
        ({**BASE, "agents": [{"name": "a"}], "pattern": "mob"}, "spec.pattern"),
        (
            {**BASE, "agents": [{"name": "a"}], "delegation": {"maxRevisions": "many"}},
            "spec.delegation.maxRevisions",
        ),
        (
            {**BASE, "agents": [{"name": "a"}], "budget": {"maxTokens": 1.5}},
            "spec.budget.maxTokens",
        ),
    ],
)
def test_a_spec_it_cannot_model_is_refused_naming_the_field(spec: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        protocol_of(spec)
    assert field in str(caught.value)


def test_the_module_checks_the_pattern_properties_and_the_reachability_module_its_success() -> None:
    protocol = protocol_of(
        {**BASE, "pattern": "negotiation", "agents": [{"name": "a"}, {"name": "b"}]}
    )
    spec = generate(protocol)
    assert spec.module.startswith("---- MODULE HiveTeam ----")
    assert 'Agents == {"a", "b"}' in spec.module
    assert "INVARIANT EndsAgreedOrDeadlocked" in spec.config
    assert "PROPERTY Terminates" in spec.config
    reach = reachability(protocol)
    assert reach.config.endswith("INVARIANT NeverSucceeds\n")
    assert 'NeverSucceeds == outcome # "agreed"' in reach.module


def test_the_verified_condition_says_unknown_never_proved_when_bounded() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    bounded = VerifyReport(outcome="unknown", pattern="swarm", properties=[], message="time limit")
    refused = VerifyReport(
        outcome="refused",
        pattern="hierarchical",
        properties=["RevisionsBounded"],
        violated="RevisionsBounded",
        counterexample=["1. lead takes the task (tokens 0)"],
    )
    checking = verified_condition(None, None, generation=3, now=now)
    assert (checking.status, checking.reason) == ("Unknown", "Checking")
    unknown = verified_condition(bounded, None, generation=3, now=now)
    assert (unknown.status, unknown.reason) == ("Unknown", "Bounded")
    false = verified_condition(refused, None, generation=3, now=now)
    assert (false.status, false.reason) == ("False", "PropertyViolated")
    assert "lead takes the task" in false.message
    assert verified_condition(None, "spec.agents: x", generation=3, now=now).reason == "NotModelled"
