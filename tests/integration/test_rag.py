"""Documents with citations for real: a real Weaviate (the session's `weaviate`), the local ONNX
embedder, `hive rag` as a process, a scripted chat model over HTTP for the repair loop and the
embedded SmolLM2 for the real path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hive.api.agentteam import AgentTeamSpec, RunOutcome
from hive.api.memorystore import MemoryStoreSpec
from hive.dev.weaviate import DevWeaviate
from hive.runtime.models import OpenAICompatible
from hive.runtime.rag.answering import NOT_FOUND, Answerer
from hive.runtime.rag.documents import collect_files, read_document
from hive.runtime.rag.evaluation import QuestionSet, load_questions, recall_at
from hive.runtime.rag.pipeline import DocumentStore
from hive.runtime.teams.team import Team
from hive.runtime.toolbox import Toolbox
from hive.settings import get_settings
from tests.scripted_model import scripted_model

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

DATA = Path(__file__).resolve().parents[1] / "data" / "rag"
CORPUS = DATA / "corpus"
HIVE = str(Path(sys.executable).parent / "hive")


def spec_for(server: DevWeaviate, collection: str) -> MemoryStoreSpec:
    return MemoryStoreSpec.model_validate(
        {
            "backend": "weaviate",
            "connection": {"endpoint": server.url, "grpcPort": server.grpc_port},
            "collection": collection,
        }
    )


def fresh_name() -> str:
    return "Docs" + uuid.uuid4().hex[:10]


@pytest.fixture(scope="module")
def questions() -> QuestionSet:
    return load_questions(DATA / "questions.yaml", CORPUS)


@pytest.fixture(scope="module")
async def corpus_store(weaviate: DevWeaviate) -> Iterator[DocumentStore]:
    store = DocumentStore(spec_for(weaviate, fresh_name()), get_settings())
    for path in collect_files([CORPUS]):
        await store.index.index(read_document(path))
    yield store
    store.close()


async def test_a_changed_file_replaces_its_chunks_and_an_unchanged_one_is_skipped(
    weaviate: DevWeaviate, tmp_path: Path
) -> None:
    path = tmp_path / "notes.md"
    path.write_text("# Notes\n\n" + "The old ferry ran on steam. " * 60, encoding="utf-8")
    with DocumentStore(spec_for(weaviate, fresh_name()), get_settings()) as store:
        first = await store.index.index(read_document(path))
        assert first.outcome == "added"
        assert first.chunks > 1
        again = await store.index.index(read_document(path))
        assert (again.outcome, again.chunks) == ("unchanged", first.chunks)
        path.write_text("# Notes\n\nThe new ferry is electric.\n", encoding="utf-8")
        changed = await store.index.index(read_document(path))
        assert (changed.outcome, changed.chunks) == ("replaced", 1)
        chunks = store.index.chunks_of(str(path.resolve()))
        assert [c.text for c in chunks] == ["# Notes\n\nThe new ferry is electric."]
        assert store.index.count() == 1
        text = path.read_text(encoding="utf-8")
        assert all(text[c.start : c.end] == c.text for c in chunks)


async def test_hybrid_recall_at_5_is_at_least_vector_and_bm25_alone(
    corpus_store: DocumentStore, questions: QuestionSet
) -> None:
    recall = {}
    for mode in ("hybrid", "vector", "bm25"):
        results = []
        for question in questions.questions:
            retrieved = await corpus_store.retriever.retrieve(question.question, 5, mode=mode)
            results.append([hit.chunk for hit in retrieved.hits])
        recall[mode] = recall_at(results, questions.questions, 5)
    print("recall@5", recall)  # bench/rag_quality.py prints the full comparison
    assert recall["hybrid"] >= recall["vector"]
    assert recall["hybrid"] >= recall["bm25"]
    assert recall["hybrid"] >= 0.95


async def test_questions_about_nothing_in_the_documents_are_not_found(
    corpus_store: DocumentStore, questions: QuestionSet
) -> None:
    retriever = corpus_store.retriever
    answerable = [(await retriever.retrieve(q.question)).found for q in questions.questions]
    unanswerable = [(await retriever.retrieve(q)).found for q in questions.unanswerable]
    # measured with the default threshold: every answerable question passes, 11 of 12 others not
    assert sum(answerable) >= 0.95 * len(answerable)
    assert sum(unanswerable) <= 0.25 * len(unanswerable)


async def test_the_embedded_model_cites_only_excerpts_it_was_shown(
    corpus_store: DocumentStore, questions: QuestionSet
) -> None:
    from hive.runtime.embedded import EmbeddedModelServer, embedded_model_client

    settings = get_settings().rag
    async with EmbeddedModelServer(start_timeout_s=120) as server:
        model = embedded_model_client(server, timeout_s=120)
        answerer = Answerer(corpus_store.retriever, model, settings)
        for question in questions.questions[:3]:
            answer = await answerer.ask(question.question)
            assert answer.repairs <= settings.max_repairs
            shown = {(c.source, c.start) for c in answer.excerpts}
            for citation in answer.citations:  # every printed [n] is a chunk it was shown
                assert (citation.chunk.source, citation.chunk.start) in shown
                assert f"[{citation.number}" in answer.text or f", {citation.number}" in answer.text
            assert answer.found or answer.text == NOT_FOUND
        await model.aclose()
        nothing = await answerer.ask(questions.unanswerable[0])
        assert nothing.text == NOT_FOUND


# --- hive rag as a process ------------------------------------------------------------------
def store_file(tmp_path: Path, spec: MemoryStoreSpec, name: str = "docs") -> Path:
    path = tmp_path / f"{name}.yaml"
    manifest = {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "MemoryStore",
        "metadata": {"name": name},
        "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
    }
    path.write_text(yaml.safe_dump(manifest), encoding="utf-8")
    return path


def hive(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HIVE, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_hive_rag_indexes_then_answers_with_citations_repaired_over_http(
    weaviate: DevWeaviate, tmp_path: Path
) -> None:
    store = store_file(tmp_path, spec_for(weaviate, fresh_name()))
    indexed = hive("rag", "index", str(CORPUS), "--store", str(store))
    assert indexed.returncode == 0, indexed.stderr
    assert indexed.stdout.count("added") == len(collect_files([CORPUS]))
    again = hive("rag", "index", str(CORPUS / "river-ferry.html"), "--store", str(store))
    assert "unchanged" in again.stdout
    script = [
        {"content": "It stops above 2.8 metres [9]."},  # no excerpt 9: sent back
        {"content": "The ferry stops when the river rises above 2.8 metres [1]."},
    ]
    with scripted_model(script) as model:
        asked = hive(
            "rag",
            "ask",
            "At what river level does the ferry stop running?",
            "--store",
            str(store),
            "--endpoint",
            model.url,
            "--model",
            "scripted",
        )
    assert asked.returncode == 0, asked.stderr
    lines = asked.stdout.splitlines()
    assert lines[0] == "The ferry stops when the river rises above 2.8 metres [1]."
    source = str((CORPUS / "river-ferry.html").resolve())
    cited = [line for line in lines if line.startswith("[1] ")]
    assert len(cited) == 1
    location, _, title = cited[0][4:].partition("  ")
    assert title == "Tollin River Ferry: Timetable and Rules"
    path, _, offsets = location.rpartition(":")
    start, end = (int(x) for x in offsets.split("-"))
    assert path == source
    assert "2.8 metres" in read_document(Path(source)).text[start:end]
    repair = model.requests[1]["messages"][-1]["content"]
    assert "[9]" in repair
    first_prompt = json.dumps(model.requests[0]["messages"])
    assert "Ashby gauge" in first_prompt


def test_hive_rag_says_not_found_without_a_model(weaviate: DevWeaviate, tmp_path: Path) -> None:
    store = store_file(tmp_path, spec_for(weaviate, fresh_name()))
    assert (
        hive("rag", "index", str(CORPUS / "sourdough.txt"), "--store", str(store)).returncode == 0
    )
    asked = hive(
        "rag",
        "ask",
        "How do I configure a Kubernetes ingress controller?",
        "--store",
        str(store),
        "--endpoint",
        "http://127.0.0.1:9/v1",  # nothing listens: asking it would fail
    )
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout.strip() == NOT_FOUND


def test_hive_rag_fails_in_one_line(weaviate: DevWeaviate, tmp_path: Path) -> None:
    store = store_file(tmp_path, spec_for(weaviate, fresh_name()))
    redis = store_file(
        tmp_path,
        MemoryStoreSpec.model_validate(
            {
                "backend": "redis",
                "connection": {"endpoint": "redis://127.0.0.1:1/0"},
                "collection": "docs",
            }
        ),
        "redis",
    )
    gone = store_file(tmp_path, spec_for(weaviate, "Docs").model_copy(), "gone")
    gone.write_text(gone.read_text().replace(weaviate.url, "http://127.0.0.1:9"))
    not_a_store = tmp_path / "team.yaml"
    not_a_store.write_text("kind: AgentTeam\n")
    bad_field = tmp_path / "bad.yaml"
    bad_field.write_text("kind: MemoryStore\nspec: {backend: weaviate, collection: X}\n")
    cases = [
        (
            ["index", str(tmp_path / "missing.md"), "--store", str(store)],
            "missing.md: no such file",
        ),
        (["index", str(CORPUS), "--store", str(tmp_path / "none.yaml")], "--store:"),
        (["index", str(CORPUS), "--store", str(not_a_store)], "is not a MemoryStore manifest"),
        (["index", str(CORPUS), "--store", str(bad_field)], "spec.connection.endpoint: required"),
        (["index", str(CORPUS), "--store", str(redis)], "documents need a weaviate store"),
        (["index", str(CORPUS), "--store", str(gone)], "weaviate at http://127.0.0.1:9"),
        (["ask", " ", "--store", str(store)], "QUESTION: is empty"),
    ]
    for args, expected in cases:
        result = hive("rag", *args)
        assert result.returncode == 1, (args, result.stdout)
        assert result.stderr.startswith("hive: error: "), result.stderr
        assert expected in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert "Traceback" not in result.stderr


# --- the agents' search_documents tool ------------------------------------------------------
READER_TEAM = """apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata:
  name: readers
