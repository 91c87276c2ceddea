"""A subordinate in a process of its own stops at the coordinator's debugger: two `hive agent`
processes on loopback (the coordinator and its junior, signing their calls with the team's keys
as the operator makes them) against the real API server, on the scripted model. A breakpoint on
the junior's tool call stops the junior before its tool runs; `hive debug` shows the junior
stopped there with the tool's arguments, and its model request; continued, the junior calls the
tool (in gVisor) and the run succeeds. A coordinator that goes away does not hold the junior
longer than HIVE_AGENT__DEBUG__STOP_TIMEOUT_S: it goes on, and its log says so."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.kube.resources import apply_crds
from hive.ports import free_port
from hive.reconcile.agentkeys import agent_key, peer_keys, team_key
from hive.reconcile.meta import Owner
from tests.scripted_model import Script, ScriptedModel, scripted_model
from tests.support import Cluster, until

pytestmark = pytest.mark.integration

NS = "debug-subordinates"
MASTER = b"d" * 32
AGENTS: list[dict[str, Any]] = [
    {"name": "lead", "role": "senior", "subordinates": ["worker"]},
    {"name": "worker", "role": "junior", "tools": [{"name": "python", "version": "^1"}]},
]
CODE = "print(6 * 7)"
SCRIPT: Script = {
    "lead": [
        {"json": {"subtasks": [{"description": "Count the bees"}]}},
        {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "42 bees."},
    ],
    "worker": [
        {"tool_calls": [{"name": "run_python", "arguments": {"code": CODE}}]},
        {"content": "42 bees in the meadow"},
    ],
}


@pytest.fixture(scope="module")
def token(cluster: Cluster) -> str:
    """The token of a ServiceAccount that may patch the namespace's teams (hive debug's)."""
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "debugger", "namespace": NS},
        "rules": [
            {"apiGroups": ["hive.dev"], "resources": ["agentteams"], "verbs": ["get", "patch"]}
        ],
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(role))
    cluster.kubectl("create", "serviceaccount", "debugger", "-n", NS)
    cluster.kubectl(
        "create", "rolebinding", "debugger", "-n", NS, "--role=debugger",
        f"--serviceaccount={NS}:debugger",
    )  # fmt: skip
    return cluster.kubectl("create", "token", "debugger", "-n", NS).stdout.strip()


@dataclass
class Team:
    name: str
    processes: dict[str, subprocess.Popen[bytes]]
    logs: dict[str, Path]
    debug_url: str
    token: str

    def debug(self, *args: str) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-m", "hive", "debug", self.name, *args, "-n", NS,
             "--url", self.debug_url, "--token", self.token],
            capture_output=True, text=True, timeout=150, check=False,
            env={**os.environ, "COLUMNS": "250"},
        )  # fmt: skip
        return done.returncode, done.stdout + done.stderr

    def log(self, agent: str) -> str:
        return self.logs[agent].read_text(errors="replace")

    def alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"agent {name} exited early:\n{self.log(name)[-3000:]}")


@contextmanager
def debugged_team(
    cluster: Cluster, token: str, model: ScriptedModel, tmp_path: Path, name: str, stop_s: float
) -> Iterator[Team]:
    """The team's two agents as `hive agent` processes, signing their peer calls, the team
    debugging with a breakpoint on the junior's tool call."""
    debug = {"interactive": True, "breakpoints": ["tool:run_python"]}
    spec = {
        "goal": "Count the bees",
        "pattern": "hierarchical",
        "model": {"provider": "openai-compatible", "endpoint": model.url, "name": "m"},
        "delegation": {"qualityThreshold": 0.7, "maxRevisions": 1},
        "debug": debug,
        "agents": AGENTS,
    }
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
    }
    cluster.kubectl("apply", "-f", "-", input=json.dumps(manifest))
    owner = Owner("AgentTeam", name, NS, f"uid-{name}")
    names = [a["name"] for a in AGENTS]
    ports = {a: free_port() for a in names}
    debug_port = free_port()
    env = {
        **os.environ,
        "HIVE_KUBE__KUBECONFIG": str(cluster.kubeconfig),
        "HIVE_AGENT__HOST": "127.0.0.1",
        "HIVE_AGENT__AUDIT_DIR": str(tmp_path / "audit"),
        "HIVE_AGENT__HEARTBEAT_S": "60",
        "HIVE_AGENT__DEBUG__PORT": str(debug_port),
        "HIVE_AGENT__DEBUG__STOP_TIMEOUT_S": str(stop_s),
    }
    processes: dict[str, subprocess.Popen[bytes]] = {}
    logs: dict[str, Path] = {}
    try:
        for agent in AGENTS:
            me = agent["name"]
            key = tmp_path / f"{me}.key"
            key.write_text(agent_key(team_key(MASTER, owner), me).hex())
            config = tmp_path / f"{me}.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "team": name,
                        "namespace": NS,
                        **spec,
                        "agent": agent,
                        "peerUrls": {a: f"http://127.0.0.1:{ports[a]}" for a in names if a != me},
                        "peerKeys": peer_keys(owner, MASTER, names),
                    }
                )
            )
            logs[me] = tmp_path / f"{me}.log"
            processes[me] = subprocess.Popen(
                [sys.executable, "-m", "hive", "agent", "--team", name, "--agent", me,
                 "-n", NS, "--config", str(config)],
                env={**env, "HIVE_AGENT__PORT": str(ports[me]), "HIVE_AGENT__KEY_FILE": str(key)},
                stdout=logs[me].open("wb"), stderr=subprocess.STDOUT,
            )  # fmt: skip
        yield Team(name, processes, logs, f"http://127.0.0.1:{debug_port}", token)
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        cluster.kubectl("delete", "agentteam", name, "-n", NS, "--wait=false")


