"""One team run, one trace, across real pods: a hierarchical team of three agent pods on the real
node sends its spans (through the relay on the node's bridge) to the session's real Jaeger.

The trace the coordinator records in status.run.traceId holds spans from all three pods (each a
process of its own: its service.instance.id and k8s.pod.name); each junior's server span
``invoke_agent <junior>`` is the child of the lead's call to it, which descends from the run's
root span; each model call is a ``chat`` span with the token counts the scripted model reported;
and `hive trace show --team` (the CLI, as a user runs it) prints the tree.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from tests.integration.test_tracing import SCRIPT as TRACED_TEAM_SCRIPT
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import agent_pods, get_team, real_team
from e2e.test_real_pod_faults import apply
from hive.dev.node import RealNode
from hive.dev.tracing import DevJaeger
from hive.errors import HiveError
from hive.runtime.tracing.query import SpanNode, TraceTree, fetch_trace

pytestmark = pytest.mark.e2e

TEAM = "traced"
JUNIORS = ("researcher", "writer")
# token counts the model reports, distinct per agent so the spans must carry the real ones
TOKENS = {"lead": (101, 11), "researcher": (202, 22), "writer": (303, 33)}
SCRIPT = TRACED_TEAM_SCRIPT  # the team of the processes' trace test, scripted alike


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def team_manifest(node: RealNode, endpoint: str) -> dict[str, Any]:
    agents = [
        {"name": "lead", "role": "senior", "subordinates": list(JUNIORS)},
        {"name": "researcher", "role": "junior", "capabilities": ["research"]},
        {"name": "writer", "role": "junior", "capabilities": ["writing"]},
    ]
    return real_team(TEAM, node, endpoint, "A report", agents, pattern="hierarchical")


def what_happened(cluster: Cluster) -> str:
    """The team's status and its agents' logs, for a failure message."""
    status = get_team(cluster, TEAM).get("status", {})
    logs = cluster.kubectl(
        "logs", "-l", f"hive.dev/team={TEAM}", "--tail=30", "--prefix", check=False
    )
    return f"status: {status}\nagent logs:\n{logs.stdout}{logs.stderr}"


def finished_run(cluster: Cluster) -> dict[str, Any] | None:
    run = get_team(cluster, TEAM).get("status", {}).get("run") or {}
    return run if run.get("outcome") not in (None, "Running") else None


def whole_trace(jaeger: DevJaeger, trace_id: str) -> TraceTree:
    """The trace once Jaeger holds the spans of all three pods (each pod's batch processor
    exports every few seconds)."""
    wanted = {f"hive-agent-{agent}" for agent in TOKENS}

    def fetched() -> TraceTree | None:
        try:
            tree = fetch_trace(jaeger.query_url, trace_id)
        except HiveError:
            return None
        chats = [s for s in tree.spans() if s.name == "chat scripted"]
        whole = wanted <= tree.services and len(tree.roots) == 1 and len(chats) >= 6
        return tree if whole else None

    return wait_for(fetched, 45, f"trace {trace_id} with every pod's spans")


def test_one_team_run_is_one_trace_across_its_pods(
    cluster: Cluster,
    operator: OperatorProcess,
    real_node: RealNode,
    jaeger: DevJaeger,
    model: ScriptedModel,
) -> None:
    apply(cluster, team_manifest(real_node, model.url))
    try:
        try:
            run = wait_for(lambda: finished_run(cluster), 120, "the team's run to end")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_happened(cluster)}") from None
        assert run["outcome"] == "Succeeded", what_happened(cluster)
        trace_id = run["traceId"]
        assert len(trace_id) == 32
        pods = {agent: pod["metadata"]["name"] for agent, pod in agent_pods(cluster, TEAM).items()}
        tree = whole_trace(jaeger, trace_id)
        (root,) = tree.roots
        assert root.name == f"invoke_workflow {TEAM}"
        assert root.service == "hive-agent-lead"
        spans = tree.spans()
        by_id = {s.span_id: s for s in spans}

        def parent(node: SpanNode) -> SpanNode:
            assert node.parent_id is not None, node.name
            return by_id[node.parent_id]

        # three processes, each its own pod
        instances: dict[str, set[str]] = {}
        for span in spans:
            agent = span.service.removeprefix("hive-agent-")
            assert span.process["k8s.pod.name"] == pods[agent], span.name
            assert span.process["hive.team"] == TEAM
            instances.setdefault(agent, set()).add(span.process["service.instance.id"])
        assert sorted(instances) == ["lead", "researcher", "writer"]
        assert all(len(ids) == 1 for ids in instances.values()), instances
        assert len(set.union(*instances.values())) == 3

        for junior in JUNIORS:
            # the junior's server span is the child of the lead's call to it, across pods
            (served,) = [
                s
                for s in spans
                if s.name == f"invoke_agent {junior}" and s.service == f"hive-agent-{junior}"
            ]
            call = parent(served)
            assert (call.name, call.service) == (f"invoke_agent {junior}", "hive-agent-lead")
            assert call.attributes["gen_ai.operation.name"] == "invoke_agent"
            assert call.attributes["gen_ai.agent.name"] == junior
            node = call
            while node.parent_id is not None:
                node = parent(node)
            assert node is root
            # the junior's model call: a chat span under its server span, with the real tokens
            (chat,) = [
                s for s in spans if s.service == served.service and s.name.startswith("chat")
            ]
            assert parent(chat) is served
            assert chat.attributes["gen_ai.operation.name"] == "chat"
            assert chat.attributes["gen_ai.request.model"] == "scripted"
            assert (chat.input_tokens, chat.output_tokens) == TOKENS[junior]
            assert "gen_ai.input.messages" not in chat.attributes  # the team did not opt in
        lead_chats = [
            s for s in spans if s.service == "hive-agent-lead" and s.name == "chat scripted"
        ]
        assert TOKENS["lead"] in [(s.input_tokens, s.output_tokens) for s in lead_chats]
        delegations = [s for s in spans if s.name == "delegate lead"]
        assert sorted(s.attributes["hive.to"] for s in delegations) == list(JUNIORS)
        assert not [s for s in spans if s.error]

        env = {
            **os.environ,
            "HIVE_KUBE__KUBECONFIG": str(cluster.kubeconfig),
            "HIVE_TRACING__QUERY_URL": jaeger.query_url,
        }
        shown = subprocess.run(
            [sys.executable, "-m", "hive", "trace", "show", "--team", TEAM, "--width", "220"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert shown.returncode == 0, shown.stderr
        print(shown.stdout)  # shown with pytest -s
        assert f"trace {trace_id}" in shown.stdout
        assert f"invoke_workflow {TEAM}" in shown.stdout
        for agent, (tokens_in, tokens_out) in TOKENS.items():
            assert f"hive-agent-{agent} pod {pods[agent]}" in shown.stdout
            assert f"tokens {tokens_in} in / {tokens_out} out" in shown.stdout
        assert "from 3 services" in shown.stdout
    finally:
        cluster.kubectl("delete", "agentteam", TEAM, "--wait=false", check=False)
