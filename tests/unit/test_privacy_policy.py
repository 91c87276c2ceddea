"""spec.privacy: admission's checks (a custom regex that does not compile, named with its
position) and the cluster floor a team may only tighten."""

from __future__ import annotations

import pytest

from hive.api.privacy import PrivacySpec, floor_problem, parse_floor, weaker_than
from hive.errors import InvalidInput
from hive.reconcile.admission import check_agent_team

TEAM = {
    "goal": "answer customers",
    "model": {"name": "m", "endpoint": "http://127.0.0.1:1"},
    "agents": [{"name": "a", "role": "senior"}],
}
FLOOR = PrivacySpec.model_validate(
    {
        "mode": "fast",
        "minScore": 0.6,
        "boundaries": ["modelPrompts", "logs"],
        "rules": [
            {"entity": "EMAIL_ADDRESS", "strategy": "pseudonymise"},
            {"entity": "CREDIT_CARD", "strategy": "mask", "keepLast": 4},
        ],
    }
)


def test_an_invalid_custom_regex_is_refused_with_its_position() -> None:
    privacy = {"recognizers": [{"entity": "EMPLOYEE_ID", "regex": "EMP-(\\d+"}]}
    problem = check_agent_team({**TEAM, "privacy": privacy})
    assert problem == (
        "spec.privacy.recognizers[0].regex: invalid regular expression at position 4: "
        "missing ), unterminated subpattern"
    )


def test_a_valid_policy_is_admitted() -> None:
    privacy = {
        "mode": "fast",
        "rules": [{"entity": "EMAIL_ADDRESS", "strategy": "hash"}],
        "recognizers": [{"entity": "EMPLOYEE_ID", "regex": r"EMP-\d{6}", "checksum": "luhn"}],
    }
    assert check_agent_team({**TEAM, "privacy": privacy}) is None


@pytest.mark.parametrize(
    ("team", "problem"),
    [
        (None, "spec.privacy: the cluster's privacy floor requires a privacy policy"),
        ({"minScore": 0.8}, "spec.privacy.minScore: 0.8 is above the cluster floor's 0.6"),
        (
            {"boundaries": ["modelPrompts"]},
            "spec.privacy.boundaries: the cluster floor requires logs",
        ),
        (
            {"rules": [{"entity": "CREDIT_CARD", "strategy": "redact"}]},
            "spec.privacy.rules[EMAIL_ADDRESS]: allow is weaker than the cluster floor's "
            "pseudonymise",
        ),
        (
            {
                "rules": [
                    {"entity": "EMAIL_ADDRESS", "strategy": "redact"},
                    {"entity": "CREDIT_CARD", "strategy": "mask", "keepLast": 6},
                ]
            },
            "spec.privacy.rules[CREDIT_CARD].keepLast: 6 is more than the cluster floor's 4",
        ),
    ],
)
def test_a_team_weaker_than_the_floor_is_refused(team: dict | None, problem: str) -> None:
    spec = {**TEAM, "privacy": team} if team is not None else TEAM
    assert floor_problem(spec, FLOOR) == problem


def test_a_team_may_tighten_the_floor() -> None:
    tighter = {
        "mode": "ner",
        "minScore": 0.4,
        "rules": [
            {"entity": "EMAIL_ADDRESS", "strategy": "redact"},
            {"entity": "CREDIT_CARD", "strategy": "mask", "keepLast": 2},
            {"entity": "PERSON", "strategy": "pseudonymise"},
        ],
    }
    assert floor_problem({**TEAM, "privacy": tighter}, FLOOR) is None
    assert weaker_than(PrivacySpec(), None) is None


def test_the_floor_setting_is_parsed_and_a_bad_one_named() -> None:
    assert parse_floor(None) is None
    assert parse_floor(FLOOR.model_dump_json(by_alias=True)) == FLOOR
    with pytest.raises(InvalidInput, match="HIVE_PRIVACY__FLOOR"):
        parse_floor('{"mode": "slow"}')