spec:
  goal: Answer from the documents
  model: {provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}
  agents:
    - name: reader
      role: specialist
      tools: [{name: search-documents}]
"""


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


def tool_answers(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        json.loads(m["content"])
        for r in requests
        for m in r["messages"]
        if m["role"] == "tool" and m["content"].startswith("{")
    ]


async def test_an_agent_answers_from_the_documents_with_the_search_documents_tool(
    corpus_store: DocumentStore,
) -> None:
    team = AgentTeamSpec.model_validate(yaml.safe_load(READER_TEAM)["spec"])
    with scripted_model(reader_script()) as server:
        model = OpenAICompatible(server.url, "m", max_retries=0)
        toolbox = Toolbox(documents=Answerer(corpus_store.retriever, model, get_settings().rag))
        tools = toolbox.for_agent(team.agents[0], None)
        assert set(tools.tools) == {"search_documents"}
        result = await Team.local(team, model, tools=lambda _: tools).run()
        await model.aclose()
        requests = server.requests
    assert result.outcome is RunOutcome.SUCCEEDED
    (answer,) = tool_answers(requests)
    assert answer["answer"] == "There are 118 steps [1]."
    assert answer["found"] is True
    (citation,) = answer["citations"]
    assert citation["n"] == 1
    assert citation["source"] == str((CORPUS / "lighthouse.md").resolve())
    text = read_document(CORPUS / "lighthouse.md").text
    assert text[citation["start"] : citation["end"]] == citation["text"]
    assert "118 steps" in citation["text"]


def test_hive_run_gives_its_agents_the_documents_of_hive_rag_store(
    weaviate: DevWeaviate, tmp_path: Path
) -> None:
    store = store_file(tmp_path, spec_for(weaviate, fresh_name()))
    assert (
        hive("rag", "index", str(CORPUS / "lighthouse.md"), "--store", str(store)).returncode == 0
    )
    team = tmp_path / "readers.yaml"
    team.write_text(READER_TEAM, encoding="utf-8")
    with scripted_model(reader_script()) as model:
        result = hive(
            "run",
            str(team),
            "--endpoint",
            model.url,
            "--no-live",
            env={"HIVE_RAG__STORE": str(store)},
        )
        requests = model.requests
    assert result.returncode == 0, result.stdout + result.stderr
    assert "118 steps, per the lighthouse history." in result.stdout
    (answer,) = tool_answers(requests)
    assert answer["citations"][0]["title"] == "Karrow Point Lighthouse: A Short History"
    without = hive(
        "run",
        str(team),
        "--endpoint",
        "http://127.0.0.1:9/v1",
        "--no-live",
        env={"HIVE_RAG__STORE": str(tmp_path / "none.yaml")},
    )
    assert without.returncode == 1
    assert without.stderr.startswith("hive: error: HIVE_RAG__STORE: ")
