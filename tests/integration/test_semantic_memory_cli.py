"""`hive memory store|recall|forget|consolidate` on a MemoryStore file, against a real
Weaviate: what a person does by hand to a team's memory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hive.dev.weaviate import DevWeaviate

pytestmark = pytest.mark.integration


def hive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", "memory", *args], capture_output=True, text=True, timeout=120
    )


def test_store_recall_forget_and_consolidate_by_hand(tmp_path: Path, weaviate: DevWeaviate) -> None:
    store = tmp_path / "store.yaml"
    store.write_text(
        f"""apiVersion: hive.dev/v1alpha1
kind: MemoryStore
metadata: {{name: notes}}
spec:
  backend: weaviate
  connection: {{endpoint: "{weaviate.url}", grpcPort: {weaviate.grpc_port}}}
  collection: CliNotes
  consolidation: {{schedule: "0 3 * * *", similarityThreshold: 0.9}}
"""
    )
    at = ("--store", str(store))
    stored = [
        hive("store", *at, "The VPN config lives in the ops wiki", "--meta", "topic=ops"),
        hive("store", *at, "The VPN config lives in the ops wiki.", "--importance", "0.9"),
        hive("store", *at, "Standup is at half past nine"),
    ]
    assert all(r.returncode == 0 for r in stored), [r.stderr for r in stored]
    ids = [r.stdout.strip() for r in stored]

    recalled = hive("recall", *at, "where is the VPN configuration?", "-k", "2", "--json")
    assert recalled.returncode == 0, recalled.stderr
    lines = [json.loads(line) for line in recalled.stdout.splitlines()]
    assert {line["id"] for line in lines} == set(ids[:2])
    only_ops = hive("recall", *at, "VPN", "--filter", "topic=ops", "--json")
    assert [json.loads(line)["id"] for line in only_ops.stdout.splitlines()] == [ids[0]]

    counts = hive("consolidate", *at)
    assert counts.returncode == 0, counts.stderr
    assert json.loads(counts.stdout) == {
        "before": 3,
        "after": 2,
        "expired": 0,
        "dropped": 0,
        "merged": 1,
        "summaries": 0,
        "summarized": 0,
    }

    assert hive("forget", *at, ids[2]).stdout.strip() == "1"
    assert hive("forget", *at, ids[2]).stdout.strip() == "0"
    bad = hive("forget", *at)
    assert bad.returncode != 0
    assert "give an id or --filter KEY=VALUE" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1


def test_a_failing_summariser_is_reported_after_the_other_steps(
    tmp_path: Path, weaviate: DevWeaviate
) -> None:
    from tests.scripted_model import scripted_model

    store = tmp_path / "store.yaml"
    store.write_text(
        f"""apiVersion: hive.dev/v1alpha1
kind: MemoryStore
metadata: {{name: notes}}
spec:
  backend: weaviate
  connection: {{endpoint: "{weaviate.url}", grpcPort: {weaviate.grpc_port}}}
  collection: CliFailingSummaries
"""
    )
    at = ("--store", str(store))
    for text in ("Builds run on push", "Builds run on push.", "Tests run on push", "Lint on push"):
        assert hive("store", *at, text).returncode == 0
    with scripted_model([{"status": 400}]) as model:
        counts = hive(
            "consolidate", *at, "--summarize-endpoint", model.url, "--summarize-model", "m",
            "--cluster-threshold", "0.3", "--min-cluster", "2",
        )  # fmt: skip
    assert counts.returncode == 1
    printed = json.loads(counts.stdout)
    assert (printed["before"], printed["merged"], printed["summaries"]) == (4, 1, 0)
    assert printed["error"].startswith("summaries: ")
