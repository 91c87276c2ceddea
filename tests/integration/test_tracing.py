"""One team run, one trace: three agent pods as processes (`hive agent`, against the real API
server, on the scripted model) export their spans over OTLP to a real Jaeger; the trace holds
spans of all three processes with the right parent/child links across them and the GenAI
attributes with the token counts the model reported; `hive trace show --team` prints it; and each
agent serves its model and call metrics on its peer port. `hive run` traces a local run too: a
chain of thought and a plan search travel on their spans and `hive trace show` renders them, and
prompts and completions are on the chat spans only when the team opts in (recordContent)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hive.dev.tracing import DevJaeger
from hive.errors import HiveError
from hive.kube.resources import apply_crds
from hive.runtime.tracing.query import SpanNode, TraceTree, fetch_trace
from tests.scripted_model import Script, scripted_model
from tests.support import Cluster, free_port, until

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
NS = "tracing"
TEAM = "traced"
AGENTS: list[dict[str, Any]] = [
    {"name": "lead", "role": "senior", "subordinates": ["researcher", "writer"]},
    {"name": "researcher", "role": "junior", "capabilities": ["research"]},
    {"name": "writer", "role": "junior", "capabilities": ["writing"]},
]
# token counts the model reports, distinct per call so the spans must carry the real ones
SCRIPT: Script = {
    "lead": [
        {
            "json": {
                "subtasks": [
                    {"description": "Collect facts", "capabilities": ["research"]},
                    {"description": "Write it up", "capabilities": ["writing"]},
                ]
            },
            "prompt_tokens": 101,
            "completion_tokens": 11,
        },
        {"when": "gave researcher", "json": {"score": 0.9}},
        {"when": "gave writer", "json": {"score": 0.9}},
        {"when": "final answer", "content": "Report done."},
    ],
    "researcher": [{"content": "facts", "prompt_tokens": 202, "completion_tokens": 22}],
    "writer": [{"content": "prose", "prompt_tokens": 303, "completion_tokens": 33}],
}


@dataclass
class TracedRun:
    trace_id: str  # status.run.traceId
    env: dict[str, str]  # the agents' environment
    metrics: dict[str, str]  # each agent's /metrics, scraped at the end of the run


def team_manifest(endpoint: str) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "AgentTeam",
        "metadata": {"name": TEAM, "namespace": NS},
        "spec": {
            "goal": "A report",
            "pattern": "hierarchical",
            "model": {"provider": "openai-compatible", "endpoint": endpoint, "name": "m"},
            "agents": AGENTS,
        },
    }


def agent_config(agent: dict[str, Any], endpoint: str, ports: dict[str, int]) -> dict[str, Any]:
    return {
        "team": TEAM,
        "namespace": NS,
        "goal": "A report",
        "pattern": "hierarchical",
        "model": {"provider": "openai-compatible", "endpoint": endpoint, "name": "m"},
        "agent": agent,
        "agents": AGENTS,
        "peerUrls": {
            a["name"]: f"http://127.0.0.1:{ports[a['name']]}"
            for a in AGENTS
            if a["name"] != agent["name"]
        },
    }


def hive(*args: str) -> list[str]:
    return [sys.executable, "-m", "hive", *args]


@pytest.fixture(scope="module")
def traced_run(
    cluster: Cluster, jaeger: DevJaeger, tmp_path_factory: pytest.TempPathFactory
) -> TracedRun:
    """The three agents' processes, run to the end of the team's run and stopped; yields the
    trace id the coordinator recorded in status.run and the environment they ran with."""
    tmp_path = tmp_path_factory.mktemp("traced-run")
    apply_crds(cluster.client)
    if cluster.kubectl("get", "namespace", NS, check=False).returncode != 0:
        cluster.kubectl("create", "namespace", NS)
    cluster.kubectl("delete", "agentteam", TEAM, "-n", NS, "--ignore-not-found")
    ports = {a["name"]: free_port() for a in AGENTS}
    env = {
        **os.environ,
        "HIVE_KUBE__KUBECONFIG": str(cluster.kubeconfig),
        "HIVE_AGENT__HOST": "127.0.0.1",
        "HIVE_AGENT__AUDIT_DIR": str(tmp_path / "audit"),
        "HIVE_AGENT__HEARTBEAT_S": "60",
        "HIVE_TRACING__OTLP_ENDPOINT": jaeger.otlp_endpoint,
        "HIVE_TRACING__QUERY_URL": jaeger.query_url,
    }
    with scripted_model(SCRIPT) as model:
        manifest = tmp_path / "team.yaml"
        manifest.write_text(yaml.safe_dump(team_manifest(model.url)))
        cluster.kubectl("apply", "-f", str(manifest))
        processes: dict[str, subprocess.Popen[bytes]] = {}
        try:
            for agent in AGENTS:
                name = agent["name"]
                config = tmp_path / f"{name}.yaml"
                config.write_text(yaml.safe_dump(agent_config(agent, model.url, ports)))
                log = (tmp_path / f"{name}.log").open("wb")
                processes[name] = subprocess.Popen(
                    hive(
                        "agent", "--team", TEAM, "--agent", name, "-n", NS, "--config", str(config)
                    ),
                    env={**env, "HIVE_AGENT__PORT": str(ports[name])},
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

            def finished_run() -> dict[str, Any] | None:
                for name, process in processes.items():
                    if process.poll() is not None:
                        log = (tmp_path / f"{name}.log").read_text()
                        raise AssertionError(f"agent {name} exited early:\n{log[-3000:]}")
                got = cluster.kubectl("get", "agentteam", TEAM, "-n", NS, "-o", "yaml")
                run = (yaml.safe_load(got.stdout).get("status") or {}).get("run") or {}
                return run if run.get("outcome") not in (None, "Running") else None

            run = until(finished_run, 120, "the team's run", every_s=0.2)
            # each agent's Prometheus metrics, on its peer port, before it stops
            metrics = {
                name: httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
                for name, port in ports.items()
            }
        finally:
            for process in processes.values():  # SIGTERM: each flushes its last spans
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for name, process in processes.items():
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
                    raise AssertionError(f"agent {name} did not stop on SIGTERM") from None
    assert run["outcome"] == "Succeeded", run
    return TracedRun(str(run["traceId"]), env, metrics)


def whole_trace(jaeger: DevJaeger, trace_id: str) -> TraceTree:
    """The trace once Jaeger holds the spans of all three agents (the batch processor and the
    collector's batch both deliver a little later)."""

    def fetched() -> TraceTree | None:
        try:
            tree = fetch_trace(jaeger.query_url, trace_id)
        except HiveError:
            return None
        services = tree.services
        wanted = {f"hive-agent-{a['name']}" for a in AGENTS}
        return tree if wanted <= services and len(tree.roots) == 1 else None

    return until(fetched, 30, f"trace {trace_id} with every agent's spans", every_s=0.2)


def test_one_run_is_one_trace_across_the_agents_processes(
    traced_run: TracedRun, jaeger: DevJaeger
) -> None:
    trace_id = traced_run.trace_id
    tree = whole_trace(jaeger, trace_id)
    (root,) = tree.roots
    assert root.name == f"invoke_workflow {TEAM}"
    assert root.service == "hive-agent-lead"
    spans = tree.spans()
    by_id = {s.span_id: s for s in spans}

    def parent(node: SpanNode) -> SpanNode:
        assert node.parent_id is not None, node.name
        return by_id[node.parent_id]

    for junior in ("researcher", "writer"):
        # the junior's server span is the child of the lead's call to it, across processes
        (served,) = [
            s
            for s in spans
            if s.name == f"invoke_agent {junior}" and s.service != "hive-agent-lead"
        ]
        assert served.service == f"hive-agent-{junior}"
        call = parent(served)
        assert call.name == f"invoke_agent {junior}"
        assert call.service == "hive-agent-lead"
        assert call.attributes["gen_ai.operation.name"] == "invoke_agent"
        # the call descends from the run's root span
        ancestors = []
        node = call
        while node.parent_id is not None:
            node = parent(node)
            ancestors.append(node.name)
        assert ancestors[-1] == root.name
        # the junior's model call: a chat span under its server span, with the real tokens
        (chat,) = [s for s in spans if s.service == f"hive-agent-{junior}" and s.name == "chat m"]
        assert parent(chat).span_id == served.span_id
        assert chat.attributes["gen_ai.operation.name"] == "chat"
        assert chat.attributes["gen_ai.request.model"] == "m"
        expected = {"researcher": (202, 22), "writer": (303, 33)}[junior]
        assert (chat.input_tokens, chat.output_tokens) == expected
        assert "gen_ai.input.messages" not in chat.attributes  # the team did not opt in

    lead_chats = [s for s in spans if s.service == "hive-agent-lead" and s.name == "chat m"]
    assert (101, 11) in [(s.input_tokens, s.output_tokens) for s in lead_chats]
    delegations = [s for s in spans if s.name == "delegate lead"]
    assert sorted(s.attributes["hive.to"] for s in delegations) == ["researcher", "writer"]
    assert not [s for s in spans if s.error]


def test_hive_trace_show_prints_the_teams_trace_as_a_tree(
    traced_run: TracedRun, jaeger: DevJaeger
) -> None:
    trace_id, env = traced_run.trace_id, traced_run.env
    whole_trace(jaeger, trace_id)
    shown = subprocess.run(
        hive("trace", "show", "--team", TEAM, "-n", NS, "--width", "200"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    print(out)  # shown with pytest -s
    assert f"trace {trace_id}" in out
    assert f"invoke_workflow {TEAM}" in out
    for agent in ("lead", "researcher", "writer"):
        assert f"hive-agent-{agent}" in out
    assert "tokens 202 in / 22 out" in out
    assert "tokens 303 in / 33 out" in out
    assert "from 3 services" in out
    assert " ms" in out


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus' text format."""
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


def test_each_agent_serves_its_model_and_call_metrics(traced_run: TracedRun) -> None:
    metrics = traced_run.metrics
    for agent, (prompt, completion) in {"researcher": (202, 22), "writer": (303, 33)}.items():
        text = metrics[agent]
        tokens = "hive_model_tokens_total"
        assert sample(text, tokens, agent=agent, model="m", type="input") == prompt
        assert sample(text, tokens, agent=agent, model="m", type="output") == completion
        assert sample(text, "hive_model_call_seconds_count", agent=agent, model="m") == 1
        calls = "hive_agent_calls_total"
        assert sample(text, calls, agent=agent, kind="model", dependency="m", outcome="ok") == 1
    lead = metrics["lead"]
    # the lead's calls to its peers, counted by outcome, and its own model calls
    for peer in ("researcher", "writer"):
        assert (
            sample(lead, "hive_agent_calls_total", agent="lead", kind="peer", dependency=peer) == 1
        )
    assert sample(lead, "hive_model_tokens_total", agent="lead", type="input") >= 101


def test_hive_run_traces_a_local_run(jaeger: DevJaeger, tmp_path: Path) -> None:
    """`hive run` with HIVE_TRACING__OTLP_ENDPOINT: the run is one trace (its id printed), the
    negotiation's proposals and votes are spans under it, each model call a chat span."""
    script: Script = {
        name: [
            {"json": {"proposal": f"Go, says {name}", "rationale": "one binary"}},
            {"json": {"votes": [{"proposal": 1, "vote": "accept", "reason": "fine"}]}},
        ]
        * 3
        for name in ("pragmatist", "purist", "operator")
    }
    env = {**os.environ, "HIVE_TRACING__OTLP_ENDPOINT": jaeger.otlp_endpoint}
    with scripted_model(script) as server:
        ran = subprocess.run(
            hive("run", str(EXAMPLES / "negotiation.yaml"), "--endpoint", server.url, "--no-live"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    trace_id = re.search(r"trace ([0-9a-f]{32})", ran.stdout)
    assert trace_id is not None, ran.stdout

    def fetched() -> TraceTree | None:
        try:
            tree = fetch_trace(jaeger.query_url, trace_id[1])
        except HiveError:
            return None
        return tree if any(s.name.startswith("vote ") for s in tree.spans()) else None

    tree = until(fetched, 30, "the local run's trace", every_s=0.2)
    (root,) = tree.roots
    assert root.name == "invoke_workflow local"
    assert tree.services == {"hive-run"}
    names = [s.name for s in tree.spans()]
    assert {"propose pragmatist", "vote purist"} <= set(names)
    chats = [
        s for s in tree.spans() if s.name == "chat " + s.attributes.get("gen_ai.request.model", "")
    ]
    assert chats
    assert all(s.input_tokens == 10 and s.output_tokens == 5 for s in chats)


COT_SCRIPT: Script = {
    "lead": [
        {"json": {"subtasks": [{"description": "Explain the bee dance"}]}},
        {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "Bees dance to share direction and distance."},
    ],
    "researcher": [
        {"json": {"branches": [{"hypothesis": "Bees communicate by dancing", "confidence": 0.6}]}},
        {"json": {"choice": 0, "reason": "best supported"}},
        {
            "json": {
                "branches": [
                    {
                        "hypothesis": "The waggle run's angle gives the direction",
                        "conclusion": "Bees dance to share direction and distance",
                        "confidence": 0.9,
                        "final": True,
                    }
                ]
            }
        },
        {"json": {"correct": True}},
        {"content": "The waggle dance gives direction and distance."},
    ],
}
MCTS_SCRIPT: Script = {
    "lead": [
        {"when": "Propose up to 2", "json": {"actions": ["Observe the waggle dance"]}},
        {"when": "Propose up to 2", "json": {"actions": ["DONE"]}},
        {"when": "Score these steps", "json": {"score": 0.9}},
        {"when": "Score these steps", "json": {"score": 0.9}},
        {"when": "Rate the result", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": "They dance."},
    ],
    "researcher": [{"content": "Observed."}],
}


def reasoning_team(path: Path, lead: dict[str, Any], researcher: dict[str, Any]) -> Path:
    """A team file for `hive run`: a lead and a researcher with the given reasoning settings."""
    manifest = team_manifest("http://127.0.0.1:1/v1")
    manifest["spec"]["goal"] = "How do bees share where food is?"
    manifest["spec"]["agents"] = [
        {"name": "lead", "role": "senior", "subordinates": ["researcher"], **lead},
        {"name": "researcher", "role": "junior", **researcher},
    ]
    path.write_text(yaml.safe_dump(manifest))
    return path


def traced_hive_run(jaeger: DevJaeger, team: Path, script: Script, span: str) -> tuple[Any, str]:
    """`hive run` of `team` on the scripted model with spans to Jaeger: the trace once it holds
    the span named `span`, and what `hive trace show --trace-id` prints of it."""
    env = {
        **os.environ,
        "HIVE_TRACING__OTLP_ENDPOINT": jaeger.otlp_endpoint,
        "HIVE_TRACING__QUERY_URL": jaeger.query_url,
    }
    with scripted_model(script) as server:
        ran = subprocess.run(
            hive("run", str(team), "--endpoint", server.url, "--no-live"),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert server.remaining() == 0
    assert ran.returncode == 0, ran.stdout + ran.stderr
    found = re.search(r"trace ([0-9a-f]{32})", ran.stdout)
    assert found is not None, ran.stdout
    trace_id = found[1]

    def fetched() -> TraceTree | None:
        try:
            tree = fetch_trace(jaeger.query_url, trace_id)
        except HiveError:
            return None
        return tree if any(s.name == span for s in tree.spans()) else None

    tree = until(fetched, 30, f"the span {span} in the run's trace", every_s=0.2)
    shown = subprocess.run(
        hive("trace", "show", "--trace-id", trace_id, "--width", "200"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    return tree, shown.stdout


def test_a_chain_of_thought_is_in_the_runs_trace_and_no_content_without_opting_in(
    jaeger: DevJaeger, tmp_path: Path
) -> None:
    team = reasoning_team(tmp_path / "team.yaml", {}, {"reasoning": "chain-of-thought"})
    tree, shown = traced_hive_run(jaeger, team, COT_SCRIPT, "think researcher")
    (think,) = [s for s in tree.spans() if s.name == "think researcher"]
    record = json.loads(think.attributes["hive.reasoning"])
    assert record["kind"] == "chain-of-thought"
    assert record["agent"] == "researcher"
    assert record["outcome"] == "answered"
    hypotheses = [s["hypothesis"] for s in record["trace"]["steps"]]
    assert "The waggle run's angle gives the direction" in hypotheses
    assert "chain of thought" in shown
    assert shown.index("think researcher") < shown.index("chain of thought")
    assert "The waggle run's angle gives the direction" in shown
    chats = [s for s in tree.spans() if s.name == "chat m"]
    assert chats
    for chat in chats:  # the team did not opt in to content
        assert "gen_ai.input.messages" not in chat.attributes
        assert "gen_ai.output.messages" not in chat.attributes


def test_a_plan_search_is_in_the_runs_trace_and_content_when_the_team_opts_in(
    jaeger: DevJaeger, tmp_path: Path
) -> None:
    mcts = {"planning": "mcts", "mcts": {"iterations": 2, "horizon": 2, "branching": 2}}
    team = reasoning_team(tmp_path / "team.yaml", mcts, {})
    manifest = yaml.safe_load(team.read_text())
    manifest["spec"]["observability"] = {"recordContent": True}
    team.write_text(yaml.safe_dump(manifest))
    tree, shown = traced_hive_run(jaeger, team, MCTS_SCRIPT, "search plan lead")
    (search,) = [s for s in tree.spans() if s.name == "search plan lead"]
    record = json.loads(search.attributes["hive.reasoning"])
    assert record["kind"] == "mcts"
    assert record["search"]["iterations"] == 2
    assert "Observe the waggle dance" in record["search"]["bestSequence"]
    assert "plan search (MCTS): 2 iterations" in shown
    assert shown.index("search plan lead") < shown.index("plan search (MCTS)")
    researcher_chat = next(
        s for s in tree.spans() if s.name == "chat m" and "Observed." in str(s.attributes)
    )
    assert "Observe the waggle dance" in researcher_chat.attributes["gen_ai.input.messages"]
    assert "Observed." in researcher_chat.attributes["gen_ai.output.messages"]
