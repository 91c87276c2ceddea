"""`hive debug TEAM` on the real node: a team with spec.debug.interactive runs as pods, its
coordinator pausing at a breakpoint; the CLI reaches the coordinator's debug endpoint through
the API server's pod proxy with the caller's own kubeconfig, and only a caller who may patch
the team gets in. The API server drops the caller's Authorization header once it has
authenticated it, so the token reaches the endpoint in X-Hive-Debug-Token. A breakpoint on the
worker's model call stops the worker in its own pod, at the coordinator's debugger, until
continued."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import agent_pods, get_team, real_team
from hive.dev.node import RealNode
from hive.runtime.debug import DEBUG_PORT

TEAM = "debugged"
SCRIPT: dict[str, list[dict[str, Any]]] = {
    "lead": [
        {"json": {"subtasks": [{"description": "Survey the meadow"}]}},
        {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "42 bees."},
    ],
    "worker": [{"content": "42 bees in the meadow"}],
}
# who may patch the team (the chart's team-debugger role), and who may reach the pod but not
# patch the team
ONLOOKER_RULES = [
    {"apiGroups": ["hive.dev"], "resources": ["agentteams"], "verbs": ["get"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    {"apiGroups": [""], "resources": ["pods/proxy"], "verbs": ["get", "create"]},
]
DEBUGGER_RULES = [
    {"apiGroups": ["hive.dev"], "resources": ["agentteams"], "verbs": ["get", "patch"]},
    *ONLOOKER_RULES[1:],
]


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def caller_kubeconfig(cluster: Cluster, tmp_path: Path, name: str, rules: list[Any]) -> Path:
    """A kubeconfig of the API server with the token of ServiceAccount `name`, bound to a Role
    of `rules` in the default namespace."""
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": "default"},
        "rules": rules,
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(role))
    cluster.kubectl("create", "serviceaccount", name)
    cluster.kubectl(
        "create", "rolebinding", name, f"--role={name}", f"--serviceaccount=default:{name}"
    )
    token = cluster.kubectl("create", "token", name).stdout.strip()
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": token}
    path = tmp_path / f"{name}.kubeconfig"
    path.write_text(yaml.safe_dump(config))
    return path


def hive_debug(kubeconfig: Path, *args: str) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "hive", "debug", TEAM, *args, "--kubeconfig", str(kubeconfig)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "250"},  # a stop point's line unwrapped
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def test_hive_debug_drives_a_pod_run_through_the_pod_proxy(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    model: ScriptedModel,
    tmp_path: Path,
) -> None:
    agents: list[dict[str, Any]] = [
        {"name": "lead", "role": "senior", "subordinates": ["worker"]},
        {"name": "worker", "role": "junior"},
    ]
    manifest = real_team(
        TEAM, real_node, model.url, "Count the bees", agents,
        delegation={"qualityThreshold": 0.7, "maxRevisions": 1},
        debug={"interactive": True, "breakpoints": ["delegate:worker", "model:worker"]},
    )  # fmt: skip
    debugger = caller_kubeconfig(cluster, tmp_path, "debugger", DEBUGGER_RULES)
    onlooker = caller_kubeconfig(cluster, tmp_path, "onlooker", ONLOOKER_RULES)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    try:
        cluster.kubectl("wait", "--for=condition=Ready", f"agentteam/{TEAM}", "--timeout=120s")
        code, shown = hive_debug(debugger, "wait", "--wait-s", "60")
        assert code == 0, shown
        assert "PAUSED" in shown, shown
        assert "lead · delegate:worker" in shown, shown
        run = get_team(cluster, TEAM)["status"]["run"]
        assert run["outcome"] == "Running"
        assert model.requests_of("worker") == []  # paused before the worker's pod got it

        # through the proxy the API server keeps no Authorization header: the bearer token
        # alone does not reach the endpoint
        pod = agent_pods(cluster, TEAM)["lead"]["metadata"]["name"]
        raw = cluster.kubectl(
            "--kubeconfig", str(debugger), "get", "--raw",
            f"/api/v1/namespaces/default/pods/{pod}:{DEBUG_PORT}/proxy/debug", check=False,
        )  # fmt: skip
        assert raw.returncode != 0, raw.stdout
        assert "must be logged in" in raw.stderr, raw.stderr  # the endpoint's 401

        code, shown = hive_debug(onlooker, "continue")
        assert code != 0, shown
        assert "HTTP 403" in shown, shown
        assert "may not patch agentteams/debugged" in shown, shown

        code, shown = hive_debug(debugger, "continue")
        assert code == 0, shown

        # the worker's pod stops after its model answered, at the coordinator's debugger
        code, shown = hive_debug(debugger, "wait", "--wait-s", "60")
        assert code == 0, shown
        assert "model-call · worker · model:worker" in shown, shown
        worker_pod = agent_pods(cluster, TEAM)["worker"]["metadata"]["name"]
        assert f"worker (pod {worker_pod})'s model answered: 42 bees in the meadow" in shown
        assert get_team(cluster, TEAM)["status"]["run"]["outcome"] == "Running"
        code, shown = hive_debug(debugger, "inspect", "model")
        assert code == 0, shown
        seen = json.loads(shown)
        assert list(seen) == ["worker"], seen
        assert "Survey the meadow" in json.dumps(seen["worker"]["request"])
        assert len(model.requests_of("worker")) == 1
        code, shown = hive_debug(debugger, "continue")
        assert code == 0, shown

        def finished() -> dict[str, Any] | None:
            run = get_team(cluster, TEAM).get("status", {}).get("run") or {}
            return run if run.get("outcome") not in (None, "Running") else None

        ended = wait_for(finished, 60, "the team's run to end")
        assert ended is not None
        assert ended["outcome"] == "Succeeded", ended
        assert ended["result"] == "42 bees."
        assert ended["delegations"] == 1
        assert model.requests_of("worker")  # the worker's pod worked once continued
        code, shown = hive_debug(debugger, "show")
        assert code == 0, shown
        assert "finished: Succeeded" in shown, shown
    finally:
        cluster.kubectl("delete", "agentteam", TEAM, "--wait=false")
        for name in ("debugger", "onlooker"):
            for kind in ("rolebinding", "role", "serviceaccount"):
                cluster.kubectl("delete", kind, name, "--ignore-not-found")
