"""A MemoryStore's ``spec.embedding`` names the model its vectors come from, and an embeddings
endpoint is asked for that model: a real `hive model serve --embeddings` process serving the
local model under another name (``team-minilm``) embeds for `hive memory` and `hive rag` on a
store that names it, and for a team's agents in `hive run` (a scripted chat model), on a real
Weaviate, with nothing but the endpoint set for the commands; a store that declares another
vector size than the endpoint returns is refused, naming both."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from hive.dev.weaviate import DevWeaviate
from hive.ports import free_port
from tests.scripted_model import scripted_model
from tests.support import stop_process, wait_until_answers

pytestmark = pytest.mark.integration

SERVED_AS = "team-minilm"


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HIVE_AGENT__EMBEDDINGS__")}
    return {**env, **extra}


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    """`hive model serve --embeddings` answering to the model name SERVED_AS."""
    port = free_port()
    argv = [sys.executable, "-m", "hive", "model", "serve", "--embeddings", "--port", str(port)]
    env = clean_env(HIVE_AGENT__EMBEDDINGS__MODEL=SERVED_AS)
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_answers(process, f"{url}/health", "hive model serve --embeddings", 120)
        yield url
    finally:
        stop_process(process)


def store_file(folder: Path, weaviate: DevWeaviate, collection: str, dimensions: int) -> Path:
    path = folder / f"{collection}.yaml"
    path.write_text(
        f"""apiVersion: hive.dev/v1alpha1
kind: MemoryStore
metadata: {{name: notes}}
spec:
  backend: weaviate
  connection: {{endpoint: "{weaviate.url}", grpcPort: {weaviate.grpc_port}}}
  collection: {collection}
  embedding: {{model: {SERVED_AS}, dimensions: {dimensions}}}
"""
    )
    return path


def hive(endpoint: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=clean_env(HIVE_AGENT__EMBEDDINGS__ENDPOINT=endpoint),
    )


def test_the_endpoint_embeds_for_a_store_of_the_model_it_serves(
    endpoint: str, weaviate: DevWeaviate, tmp_path: Path
) -> None:
    store = store_file(tmp_path, weaviate, "ServedNotes", 384)
    at = ("--store", str(store))
    stored = hive(endpoint, "memory", "store", *at, "The canteen serves soup on Fridays")
    assert stored.returncode == 0, stored.stderr
    recalled = hive(endpoint, "memory", "recall", *at, "when is there soup?", "--json")
    assert recalled.returncode == 0, recalled.stderr
    [found] = [json.loads(line) for line in recalled.stdout.splitlines()]
    assert found["id"] == stored.stdout.strip()

    documents = store_file(tmp_path, weaviate, "ServedDocs", 384)
    page = tmp_path / "canteen.md"
    page.write_text("# Canteen\n\nSoup is served on Fridays from noon.\n", encoding="utf-8")
    indexed = hive(endpoint, "rag", "index", str(page), "--store", str(documents))
    assert indexed.returncode == 0, indexed.stderr
    assert "ServedDocs: 1 chunks" in indexed.stdout


def test_hive_run_embeds_with_the_endpoint_for_the_teams_store(
    endpoint: str, weaviate: DevWeaviate, tmp_path: Path
) -> None:
    team = tmp_path / "team.yaml"
    store = store_file(tmp_path, weaviate, "ServedTeam", 384).read_text()
    team.write_text(
        """apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata: {name: canteen}
spec:
  goal: Know the canteen
  model: {provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}
  memory: {storeRef: {name: notes}}
  agents:
    - {name: scribe, role: senior}
---
"""
        + store
    )
    fact = "The canteen closes at three on Wednesdays"
    remember = {"name": "remember", "arguments": {"content": fact}}
    with scripted_model({"scribe": [{"tool_calls": [remember]}, {"content": "Noted."}]}) as model:
        ran = hive(
            endpoint, "run", str(team), "Note when the canteen closes", "--endpoint", model.url
        )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    recalled = hive(endpoint, "memory", "recall", "--store", str(team), "canteen hours", "--json")
    assert recalled.returncode == 0, recalled.stderr
    assert [json.loads(line)["content"] for line in recalled.stdout.splitlines()] == [fact]


def test_a_store_of_another_vector_size_is_refused_naming_both(
    endpoint: str, weaviate: DevWeaviate, tmp_path: Path
) -> None:
    store = store_file(tmp_path, weaviate, "WrongSize", 768)
    refused = hive(endpoint, "memory", "store", "--store", str(store), "A note")
    assert refused.returncode == 1
    assert refused.stderr.startswith("hive: error: ")
    assert "768" in refused.stderr
    assert "384" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
