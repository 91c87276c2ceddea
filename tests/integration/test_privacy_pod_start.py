"""An agent pod whose team's privacy policy cannot start reports why in its status entry
(phase Failed, lastError naming the cause) before it exits (real API server): here the policy
asks for NER and the spaCy model is not where the settings point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.cli.agent import run_agent
from hive.kube.resources import apply_crds
from hive.runtime.privacy.wiring import PrivacyNotStarted
from hive.settings import KubeSettings, Settings, get_settings
from tests.support import Cluster

pytestmark = pytest.mark.integration
NS = "privacy-start"
TEAM = "guarded"
AGENT = {"name": "lead", "role": "senior"}
SPEC: dict[str, Any] = {
    "goal": "answer",
    "model": {"name": "m", "endpoint": "http://127.0.0.1:9/v1"},
    "agents": [AGENT],
    "privacy": {"mode": "ner"},
}


@pytest.fixture
def missing_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """HIVE_PRIVACY__MODEL_DIR pointing at a folder with no spaCy model in it."""
    folder = tmp_path / "no-model"
    monkeypatch.setenv("HIVE_PRIVACY__MODEL_DIR", str(folder))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def test_a_policy_that_cannot_start_fails_the_agent_with_its_reason_in_the_status(
    cluster: Cluster, tmp_path: Path, missing_model: Path
) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": TEAM, "namespace": NS},
        "spec": SPEC,
    }
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest))
    config_path = tmp_path / "lead.yaml"
    config_path.write_text(
        yaml.safe_dump({"team": TEAM, "namespace": NS, **SPEC, "agent": AGENT, "peerUrls": {}})
    )
    settings = Settings(kube=KubeSettings(kubeconfig=cluster.kubeconfig))

    with pytest.raises(PrivacyNotStarted, match="spaCy English model"):
        run_agent(settings, NS, TEAM, "lead", once=False, config_path=config_path)

    out = cluster.kubectl("get", "agentteam", TEAM, "-n", NS, "-o", "json").stdout
    entries = {a["name"]: a for a in (json.loads(out).get("status") or {}).get("agents", [])}
    assert entries["lead"]["phase"] == "Failed"
    error = entries["lead"]["lastError"]
    assert "spec.privacy could not start" in error
    assert "NotInstalled" in error
    assert str(missing_model) in error
    assert "make models" in error
