"""Cross-session memory without servers: notes from events, ranking, bounds, next steps, flags."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec
from hive.api.memorystore import MemoryStoreSpec
from hive.cli.sessionscmd import choose_session, render_history, team_name
from hive.errors import InvalidInput
from hive.runtime.events import Event, EventKind
from hive.runtime.memory.sessions import (
    Note,
    NoteKind,
    Origin,
    Recalled,
    SessionRun,
    check_session_id,
    context_block,
    next_steps,
    notes_from_events,
    rank,
)
from hive.runtime.models import InvalidModelOutput
from hive.settings import Settings

WHEN = dt.datetime(2026, 11, 30, 1, 0, tzinfo=dt.UTC)


class WordEmbedder:
    """Bag of words hashed into 64 dimensions: texts sharing words are similar."""

    model = "words"
    dimensions = 64

    def __init__(self) -> None:
        self.embedded: list[str] = []

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded += texts
        vectors = []
        for text in texts:
            vector = [0.0] * self.dimensions
            for word in text.lower().replace("?", "").split():
                vector[hashlib.sha256(word.encode()).digest()[0] % self.dimensions] += 1.0
            vectors.append(vector)
        return vectors


def run_of(task: str, notes: list[Note], outcome: str = "Succeeded", **kw: Any) -> SessionRun:
    return SessionRun(
        session="alice",
        team="garden",
        task=task,
        answer=kw.pop("answer", "done"),
        outcome=outcome,
        started_at=WHEN,
        finished_at=WHEN,
        notes=notes,
        **kw,
    )


def test_decisions_and_open_questions_come_from_the_events() -> None:
    events = [
        Event(EventKind.DECOMPOSED, "lead", {"subtasks": ["find plants", "write plan"]}),
        Event(EventKind.DELEGATED, "lead", {"to": "researcher", "task": "find plants"}),
        Event(EventKind.APPROVED, "lead", {"of": "researcher", "reason": "complete"}),
        Event(EventKind.REJECTED, "lead", {"of": "writer", "reason": "too vague"}),
        Event(EventKind.TASK_FINISHED, "writer", {"ok": False, "error": "budget spent"}),
        Event(EventKind.MODEL_CALLED, "lead", {"tokens": 5}),
    ]
    notes = notes_from_events(events, "Failed", "budget.maxTokens: too many tokens")
    assert all(n.origin is Origin.EVENTS for n in notes)
    assert [n.text for n in notes if n.kind is NoteKind.DECISION] == [
        "lead split the work into: find plants; write plan",
        "lead gave researcher: find plants",
        "lead approved researcher's work: complete",
    ]
    assert [n.text for n in notes if n.kind is NoteKind.QUESTION] == [
        "lead rejected writer's work (too vague): what would make it acceptable?",
        "writer's task failed: budget spent",
        "the run ended Failed: budget.maxTokens: too many tokens",
    ]


def test_a_negotiation_records_its_agreement_or_its_deadlock() -> None:
    agreed = notes_from_events(
        [Event(EventKind.AGREED, "a", {"author": "b", "proposal": "use Go"})], "Succeeded", None
    )
    assert [n.text for n in agreed] == ["the team agreed on b's proposal: use Go"]
    stuck = notes_from_events(
        [Event(EventKind.DEADLOCKED, "a", {"message": "no majority"})], "Deadlocked", None
    )
    assert [(n.kind, n.text) for n in stuck] == [
        (NoteKind.QUESTION, "no agreement was reached: no majority")
    ]


def test_a_run_survives_its_wire_form() -> None:
    run = run_of("t", [Note(NoteKind.FACT, "bees like lavender", Origin.MODEL, [0.5, 0.5])])
    run.extraction, run.embedder = "model and events", "words"
    again = SessionRun.from_wire(run.wire())
    assert again == run


async def test_ranking_puts_the_most_similar_notes_first_and_drops_unrelated_ones() -> None:
    runs = [
        run_of(
            "garden",
            [
                Note(NoteKind.FACT, "bees like lavender flowers", Origin.MODEL),
                Note(NoteKind.FACT, "the cluster network uses kube-router", Origin.MODEL),
                Note(NoteKind.QUESTION, "which month to plant lavender flowers", Origin.MODEL),
            ],
        )
    ]
    best = await rank(
        runs, "plant lavender flowers for bees", WordEmbedder(), k=2, min_similarity=0.2
    )
    assert [r.note.text for r in best] == [
        "bees like lavender flowers",
        "which month to plant lavender flowers",
    ]
    assert best[0].score >= best[1].score
    nothing = await rank(runs, "quantum chromodynamics", WordEmbedder(), k=5, min_similarity=0.2)
    assert nothing == []


async def test_notes_of_the_same_model_are_not_embedded_again_others_are() -> None:
    embedder = WordEmbedder()
    kept = Note(NoteKind.FACT, "bees like lavender", Origin.MODEL, [1.0] * 64)
    stale = Note(NoteKind.FACT, "bees like borage", Origin.MODEL, [1.0] * 64)
    same = run_of("a", [kept], embedder="words")
    other = run_of("b", [stale], embedder="another-model")
    await rank([same, other], "bees", embedder, k=5, min_similarity=-1)
    assert embedder.embedded == ["bees", "bees like borage"]


def test_the_context_block_is_bounded_in_characters_whole_lines_only() -> None:
    recalled = [
        Recalled(Note(NoteKind.FACT, f"fact number {i} " + "x" * 80, Origin.MODEL), 0.9, WHEN)
        for i in range(20)
    ]
    block = context_block("alice", recalled, max_chars=600)
    assert len(block) <= 600
    lines = block.splitlines()
    assert lines[0].startswith("Notes from earlier runs of session alice")
    assert lines[1] == "- [fact, 2026-11-30] fact number 0 " + "x" * 80
    assert all(line.endswith("x" * 80) for line in lines[1:])
    assert context_block("alice", [], max_chars=600) == ""


def test_next_steps_retry_a_failed_run_then_answer_the_open_questions() -> None:
    older = run_of("a", [Note(NoteKind.QUESTION, "which month?", Origin.MODEL)])
    newer = run_of(
        "plan the garden",
        [
            Note(NoteKind.QUESTION, "how much sun?", Origin.EVENTS),
            Note(NoteKind.QUESTION, "which month?", Origin.MODEL),
        ],
        outcome="Failed",
    )
    assert next_steps([older, newer]) == [
        "run the task again (Failed): plan the garden",
        "answer: how much sun?",
        "answer: which month?",
    ]
    assert next_steps([]) == []


def test_the_history_shows_each_run_and_how_to_continue() -> None:
    run = run_of(
        "plan the garden",
        [
            Note(NoteKind.FACT, "bees like lavender", Origin.MODEL),
            Note(NoteKind.DECISION, "lead gave researcher: find plants", Origin.EVENTS),
            Note(NoteKind.QUESTION, "which month?", Origin.MODEL),
            Note(NoteKind.ANSWER, "plan the garden -> done", Origin.RUN),
        ],
        extraction="model and events",
    )
    text = render_history("alice", [run])
    assert "session alice of team garden: 1 run(s)" in text
    assert "    - bees like lavender (model)" in text
    assert "    - lead gave researcher: find plants (events)" in text
    assert "plan the garden -> done" not in text  # the answer note is for ranking only
    assert text.endswith(
        'How to continue:\n  1. answer: which month?\n  hive run TEAM_FILE "which month?" '
        "--session alice"
    )


TEAM_SPEC = {
    "goal": "g",
    "model": {"provider": "openai-compatible", "endpoint": "http://127.0.0.1:1/v1", "name": "m"},
    "agents": [{"name": "lead", "role": "senior"}],
}


def test_session_flags_are_checked(tmp_path: Path) -> None:
    team_file = tmp_path / "team.yaml"
    team_file.write_text("kind: AgentTeam\nmetadata: {name: garden}\nspec: {}\n")
    team = AgentTeamSpec.model_validate(TEAM_SPEC)
    settings = Settings()

    def choose(session: str | None, store: str | None) -> Any:
        return choose_session(team_file, team, session, store, {}, settings)

    assert choose(None, None) is None
    with pytest.raises(InvalidInput, match="--session-store: is used only with --session"):
        choose(None, "redis://127.0.0.1:1/0")
    with pytest.raises(InvalidInput, match="--session: 'a b' is not a session id"):
        choose("a b", None)
    with pytest.raises(InvalidInput, match="--session-store: 'http://x' is not a redis"):
        choose("alice", "http://x")
    chosen = choose("alice", None)
    assert (chosen.team, chosen.store_url) == ("garden", settings.agent.sessions.redis_url)
    bare = tmp_path / "bees.yaml"
    bare.write_text("goal: x\n")
    assert team_name(bare) == "bees"
    assert check_session_id("alice@example.com") == "alice@example.com"


def test_the_teams_session_and_its_redis_store_are_used_unless_flags_say_otherwise(
    tmp_path: Path,
) -> None:
    team_file = tmp_path / "team.yaml"
    team_file.write_text("goal: x\n")
    team = AgentTeamSpec.model_validate(
        {**TEAM_SPEC, "memory": {"session": "bob", "storeRef": {"name": "notes"}}}
    )
    redis = MemoryStoreSpec.model_validate(
        {"backend": "redis", "connection": {"endpoint": "redis://r:6379/1"}, "collection": "N"}
    )
    weaviate = MemoryStoreSpec.model_validate(
        {"backend": "weaviate", "connection": {"endpoint": "http://w:8080"}, "collection": "N"}
    )
    settings = Settings()
    chosen = choose_session(team_file, team, None, None, {"notes": redis}, settings)
    assert chosen is not None
    assert (chosen.session, chosen.store_url, chosen.prefix, chosen.store) == (
        "bob",
        "redis://r:6379/1",
        "N.sessions",
        "notes",
    )
    flagged = choose_session(team_file, team, "carol", "redis://x:1/0", {"notes": redis}, settings)
    assert flagged is not None
    assert (flagged.session, flagged.store_url, flagged.prefix) == (
        "carol",
        "redis://x:1/0",
        "hive:sessions",
    )
    beside = choose_session(team_file, team, "carol", None, {"notes": weaviate}, settings)
    assert beside is not None
    assert beside.store_url == settings.agent.sessions.redis_url
    with pytest.raises(InvalidInput, match=r"session: sessions are kept in Redis, and Memory"):
        choose_session(team_file, team, None, None, {"notes": weaviate}, settings)
    with pytest.raises(ValidationError, match="session: needs storeRef, the redis MemoryStore"):
        AgentTeamSpec.model_validate({**TEAM_SPEC, "memory": {"session": "bob"}})


async def test_a_model_without_notes_leaves_the_events_notes() -> None:
    from hive.runtime.memory.sessions import SessionMemory

    class Refusing:
        async def structured(self, messages: Any, schema: Any, *, repairs: int = 2) -> Any:
            raise InvalidModelOutput("no valid JSON after 2 repairs")

    class Store:
        saved: list[SessionRun] = []

        async def append(self, run: SessionRun) -> None:
            self.saved.append(run)

    store = Store()
    memory = SessionMemory(store, WordEmbedder(), "garden", "alice")  # type: ignore[arg-type]
    run = await memory.save(
        task="t",
        answer="a",
        outcome="Succeeded",
        message=None,
        events=[Event(EventKind.DELEGATED, "lead", {"to": "w", "task": "x"})],
        started_at=WHEN,
        model=Refusing(),
    )
    assert run.extraction.startswith("events only: the model gave no notes")
    assert [(n.kind, n.origin) for n in run.notes] == [
        (NoteKind.DECISION, Origin.EVENTS),
        (NoteKind.ANSWER, Origin.RUN),
    ]
    assert all(n.vector is not None for n in run.notes)
    assert store.saved == [run]


def test_sessions_in_a_memory_store_need_redis_and_sit_beside_its_memories() -> None:
    from hive.cli import sessionscmd
    from hive.runtime.memory import sessions

    weaviate = MemoryStoreSpec.model_validate(
        {"backend": "weaviate", "connection": {"endpoint": "http://w:8080"}, "collection": "M"}
    )
    with pytest.raises(InvalidInput, match=r"spec\.memory\.session: sessions are kept in Redis"):
        sessions.store_for("m", weaviate, password=None, username=None)
    redis = MemoryStoreSpec.model_validate(
        {"backend": "redis", "connection": {"endpoint": "redis://r:6379/0"}, "collection": "M"}
    )
    store = sessions.store_for("m", redis, password="pw", username=None)
    assert store.key("default/t", "alice") == "M.sessions:runs:default/t:alice"
    assert sessionscmd.DEFAULT_PREFIX == sessions.DEFAULT_PREFIX


async def test_a_note_several_runs_recorded_counts_once_as_of_the_newest() -> None:
    older = run_of("a", [Note(NoteKind.FACT, "bees like lavender", Origin.MODEL)])
    newer = run_of("b", [Note(NoteKind.FACT, "Bees like lavender", Origin.MODEL)])
    newer.finished_at = WHEN + dt.timedelta(days=3)
    [recalled] = await rank([older, newer], "bees lavender", WordEmbedder(), k=5, min_similarity=0)
    assert recalled.when == newer.finished_at


async def test_the_models_notes_lose_list_markers_and_empty_items() -> None:
    from hive.runtime.memory.sessions import SessionNotes, notes_from_model

    class Listing:
        async def structured(self, messages: Any, schema: Any, *, repairs: int = 2) -> Any:
            assert "Task: plan" in messages[-1]["content"]
            return SessionNotes(
                facts=["1. Bees like lavender", "2.", "- n/a", "  "],
                decisions=["• Plant it in May"],
                open_questions=["3) Which variety?"],
            )

    notes = await notes_from_model(Listing(), "plan", "answer", "Succeeded", [])
    assert [(n.kind, n.text) for n in notes] == [
        (NoteKind.FACT, "Bees like lavender"),
        (NoteKind.DECISION, "Plant it in May"),
        (NoteKind.QUESTION, "Which variety?"),
    ]
