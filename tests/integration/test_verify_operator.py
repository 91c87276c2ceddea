"""The operator's Verified condition: every applied AgentTeam is model-checked with the real TLC
in the background (the operator a process of its own on the test control plane); the verdict
lands as a condition without holding the team's reconcile."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.kube.resources import apply_crds
from tests.operator_process import OperatorUnderTest
from tests.support import REPO, Cluster, until

pytestmark = pytest.mark.integration


def team_from(path: Path, namespace: str) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text())
    doc["metadata"] = {"name": doc["metadata"]["name"], "namespace": namespace}
    return doc


def conditions(cluster: Cluster, namespace: str, name: str) -> dict[str, dict[str, Any]]:
    found = cluster.kubectl("get", "agentteam", name, "-n", namespace, "-o", "json").stdout
    listed = (json.loads(found).get("status") or {}).get("conditions") or []
    return {c["type"]: c for c in listed}


def verdict(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    found = conditions(cluster, namespace, name).get("Verified")
    return found if found and found["reason"] != "Checking" else None


@pytest.fixture
def namespace(cluster: Cluster) -> Iterator[str]:
    apply_crds(cluster.client)
    name = f"verify-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")


def test_applied_teams_get_their_verdict_as_a_condition(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    env = {
        "HIVE_OPERATOR__NAMESPACE": namespace,
        "HIVE_VERIFY__SPEC_DIR": str(tmp_path / "specs"),
    }
    operator = OperatorUnderTest(cluster.plane, tmp_path / "operator.log", env)
    operator.start()
    try:
        good = team_from(REPO / "examples" / "hierarchical.yaml", namespace)
        broken = team_from(
            REPO / "tests" / "data" / "verify" / "budget-below-minimum.yaml", namespace
        )
        document = json.dumps({"apiVersion": "v1", "kind": "List", "items": [good, broken]})
        cluster.kubectl("apply", "--server-side", "-f", "-", input=document, timeout=120)
        # the reconcile does not wait for TLC: Ready's siblings are there with Verified Checking
        first = until(lambda: conditions(cluster, namespace, "brief"), 60, "a first status")
        assert "Progressing" in first
        ok = until(lambda: verdict(cluster, namespace, "brief"), 120, "brief's verdict")
        assert ok["status"] == "True", ok
        assert ok["reason"] == "Verified"
        refused = until(
            lambda: verdict(cluster, namespace, "budget-below-minimum"), 120, "the broken verdict"
        )
        assert refused["status"] == "False", refused
        assert refused["reason"] == "PropertyViolated"
        assert "FaultFreeRunsFitBudget" in refused["message"]
        assert "lead stops the team over budget.maxTokens" in refused["message"]
        saved = list((tmp_path / "specs").glob("*/HiveTeam.tla"))
        assert len(saved) == 2
    finally:
        operator.stop()
