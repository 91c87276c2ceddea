"""The operator chart's tracing and metrics values, rendered by the real helm: the OTLP
endpoint reaches the operator (which passes it on to its agent pods), and the ServiceMonitors
for the operator's and the agents' /metrics are shipped only when switched on."""

from __future__ import annotations

import subprocess
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentSpec
from hive.reconcile.agentteam import AgentPodSettings, agent_labels
from hive.settings import get_settings
from tests.support import REPO

pytestmark = pytest.mark.integration
CHART = REPO / "charts/hive-operator"


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    binary = get_settings().dev.testbin_dir / "helm"
    result = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


def rendered(*values: str) -> list[dict[str, Any]]:
    out = helm("template", "hive", str(CHART), "--namespace", "hive-system", *values).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def operator_env(docs: list[dict[str, Any]]) -> dict[str, str]:
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def test_no_tracing_and_no_service_monitor_by_default() -> None:
    docs = rendered()
    assert not [d for d in docs if d["kind"] == "ServiceMonitor"]
    assert "HIVE_TRACING__OTLP_ENDPOINT" not in operator_env(docs)


def test_the_otlp_endpoint_reaches_the_operator() -> None:
    docs = rendered(
        "--set", "tracing.otlpEndpoint=http://jaeger:4318", "--set-json", "tracing.sampleRatio=0.25"
    )
    env = operator_env(docs)
    assert env["HIVE_TRACING__OTLP_ENDPOINT"] == "http://jaeger:4318"
    assert env["HIVE_TRACING__SAMPLE_RATIO"] == "0.25"


def test_a_bad_endpoint_is_refused_by_the_schema() -> None:
    result = helm(
        "template", "hive", str(CHART), "--set", "tracing.otlpEndpoint=jaeger:4318", check=False
    )
    assert result.returncode != 0
    assert "otlpEndpoint" in result.stderr


def test_service_monitors_select_the_operator_and_every_agent_service() -> None:
    docs = rendered(
        "--set",
        "metrics.serviceMonitor.enabled=true",
        "--set",
        "metrics.serviceMonitor.labels.release=kps",
    )
    monitors = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceMonitor"}
    assert len(monitors) == 2
    for monitor in monitors.values():
        assert monitor["metadata"]["labels"]["release"] == "kps"
    agents = next(m for name, m in monitors.items() if name.endswith("-agents"))
    assert agents["spec"]["namespaceSelector"] == {"any": True}
    (endpoint,) = agents["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")
    # the selector matches the labels the operator puts on each agent's Service
    labels = agent_labels("team", AgentSpec(name="writer", role="junior"))
    selector = agents["spec"]["selector"]
    assert all(labels.get(k) == v for k, v in selector["matchLabels"].items())
    assert all(e["key"] in labels for e in selector["matchExpressions"])
    (operator,) = [m for name, m in monitors.items() if not name.endswith("-agents")]
    assert operator["spec"]["endpoints"][0]["port"] == "metrics"
    lint = helm("lint", "--strict", str(CHART), "--set", "metrics.serviceMonitor.enabled=true")
    assert "0 chart(s) failed" in lint.stdout
    assert AgentPodSettings(image="x").otlp_endpoint is None
