"""A team with a privacy policy, run by `hive run` on a scripted model with a real Redis memory
store: no raw email, card number or name reaches the model, the memory or the logs; the answer
the requester gets has its pseudonyms restored; the findings are in the audit log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from hive.runtime.privacy.handling import Pseudonyms, derive_key
from tests.scripted_model import scripted_model
from tests.support import redis_server

pytestmark = pytest.mark.integration

KEY = "team key for the privacy test 0123456789"
EMAIL, CARD, NAME = "jane.smith@example.com", "4111 1111 1111 1111", "Jane Smith"
TASK = f"Customer {NAME} ({EMAIL}) paid with card {CARD}; note it and confirm by email."


def team_file(folder: Path, redis_url: str) -> Path:
    path = folder / "team.yaml"
    path.write_text(
        f"""apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata: {{name: support}}
spec:
  goal: Answer customers
  model: {{provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}}
  memory: {{storeRef: {{name: notes}}, recallK: 0}}
  privacy:
    mode: ner
    # toolInputs off: the memory's own boundary must stop the raw note the model writes
    boundaries: [modelPrompts, modelAnswers, toolOutputs, memoryWrites, logs]
    rules:
      - {{entity: EMAIL_ADDRESS, strategy: pseudonymise}}
      - {{entity: PERSON, strategy: pseudonymise}}
      - {{entity: CREDIT_CARD, strategy: redact}}
  agents:
    - {{name: scribe, role: senior}}
---
apiVersion: hive.dev/v1alpha1
kind: MemoryStore
metadata: {{name: notes}}
spec:
  backend: redis
  connection: {{endpoint: "{redis_url}"}}
  collection: notes
"""
    )
    return path


def test_raw_values_reach_neither_model_nor_memory_nor_logs(tmp_path: Path) -> None:
    email_pseudonym = Pseudonyms(derive_key(KEY)).make("EMAIL_ADDRESS", EMAIL)
    # the model writes a note with raw values of its own making, then answers in pseudonyms
    note = f"{NAME} paid with {CARD}, mail {EMAIL}"
    steps = {
        "scribe": [
            {"tool_calls": [{"name": "remember", "arguments": {"content": note}}]},
            {"content": f"Noted; I confirmed to {email_pseudonym}."},
        ]
    }
    env = {
        **os.environ,
        "HIVE_PRIVACY__KEY": KEY,
        "HIVE_AGENT__AUDIT_DIR": str(tmp_path / "audit"),
    }
    (tmp_path / "redis").mkdir()
    with redis_server(tmp_path / "redis") as url, scripted_model(steps) as model:
        team = team_file(tmp_path, url)
        run = subprocess.run(
            [sys.executable, "-m", "hive", "run", str(team), TASK, "--endpoint", model.url],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
        assert run.returncode == 0, run.stdout + run.stderr
        stored = redis.Redis.from_url(url)
        memory = b"".join(
            json.dumps(
                {k.decode(): str(v) for k, v in (stored.hgetall(key) or {}).items()}
            ).encode()
            if stored.type(key) == b"hash"
            else str(stored.dump(key)).encode()
            for key in stored.scan_iter()
        ).decode(errors="replace")
        stored.close()
    sent = json.dumps(model.requests)
    for raw in (EMAIL, CARD, NAME, "4111"):
        assert raw not in sent, f"{raw!r} reached the model"
        assert raw not in memory, f"{raw!r} reached the memory store"
        assert raw not in run.stderr, f"{raw!r} reached the logs"
    assert "<CREDIT_CARD>" in sent
    assert email_pseudonym in sent  # the model could still address the customer
    assert "<CREDIT_CARD>" in memory
    assert f"I confirmed to {EMAIL}" in run.stdout  # restored for the requester
    assert "in clear: none" in run.stdout  # the run's summary
    records = [
        json.loads(line)
        for line in (tmp_path / "audit" / "local.run.audit.jsonl").read_text().splitlines()
    ]
    boundaries = {r["subject"].split(":")[1] for r in records if r["action"] == "privacy"}
    assert {"modelPrompts", "memoryWrites"} <= boundaries
    assert all(raw not in json.dumps(records) for raw in (EMAIL, CARD, NAME))

    audit = str(tmp_path / "audit")
    command = [sys.executable, "-m", "hive", "compliance", "report", "--team", "run"]
    report = subprocess.run(
        [*command, "--audit-dir", audit, "--since", "1h", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    content = json.loads(report.stdout)
    assert content["byEntity"]["CREDIT_CARD"] >= 2  # the task's, and the model's note
    assert content["byStrategy"]["redact"] >= 2
    assert content["byBoundary"]["memoryWrites"] >= 3
    assert content["receivedInClear"] == {}
    markdown = subprocess.run(
        [*command, "--audit-dir", audit], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert "| CREDIT_CARD | memoryWrites | redact | 1 |" in markdown
    assert "received personal data in clear: none" in markdown
