"""spec.privacy at admission, against the real API server: the CRD takes a policy as written,
the operator's webhook handler refuses a team weaker than the cluster floor (HIVE_PRIVACY__FLOOR)
and a custom recogniser whose regex does not compile (with its position)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any, cast

import kopf
import pytest

from hive.kube.resources import apply_crds
from hive.operator.admission import validate_agent_team
from hive.settings import get_settings
from tests.support import Cluster

pytestmark = pytest.mark.integration

NS = "privacy-admission"
FLOOR = {"mode": "fast", "rules": [{"entity": "CREDIT_CARD", "strategy": "redact"}]}


def team(name: str, privacy: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "goal": "answer customers",
            "model": {"name": "m", "endpoint": "http://127.0.0.1:1/v1"},
            "agents": [{"name": "a", "role": "senior"}],
            "privacy": privacy,
        },
    }


@pytest.fixture
def floor(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("HIVE_PRIVACY__FLOOR", json.dumps(FLOOR))
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("HIVE_PRIVACY__FLOOR")
    get_settings.cache_clear()


def stored_spec(cluster: Cluster, manifest: dict[str, Any]) -> kopf.Spec:
    """The spec as the API server keeps it (defaults and pruning applied)."""
    cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(manifest))
    name = manifest["metadata"]["name"]
    out = cluster.kubectl("get", "agentteam", name, "-n", NS, "-o", "json")
    return cast(kopf.Spec, json.loads(out.stdout)["spec"])


def test_the_floor_and_bad_regexes_are_refused(cluster: Cluster, floor: None) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    tighter = {
        "mode": "ner",
        "rules": [{"entity": "CREDIT_CARD", "strategy": "redact"}],
        "keySecretRef": {"name": "privacy", "key": "key"},
        "recognizers": [{"entity": "EMPLOYEE_ID", "regex": r"EMP-\d{6}", "context": ["staff"]}],
    }
    spec = stored_spec(cluster, team("tight", tighter))
    assert spec["privacy"]["recognizers"][0]["regex"] == r"EMP-\d{6}"
    asyncio.run(validate_agent_team(spec=spec))  # admitted

    weaker = stored_spec(
        cluster, team("weak", {"rules": [{"entity": "CREDIT_CARD", "strategy": "mask"}]})
    )
    with pytest.raises(kopf.AdmissionError) as refused:
        asyncio.run(validate_agent_team(spec=weaker))
    assert str(refused.value) == (
        "spec.privacy.rules[CREDIT_CARD]: mask is weaker than the cluster floor's redact"
    )

    bad = team("bad", {**tighter, "recognizers": [{"entity": "X_ID", "regex": "a[b"}]})
    with pytest.raises(kopf.AdmissionError, match="position 1: unterminated character set"):
        asyncio.run(validate_agent_team(spec=cast(kopf.Spec, bad["spec"])))


def test_tools_that_get_real_values_are_kept_by_the_crd_and_checked(cluster: Cluster) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    pseudonymise = [{"entity": "EMAIL_ADDRESS", "strategy": "pseudonymise"}]
    spec = stored_spec(
        cluster, team("crm", {"rules": pseudonymise, "restoreForTools": ["crm-lookup"]})
    )
    assert spec["privacy"]["restoreForTools"] == ["crm-lookup"]  # not pruned
    asyncio.run(validate_agent_team(spec=spec))  # admitted

    nothing = stored_spec(cluster, team("nothing", {"restoreForTools": ["crm-lookup"]}))
    with pytest.raises(kopf.AdmissionError) as refused:
        asyncio.run(validate_agent_team(spec=nothing))
    assert str(refused.value) == (
        "spec.privacy: restoreForTools: no rule pseudonymises, so a tool has nothing to restore"
    )
