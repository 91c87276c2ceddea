"""An agent pod answers from its team's documents (spec.memory.documents) with citations: the
operator's plan writes the agent's configuration, `hive agent`'s build_pod reads it back and
gives the agent search_documents over a real Weaviate collection filled as `hive rag index`
fills it, and a scripted model calls the tool and cites the chunk."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentStatus, RunOutcome, RunStatus
from hive.api.memorystore import MemoryStoreSpec
from hive.cli.agent import build_pod
from hive.dev.weaviate import DevWeaviate
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner
from hive.runtime.models import OpenAICompatible
from hive.runtime.pod import PodConfig
from hive.runtime.rag.documents import read_document
from hive.runtime.rag.pipeline import DocumentStore
from hive.runtime.teams.team import Team
from hive.settings import AgentSettings, Settings
from tests.scripted_model import scripted_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LIGHTHOUSE = Path(__file__).resolve().parents[1] / "data" / "rag" / "corpus" / "lighthouse.md"
OWNER = Owner("AgentTeam", "readers", "default", "uid-readers", generation=1)


class Status:
    """Where the pod would report; nothing is asked of it here."""

    async def report(self, status: AgentStatus) -> None:
        pass

    async def report_run(self, run: RunStatus) -> None:
        pass

    async def generation(self) -> int:
        return 1

    async def last_run(self) -> RunStatus | None:
        return None


def reader_script() -> list[dict[str, Any]]:
    return [
        {
            "tool_calls": [
                {
                    "name": "search_documents",
                    "arguments": {"question": "How many steps lead up to the lantern room?"},
                }
            ]
        },
        {"when": "^Excerpts:", "content": "There are 118 steps [1]."},
        {"when": "118 steps", "content": "118 steps, per the lighthouse history."},
    ]


async def test_an_agent_configured_by_the_operator_answers_from_the_documents(
    weaviate: DevWeaviate, tmp_path: Path
) -> None:
    store_spec: dict[str, Any] = {
        "backend": "weaviate",
        "connection": {"endpoint": weaviate.url, "grpcPort": weaviate.grpc_port},
        "collection": "Handbook" + uuid.uuid4().hex[:8],
    }
    settings = Settings(agent=AgentSettings(audit_dir=tmp_path / "audit"))
    with DocumentStore(MemoryStoreSpec.model_validate(store_spec), settings) as documents:
        await documents.index.index(read_document(LIGHTHOUSE))  # as `hive rag index` does
    with scripted_model(reader_script()) as server:
        team = {
            "goal": "Answer from the documents",
            "model": {"provider": "openai-compatible", "endpoint": server.url, "name": "m"},
            "memory": {"documents": {"storeRef": {"name": "handbook"}, "topK": 2}},
            "agents": [
                {"name": "reader", "role": "specialist", "tools": [{"name": "search-documents"}]}
            ],
        }
        plan = plan_team(
            OWNER,
            team,
            None,
            TeamObserved(memory_stores={"handbook": store_spec}),
            AgentPodSettings(image="hive:test"),
            dt.datetime.now(dt.UTC),
        )
        config_map = next(c for c in plan.children if c["kind"] == "ConfigMap")
        path = tmp_path / "agent.yaml"
        path.write_text(config_map["data"]["agent.yaml"])
        config = PodConfig.load(path, "reader")
        toolbox, pod = build_pod(config, "reader", settings, Status())  # type: ignore[arg-type]
        try:
            assert "search_documents" in pod.tools.tools
            model = OpenAICompatible(server.url, "m", max_retries=0)
            result = await Team.local(config.spec, model, tools=lambda _: pod.tools).run()
            await model.aclose()
        finally:
            await toolbox.close()
        requests = server.requests
    assert result.outcome is RunOutcome.SUCCEEDED
    answers = [
        json.loads(m["content"])
        for r in requests
        for m in r["messages"]
        if m["role"] == "tool" and m["content"].startswith("{")
    ]
    (answer,) = answers
    assert answer["answer"] == "There are 118 steps [1]."
    assert answer["found"] is True
    (citation,) = answer["citations"]
    assert citation["source"] == str(LIGHTHOUSE.resolve())
    text = read_document(LIGHTHOUSE).text
    assert text[citation["start"] : citation["end"]] == citation["text"]
    assert "118 steps" in citation["text"]
    excerpts = next(
        m["content"]
        for r in requests
        for m in r["messages"]
        if m["role"] == "user" and m["content"].startswith("Excerpts:")
    )
    assert "[2]" in excerpts  # the team's topK: two chunks, not HIVE_RAG__TOP_K's three
    assert "[3]" not in excerpts
    assert yaml.safe_load(path.read_text())["documentsStore"]["name"] == "handbook"