def run_of(cluster: Cluster, team: str) -> dict[str, Any] | None:
    got = cluster.kubectl("get", "agentteam", team, "-n", NS, "-o", "yaml")
    run = (yaml.safe_load(got.stdout).get("status") or {}).get("run") or {}
    return run if run.get("outcome") not in (None, "Running") else None


def listening(team: Team) -> bool:
    """Whether the coordinator's debug endpoint takes connections yet."""
    team.alive()
    port = int(team.debug_url.rsplit(":", 1)[1])
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def paused_at_the_workers_tool(team: Team, model: ScriptedModel) -> str:
    until(lambda: listening(team), 90, "the coordinator's debug endpoint", every_s=0.2)
    code, shown = team.debug("wait", "--wait-s", "120")
    assert code == 0, shown + team.log("lead")[-2000:] + team.log("worker")[-2000:]
    team.alive()
    assert "tool-call · worker · tool:run_python" in shown, shown
    pod = socket.gethostname()
    assert f"worker (pod {pod}) is about to call the tool run_python" in shown, shown
    assert json.dumps({"code": CODE}) in shown, shown
    assert len(model.requests_of("worker")) == 1  # stopped before the tool: no second request
    return shown


def test_a_breakpoint_stops_the_subordinates_tool_call_until_continued(
    cluster: Cluster, token: str, tmp_path: Path
) -> None:
    with (
        scripted_model(SCRIPT) as model,
        debugged_team(cluster, token, model, tmp_path, "bees", stop_s=60) as team,
    ):
        paused_at_the_workers_tool(team, model)
        code, shown = team.debug("inspect", "model")
        assert code == 0, shown
        seen = json.loads(shown)
        assert list(seen) == ["worker"]  # the paused agent's last request and reply
        assert seen["worker"]["response"]["tool_calls"][0]["name"] == "run_python"
        assert "Count the bees" in json.dumps(seen["worker"]["request"])

        code, shown = team.debug("continue")
        assert code == 0, shown

        def ended() -> dict[str, Any] | None:
            team.alive()
            return run_of(cluster, team.name)

        run = until(ended, 120, "the team's run", every_s=0.2)
        assert run["outcome"] == "Succeeded", run
        assert run["result"] == "42 bees."
        answered = model.requests_of("worker")[1]["messages"][-1]
        assert answered["role"] == "tool"
        assert "42" in answered["content"]  # the tool ran once the worker was let go

        session = tmp_path / "session.json"
        code, shown = team.debug("export", str(session))
        assert code == 0, shown
        steps = json.loads(session.read_text())["steps"]
        keys = [s["key"] for s in steps]
        assert "model-call:worker:1" in keys
        assert "tool-call:worker:1" in keys
        actions = [a["action"] for a in json.loads(session.read_text())["actions"]]
        assert actions[-2:] == ["inspect", "continue"]


def test_a_subordinate_goes_on_when_its_coordinator_goes_away(
    cluster: Cluster, token: str, tmp_path: Path
) -> None:
    stop_s = 4.0
    with (
        scripted_model(SCRIPT) as model,
        debugged_team(cluster, token, model, tmp_path, "wasps", stop_s=stop_s) as team,
    ):
        paused_at_the_workers_tool(team, model)
        team.processes["lead"].kill()
        team.processes["lead"].wait(30)
        gone = time.monotonic()
        # the worker goes on: its tool runs and it asks the model again (the sandbox's run on
        # two busy cores may take a while; the wait itself ends after stop_s)
        until(
            lambda: len(model.requests_of("worker")) > 1,
            60,
            "the worker's second model request",
            every_s=0.2,
        )
        went_on = time.monotonic() - gone
        assert "has not answered for" in team.log("worker")
        assert "goes on with its tool-call run_python" in team.log("worker")
        assert team.processes["worker"].poll() is None
    print(f"the worker went on {went_on:.1f} s after its coordinator went away")
