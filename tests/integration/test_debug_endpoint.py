"""The coordinator's debug endpoint as a local process against the real kube-apiserver: only a
caller allowed to patch the team gets in (the API server reviews the caller's own token), and
`hive debug TEAM --url` drives the paused run through it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from hive.api.agentteam import RunOutcome
from hive.cli.debugcmd import attach_pod_debugger, pod_debugger
from hive.kube.client import load_config
from hive.kube.reviews import Access, may_patch_team
from hive.ports import free_port
from hive.runtime.debug.breakpoints import Breakpoint
from hive.runtime.debug.debugger import Debugger
from hive.runtime.debug.run import run_debugged
from hive.runtime.debug.server import DebugServer
from hive.runtime.events import EventBus
from hive.runtime.models import OpenAICompatible
from hive.runtime.pod import AgentPod, PodConfig
from hive.runtime.resilience.chain import ChainParts
from hive.settings import get_settings
from tests.integration.test_debugger import Surveys, script, team_for
from tests.integration.test_pods import MemoryStatus
from tests.scripted_model import scripted_model
from tests.support import Cluster

pytestmark = pytest.mark.integration

NAMESPACE = "debug-auth"
TEAM = "bees"


def debugger_role(cluster: Cluster) -> dict[str, Any]:
    """The operator chart's ClusterRole for users of hive debug, as helm renders it."""
    chart = Path(__file__).parents[2] / "charts" / "hive-operator"
    rendered = subprocess.run(
        [str(cluster.plane.binary("helm")), "template", "hive", str(chart),
         "--show-only", "templates/rbac.yaml"],
        capture_output=True, text=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    return next(
        d
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "ClusterRole" and d["metadata"]["name"].endswith("-team-debugger")
    )


@pytest.fixture(scope="module")
def tokens(cluster: Cluster) -> dict[str, str]:
    """Tokens of three ServiceAccounts: one bound to the chart's team-debugger role (it may
    patch the team), one that may only read teams, one that may patch another team."""
    cluster.kubectl("create", "namespace", NAMESPACE)
    role = debugger_role(cluster)
    cluster.kubectl("apply", "-f", "-", input=json.dumps(role))
    roles = {
        "patcher": ("ClusterRole", role["metadata"]["name"]),
        "reader": ("Role", "reader"),
        "other": ("Role", "other"),
    }
    rules = {
        "reader": {"verbs": ["get", "list"]},
        "other": {"verbs": ["patch"], "resourceNames": ["wasps"]},
    }
    for name, rule in rules.items():
        own = {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "rules": [{"apiGroups": ["hive.dev"], "resources": ["agentteams"], **rule}],
        }
        cluster.kubectl("apply", "-f", "-", input=json.dumps(own))
    tokens = {}
    for name, (kind, role_name) in roles.items():
        cluster.kubectl("create", "serviceaccount", name, "-n", NAMESPACE)
        cluster.kubectl(
            "create", "rolebinding", name, "-n", NAMESPACE,
            f"--{kind.lower()}={role_name}", f"--serviceaccount={NAMESPACE}:{name}",
        )  # fmt: skip
        tokens[name] = cluster.kubectl("create", "token", name, "-n", NAMESPACE).stdout.strip()
    return tokens


async def hive_debug(url: str, token: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hive", "debug", TEAM, *args, "-n", NAMESPACE, "--url", url,
        "--token", token,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode or 0, out.decode()


async def test_only_a_caller_who_may_patch_the_team_attaches(
    cluster: Cluster, tokens: dict[str, str], tmp_path: Path
) -> None:
    kube = load_config(cluster.kubeconfig)

    async def authorize(token: str) -> Access:
        return await may_patch_team(kube, token, NAMESPACE, TEAM)

    debugger = Debugger([Breakpoint.parse("delegate:worker")])
    server = DebugServer(debugger, authorize, host="127.0.0.1", port=0)
    url = f"http://127.0.0.1:{await server.start()}"
    try:
        with scripted_model(script(score=0.9)) as model:
            team = team_for(model.url, debugger, EventBus(), Surveys())
            run = asyncio.create_task(run_debugged(team, debugger, "Count the bees"))
            async with httpx2.AsyncClient(base_url=url, timeout=60) as http:

                async def get(token: str | None) -> httpx2.Response:
                    headers = {"Authorization": f"Bearer {token}"} if token else {}
                    return await http.get("/debug", headers=headers)

                assert (await get(None)).status_code == 401
                refused = await get("not-a-token")
                assert refused.status_code == 401
                assert "does not accept the token" in refused.json()["error"]
                for who in ("reader", "other"):
                    forbidden = await get(tokens[who])
                    assert forbidden.status_code == 403, who
                    assert f"serviceaccount:{NAMESPACE}:{who}" in forbidden.json()["error"]
                    assert f"agentteams/{TEAM}" in forbidden.json()["error"]

                code, shown = await hive_debug(url, tokens["patcher"], "wait", "--wait-s", "60")
                assert code == 0, shown
                assert "PAUSED at step" in shown
                assert "delegated · lead · delegate:worker" in shown
                assert "lead delegates to worker: Survey the meadow" in shown

                code, shown = await hive_debug(url, tokens["reader"], "continue")
                assert code != 0
                assert "HTTP 403" in shown
                assert debugger.paused is not None  # still paused: the reader changed nothing

                code, shown = await hive_debug(url, tokens["patcher"], "inspect", "tree")
                assert code == 0, shown
                assert "└ worker: Survey the meadow" in shown
                code, shown = await hive_debug(url, tokens["patcher"], "edit", "Count by the river")
                assert code == 0, shown
                code, shown = await hive_debug(url, tokens["patcher"], "continue")
                assert code == 0, shown
                result = await asyncio.wait_for(run, 60)
                code, shown = await hive_debug(url, tokens["patcher"], "show")
                assert code == 0, shown
                assert "finished: Succeeded" in shown
                session = tmp_path / "session.json"
                code, shown = await hive_debug(url, tokens["patcher"], "export", str(session))
                assert code == 0, shown
    finally:
        await server.stop()

    assert result.outcome is RunOutcome.SUCCEEDED, result.message
    assert model.requests_of("worker")[0]["messages"][-1]["content"] == "Count by the river"
    done = [(a["action"], a["value"]) for a in json.loads(session.read_text())["actions"]]
    patcher = f"system:serviceaccount:{NAMESPACE}:patcher"
    assert done == [
        ("attach", patcher),
        ("inspect", "tree"),
        ("edit", "Count by the river"),
        ("continue", None),
    ]


AGENTS: list[dict[str, Any]] = [
    {"name": "lead", "role": "senior", "subordinates": ["worker"]},
    {"name": "worker", "role": "junior"},
]


def pod_configs(tmp_path: Path, endpoint: str, ports: dict[str, int]) -> dict[str, Path]:
    """Each agent pod's configuration as the operator writes it, the team debugging."""
    paths = {}
    for agent in AGENTS:
        config: dict[str, Any] = {
            "team": TEAM,
            "namespace": NAMESPACE,
            "goal": "Count the bees",
            "pattern": "hierarchical",
            "model": {"provider": "openai-compatible", "endpoint": endpoint, "name": "m"},
            "debug": {"interactive": True, "breakpoints": ["delegate:worker"]},
            "agent": agent,
            "agents": AGENTS,
            "peerUrls": {
                a["name"]: f"http://127.0.0.1:{ports[a['name']]}"
                for a in AGENTS
                if a["name"] != agent["name"]
            },
        }
        paths[agent["name"]] = tmp_path / f"{agent['name']}.yaml"
        paths[agent["name"]].write_text(yaml.safe_dump(config))
    return paths


async def test_a_coordinator_pod_pauses_its_run_until_hive_debug_continues_it(
    cluster: Cluster, tokens: dict[str, str], tmp_path: Path
) -> None:
    settings = get_settings()
    settings = settings.model_copy(
        update={"kube": settings.kube.model_copy(update={"kubeconfig": cluster.kubeconfig})}
    )
    ports = {a["name"]: free_port() for a in AGENTS}
    debug_port = free_port()
    status = MemoryStatus()
    lead = script(score=0.9)
    assert isinstance(lead, dict)
    model_script = {**lead, "worker": [{"content": "42 bees in the meadow"}]}
    with scripted_model(model_script) as server:
        pods = []
        for name, path in pod_configs(tmp_path, server.url, ports).items():
            config = PodConfig.load(path, name)
            parts = ChainParts()
            debugging = pod_debugger(config, settings, parts)
            if debugging is not None and debugging.server is not None:
                debugging.server.host, debugging.server.port = "127.0.0.1", debug_port
            chain = parts.chain(name)
            model = OpenAICompatible(server.url, "m", max_retries=0, chain=chain)
            pod = AgentPod(config, model, status, port=ports[name], heartbeat_s=60, chain=chain)
            attach_pod_debugger(pod, debugging)
            pods.append(pod)
        assert [p.debugger is not None for p in pods] == [True, False]  # the coordinator only
        stop = asyncio.Event()
        serving = [asyncio.create_task(pod.serve(stop)) for pod in pods]
        url = f"http://127.0.0.1:{debug_port}"
        try:
            code, shown = await hive_debug(url, tokens["patcher"], "wait", "--wait-s", "60")
            assert code == 0, shown
            assert "delegated · lead · delegate:worker" in shown
            running = status.runs[-1]
            assert running.outcome == RunOutcome.RUNNING
            code, shown = await hive_debug(url, tokens["other"], "continue")
            assert "HTTP 403" in shown
            code, shown = await hive_debug(url, tokens["patcher"], "edit", "Count by the river")
            assert code == 0, shown  # the task the worker's pod gets
            code, shown = await hive_debug(url, tokens["patcher"], "continue")
            assert code == 0, shown
            await status.until(lambda: status.runs[-1].outcome != RunOutcome.RUNNING, 60)
        finally:
            stop.set()
            await asyncio.gather(*serving)
    assert status.runs[-1].outcome == RunOutcome.SUCCEEDED, status.runs[-1].message
    assert server.requests_of("worker")[0]["messages"][-1]["content"] == "Count by the river"
