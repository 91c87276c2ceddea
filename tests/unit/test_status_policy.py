"""The status policy the chart ships is the one the code builds, and it works out the same
coordinator as the runtime."""

from __future__ import annotations

import yaml

from hive.api.statuspolicy import manifests, status_defaults
from tests.support import REPO

CHART = REPO / "charts/hive-operator/templates/status-policy.yaml"


def test_the_chart_ships_the_policy_the_code_builds() -> None:
    assert list(yaml.safe_load_all(CHART.read_text())) == manifests(), (
        "the chart's status-policy.yaml drifted from hive.api.statuspolicy"
    )


def test_a_first_write_may_bring_only_the_schema_defaults() -> None:
    assert status_defaults() == "{'phase': 'Pending'}"


def test_every_check_has_a_message_and_the_binding_denies() -> None:
    policy, binding = manifests()
    assert all(v["messageExpression"] for v in policy["spec"]["validations"])
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
