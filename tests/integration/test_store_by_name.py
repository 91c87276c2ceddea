"""`hive memory` and `hive rag` given a MemoryStore by its name in the cluster: the store's spec
is read from the real API server and its Weaviate API key from the Secret its
``connection.secretRef`` names, against a real Weaviate that refuses requests without that key.
Nothing about the key is in the command's environment."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.dev.weaviate import DevWeaviate
from hive.kube.resources import apply_crds
from tests.scripted_model import scripted_model
from tests.support import Cluster, weaviate_server

pytestmark = pytest.mark.integration

NS = "stores-by-name"
API_KEY = "by-name-key"


@pytest.fixture(scope="module")
def keyed_weaviate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevWeaviate]:
    with weaviate_server(tmp_path_factory.mktemp("weaviate"), api_key=API_KEY) as server:
        yield server


def apply(cluster: Cluster, folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / f"{manifest['kind']}-{manifest['metadata']['name']}.json"
    path.write_text(json.dumps(manifest))
    cluster.kubectl("apply", "-f", str(path))


@pytest.fixture(scope="module")
def stores(cluster: Cluster, keyed_weaviate: DevWeaviate, tmp_path_factory: Any) -> None:
    """MemoryStores `notes` and `docs` in namespace NS on the keyed Weaviate, their key in the
    Secret `weaviate-key`."""
    folder = tmp_path_factory.mktemp("manifests")
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS, check=False)
    apply(
        cluster,
        folder,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "weaviate-key", "namespace": NS},
            "stringData": {"apiKey": API_KEY},
        },
    )
    for name, collection in (("notes", "ByNameNotes"), ("docs", "ByNameDocs")):
        connection = {
            "endpoint": keyed_weaviate.url,
            "grpcPort": keyed_weaviate.grpc_port,
            "secretRef": {"name": "weaviate-key", "key": "apiKey"},
        }
        apply(
            cluster,
            folder,
            {
                "apiVersion": "hive.dev/v1alpha1",
                "kind": "MemoryStore",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"backend": "weaviate", "connection": connection, "collection": collection},
            },
        )


def hive(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("HIVE_RAG__WEAVIATE_API_KEY", "HIVE_AGENT__MEMORY__SECRET")
    }
    env["HIVE_KUBE__KUBECONFIG"] = str(cluster.kubeconfig)
    return subprocess.run(
        [sys.executable, "-m", "hive", *args], capture_output=True, text=True, timeout=180, env=env
    )


def test_hive_memory_stores_and_recalls_in_a_store_named_in_the_cluster(
    cluster: Cluster, stores: None
) -> None:
    at = ("--store", "notes", "-n", NS)
    stored = hive(cluster, "memory", "store", *at, "The release train leaves on Thursdays")
    assert stored.returncode == 0, stored.stderr
    recalled = hive(
        cluster, "memory", "recall", *at, "when does the release train leave?", "--json"
    )
    assert recalled.returncode == 0, recalled.stderr
    [found] = [json.loads(line) for line in recalled.stdout.splitlines()]
    assert found["id"] == stored.stdout.strip()


def test_hive_rag_indexes_and_answers_from_a_store_named_in_the_cluster(
    cluster: Cluster, stores: None, tmp_path: Path
) -> None:
    document = tmp_path / "lighthouse.md"
    document.write_text(
        "# Skerry Point lighthouse\n\nThe lighthouse on Skerry Point has 118 steps up to its "
        "lantern room, and its lamp turns once every twelve seconds.\n",
        encoding="utf-8",
    )
    at = ("--store", "docs", "-n", NS)
    indexed = hive(cluster, "rag", "index", str(document), *at)
    assert indexed.returncode == 0, indexed.stderr
    assert "added" in indexed.stdout
    assert "ByNameDocs: 1 chunks" in indexed.stdout

    question = "How many steps lead up to the lantern room of the lighthouse?"
    with scripted_model([{"content": "It has 118 steps [1]."}]) as model:
        asked = hive(cluster, "rag", "ask", question, *at, "--endpoint", model.url)
    assert asked.returncode == 0, asked.stderr
    lines = asked.stdout.splitlines()
    assert lines[0] == "It has 118 steps [1]."
    assert any(line.startswith(f"[1] {document.resolve()}:0-") for line in lines)
    assert "118 steps" in json.dumps(model.requests[0]["messages"])


def test_a_store_the_cluster_does_not_hold_is_one_line(cluster: Cluster, stores: None) -> None:
    for args in (
        ("rag", "ask", "anything", "--store", "nowhere", "-n", NS),
        ("memory", "recall", "--store", "nowhere", "-n", NS, "anything"),
    ):
        result = hive(cluster, *args)
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith("hive: error: --store: ")
        assert f"no MemoryStore {NS}/nowhere" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
