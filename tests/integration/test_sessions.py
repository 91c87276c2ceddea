"""Cross-session memory against a real redis-server and the real embedding model: `hive run
--session` saves each run and hands its notes to the next, ranked by similarity; sessions
outlive a restart of Redis; `hive sessions show` prints the history and how to continue."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from hive.ports import free_port
from hive.runtime.events import Event, EventKind
from hive.runtime.memory.embeddings import LocalOnnxEmbedder
from hive.runtime.memory.sessions import (
    Note,
    NoteKind,
    Origin,
    SessionMemory,
    SessionRun,
    SessionStore,
)
from tests.scripted_model import Script, scripted_model
from tests.support import redis_server

pytestmark = pytest.mark.integration

TEAM = """apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata:
  name: garden
spec:
  goal: Plan a bee garden
  model: {provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}
  pattern: hierarchical
  agents:
    - {name: lead, role: senior, subordinates: [researcher]}
    - {name: researcher, role: junior, capabilities: [research]}
"""
NOTES = {
    "facts": ["Lavender attracts bumblebees all summer", "The plot gets six hours of sun"],
    "decisions": ["Plant lavender along the south fence"],
    "open_questions": ["Which month is best to sow borage?"],
}


def script(answer: str, notes: dict[str, Any] | None) -> Script:
    lead: list[dict[str, Any]] = [
        {"json": {"subtasks": [{"description": "Find plants bees like"}]}},
        {"when": "gave researcher", "json": {"score": 0.9, "feedback": ""}},
        {"when": "final answer", "content": answer},
    ]
    if notes is not None:
        lead.append({"when": "key facts learned", "json": notes})
    return {"lead": lead, "*": [{"content": "Bees like lavender and borage."}] * 4}


def hive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", *args], capture_output=True, text=True, timeout=180
    )


def run_team(
    team: Path, task: str, steps: Script, store: str, session: str = "alice"
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]], dict[str, Any]]:
    report = team.parent / "report.json"
    with scripted_model(steps) as model:
        result = hive(
            "run",
            str(team),
            task,
            "--endpoint",
            model.url,
            "--no-live",
            "--report",
            str(report),
            "--session",
            session,
            "--session-store",
            store,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    return result, model.requests, json.loads(report.read_text())


@pytest.fixture
def team(tmp_path: Path) -> Path:
    path = tmp_path / "garden.yaml"
    path.write_text(TEAM)
    return path


async def saved_runs(url: str, team: str = "garden", session: str = "alice") -> list[SessionRun]:
    store = SessionStore(url)
    try:
        return await store.runs(team, session)
    finally:
        await store.close()


async def test_a_run_is_saved_and_the_next_run_of_the_session_gets_its_facts(
    team: Path, tmp_path: Path
) -> None:
    with redis_server(tmp_path) as url:
        first, _, _ = run_team(team, "Plan the bee garden", script("Lavender, south.", NOTES), url)
        assert "session alice: new, nothing to recall yet" in first.stdout
        assert "session alice saved: 2 fact(s), 3 decision(s), 1 open question(s)" in first.stdout
        [run] = await saved_runs(url)
        assert (run.task, run.answer, run.outcome) == (
            "Plan the bee garden",
            "Lavender, south.",
            "Succeeded",
        )
        assert run.extraction == "model and events"
        by_origin = {(n.kind, n.text): n.origin for n in run.notes}
        assert by_origin[(NoteKind.FACT, NOTES["facts"][0])] is Origin.MODEL
        assert by_origin[(NoteKind.QUESTION, NOTES["open_questions"][0])] is Origin.MODEL
        assert by_origin[(NoteKind.DECISION, "lead gave researcher: Find plants bees like")] is (
            Origin.EVENTS
        )
        assert all(n.vector is not None and len(n.vector) == 384 for n in run.notes)

        second, requests, report = run_team(
            team, "Which flowers attract bumblebees in summer?", script("Borage.", None), url
        )
        assert "of 1 earlier run(s) given to the team" in second.stdout
        plan_request = requests[0]["messages"][-1]["content"]
        assert "Notes from earlier runs of session alice" in plan_request
        assert "Lavender attracts bumblebees all summer" in plan_request
        assert report["task"] == "Which flowers attract bumblebees in summer?"
        # without notes from the model (its script has none), the events' notes are saved
        runs = await saved_runs(url)
        assert len(runs) == 2
        assert runs[1].extraction.startswith("events only: the model gave no notes")


async def test_another_session_or_team_sees_nothing_of_alices(team: Path, tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        run_team(team, "Plan the bee garden", script("Lavender.", NOTES), url)
        _, requests, _ = run_team(
            team, "Plan the bee garden", script("Borage.", None), url, session="bob"
        )
        assert "Notes from earlier runs" not in requests[0]["messages"][-1]["content"]
        other = team.parent / "orchard.yaml"
        other.write_text(TEAM.replace("name: garden", "name: orchard"))
        _, requests, _ = run_team(other, "Plan the bee garden", script("Apples.", None), url)
        assert "Notes from earlier runs" not in requests[0]["messages"][-1]["content"]


def note(kind: NoteKind, text: str) -> Note:
    return Note(kind, text, Origin.MODEL)


async def test_earlier_notes_are_ranked_by_similarity_to_the_new_task(tmp_path: Path) -> None:
    embedder = LocalOnnxEmbedder()
    with redis_server(tmp_path) as url:
        store = SessionStore(url)
        memory = SessionMemory(store, embedder, "ops", "carol", recall_k=2, min_similarity=0.2)
        topics = [
            ("Fix the flaky CI", "The CI runners have only two CPU cores"),
            ("Tune the database", "PostgreSQL vacuum runs every night at 3 am"),
            ("Secure the cluster", "NetworkPolicies deny all pod egress by default"),
            ("Plan the offsite", "The team prefers a lake for the offsite"),
        ]
        for when, (task, fact) in enumerate(topics):
            run = SessionRun(
                session="carol",
                team="ops",
                task=task,
                answer="done",
                outcome="Succeeded",
                started_at=dt.datetime(2026, 11, 1 + when, tzinfo=dt.UTC),
                finished_at=dt.datetime(2026, 11, 1 + when, tzinfo=dt.UTC),
                notes=[note(NoteKind.FACT, fact)],
                embedder=embedder.model,
            )
            await store.append(run)
        block = await memory.context_for("Which pods may open connections to the internet?")
        assert memory.recalled[0].note.text == topics[2][1]
        assert len(memory.recalled) <= 2
        assert topics[3][1] not in block  # the offsite has nothing to do with pod egress
        assert memory.loaded_runs == 4
        await store.close()


async def test_sessions_survive_a_restart_of_redis(tmp_path: Path) -> None:
    folder, port = tmp_path / "redis", free_port()
    folder.mkdir()
    embedder = LocalOnnxEmbedder()
    events = [Event(EventKind.DELEGATED, "lead", {"to": "researcher", "task": "find plants"})]
    with redis_server(folder, port=port) as url:
        store = SessionStore(url)
        memory = SessionMemory(store, embedder, "garden", "alice")
        saved = await memory.save(
            task="Plan the bee garden",
            answer="Lavender.",
            outcome="Succeeded",
            message=None,
            events=events,
            started_at=dt.datetime.now(dt.UTC),
            model=None,
        )
    # the server is gone (terminated); the same store's client meets the new one on the same port
    with redis_server(folder, port=port):
        assert (folder / "appendonlydir").is_dir()
        [back] = await store.history("alice")
        assert back.wire() == saved.wire()
        await store.close()


def test_sessions_show_prints_the_history_and_how_to_continue(team: Path, tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        run_team(team, "Plan the bee garden", script("Lavender, south.", NOTES), url)
        shown = hive("sessions", "show", "alice", "--store", url)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert out.startswith("session alice of team garden: 1 run(s)")
    assert "  task: Plan the bee garden\n  answer: Lavender, south.\n" in out
    assert "    - Lavender attracts bumblebees all summer (model)\n" in out
    assert "    - lead gave researcher: Find plants bees like (events)\n" in out
    assert "  notes from: model and events\n" in out
    assert out.endswith(
        "How to continue:\n  1. answer: Which month is best to sow borage?\n"
        '  hive run TEAM_FILE "Which month is best to sow borage?" --session alice\n'
    )


def test_bad_input_is_one_line(team: Path, tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        unknown = hive("sessions", "show", "nobody", "--store", url)
        assert unknown.returncode == 1
        assert unknown.stderr == f"hive: error: SESSION: no session 'nobody' in {url}\n"
        bad_id = hive("sessions", "show", "no body", "--store", url)
        assert bad_id.returncode == 1
        assert bad_id.stderr.startswith("hive: error: SESSION: 'no body' is not a session id")
    store_alone = hive("run", str(team), "--session-store", "redis://127.0.0.1:1/0")
    assert store_alone.returncode == 1
    assert store_alone.stderr == "hive: error: --session-store: is used only with --session ID\n"
    port = free_port()  # nothing listens there
    gone = hive("sessions", "show", "alice", "--store", f"redis://127.0.0.1:{port}/0")
    assert gone.returncode == 1
    assert gone.stderr.startswith(f"hive: error: session store at redis://127.0.0.1:{port}/0:")
    assert len(gone.stderr.splitlines()) == 1


async def test_the_teams_own_session_is_kept_in_its_redis_memory_store(tmp_path: Path) -> None:
    with redis_server(tmp_path) as url:
        team = tmp_path / "garden.yaml"
        store = f"""
---
apiVersion: hive.dev/v1alpha1
kind: MemoryStore
metadata: {{name: notes}}
spec:
  backend: redis
  connection: {{endpoint: "{url}"}}
  collection: GardenNotes
"""
        team.write_text(
            TEAM.replace(
                "  pattern: hierarchical\n",
                "  pattern: hierarchical\n  memory: {storeRef: {name: notes}, session: dave}\n",
            )
            + store
        )
        with scripted_model(script("Lavender, south.", NOTES)) as model:
            result = hive("run", str(team), "Plan it", "--endpoint", model.url, "--no-live")
        assert result.returncode == 0, result.stdout + result.stderr
        assert "session dave saved: 2 fact(s)" in result.stdout
        kept = SessionStore(url, prefix="GardenNotes.sessions")
        try:
            [run] = await kept.runs("garden", "dave")
        finally:
            await kept.close()
        assert run.task == "Plan it"
        shown = hive("sessions", "show", "dave", "--store", url, "--collection", "GardenNotes")
        assert shown.returncode == 0, shown.stderr
        assert "Lavender attracts bumblebees all summer (model)" in shown.stdout
