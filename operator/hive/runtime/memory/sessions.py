"""Cross-session memory: what a team's runs under one session id learned, kept in Redis and
handed to the next run of that session.

A session is a team plus a caller's id (``--session alice``). At the end of each run one
:class:`SessionRun` is appended to the session: its task, answer, outcome and notes. Notes come
from two places, and each says which (``origin``):

- ``events``: read deterministically from the run's event history — decisions (plans,
  delegations, approvals and rejections, agreements) and open questions (rejected or failed
  work, a deadlock, a failed run with its reason);
- ``model``: one structured call to the team's model (:class:`SessionNotes`) for the key facts,
  decisions and open questions the answer holds. Without a model, or when it gives no valid
  answer, the run is saved with the events' notes alone and says why (``extraction``).

Each note is stored with its embedding, so a later run ranks the notes of every earlier run of
the session by cosine similarity to its own task and gets the best few (bounded in count and
characters) in its context (:func:`context_block`). Notes embedded with another model than the
one in use are embedded again on load.

Redis layout, under a prefix (``hive:sessions`` for ``hive run --session-store``;
``<collection>.sessions`` in a MemoryStore, beside — never under — the ``<collection>:`` keys of
its memories, since a collection name has no dot)::

    <prefix>:runs:<team>:<session>   LIST of runs as JSON, oldest first (RPUSH), the newest kept
    <prefix>:teams:<session>         SET of the teams that have this session id

Redis must persist them (``--appendonly yes``): a session is meant to outlive restarts.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any, Protocol, TypeVar

import numpy as np
import redis.asyncio as aioredis
from pydantic import BaseModel, Field
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError

from hive.api.memorystore import Backend, MemoryStoreSpec
from hive.errors import HiveError, InvalidInput, Unavailable
from hive.runtime.events import Event, EventKind
from hive.runtime.memory.embeddings import Embedder
from hive.runtime.models import Message

SESSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$")
MAX_NOTES_PER_KIND = 8  # per origin and kind, for one run
MAX_NOTE_CHARS = 400
DEFAULT_PREFIX = "hive:sessions"
LIST_MARKER = re.compile(r"^\s*(?:\d+[.)]|[-*•])\s*")  # "1. ", "- " that small models put first
WORD = re.compile(r"[^\W\d_]{2,}")
M = TypeVar("M", bound=BaseModel)


class NoteKind(StrEnum):
    FACT = "fact"
    DECISION = "decision"
    QUESTION = "open question"
    ANSWER = "earlier answer"


class Origin(StrEnum):
    MODEL = "model"  # the team's model read the run's answer (structured call)
    EVENTS = "events"  # read from the run's events, no model involved
    RUN = "run"  # the run's own task and answer


@dataclass
class Note:
    kind: NoteKind
    text: str
    origin: Origin
    vector: list[float] | None = None

    def wire(self) -> dict[str, Any]:
        return {"kind": str(self.kind), "text": self.text, "origin": str(self.origin)}


@dataclass
class SessionRun:
    """One run of a session, as saved at its end."""

    session: str
    team: str
    task: str
    answer: str
    outcome: str
    started_at: dt.datetime
    finished_at: dt.datetime
    message: str | None = None
    notes: list[Note] = field(default_factory=list)
    extraction: str = ""  # how the notes were made: "model and events", or why events only
    embedder: str = ""  # the model the notes' vectors come from

    def of(self, kind: NoteKind) -> list[Note]:
        return [n for n in self.notes if n.kind is kind]

    def wire(self) -> dict[str, Any]:
        data = asdict(self)
        data["started_at"] = self.started_at.isoformat()
        data["finished_at"] = self.finished_at.isoformat()
        data["notes"] = [{**n.wire(), "vector": pack(n.vector)} for n in self.notes]
        return data

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> SessionRun:
        return cls(
            session=str(data["session"]),
            team=str(data["team"]),
            task=str(data.get("task") or ""),
            answer=str(data.get("answer") or ""),
            outcome=str(data.get("outcome") or ""),
            started_at=dt.datetime.fromisoformat(data["started_at"]),
            finished_at=dt.datetime.fromisoformat(data["finished_at"]),
            message=data.get("message"),
            notes=[
                Note(
                    NoteKind(n["kind"]),
                    str(n["text"]),
                    Origin(n["origin"]),
                    unpack(n.get("vector")),
                )
                for n in data.get("notes") or []
            ],
            extraction=str(data.get("extraction") or ""),
            embedder=str(data.get("embedder") or ""),
        )

    def answer_note(self) -> Note:
        """The run's task and answer as one note (saved with the others), so a similar task
        finds the earlier answer."""
        return Note(NoteKind.ANSWER, clip(f"{self.task} -> {self.answer}"), Origin.RUN)


def store_prefix(collection: str) -> str:
    """The key prefix of the sessions kept in a MemoryStore with this collection."""
    return f"{collection}.sessions"


def pack(vector: list[float] | None) -> str | None:
    """A vector as base64 of little-endian float32 (a fifth of its JSON, read ~10x faster)."""
    if vector is None:
        return None
    return base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()


def unpack(packed: str | list[float] | None) -> list[float] | None:
    if packed is None or isinstance(packed, list):
        return packed
    values: list[float] = np.frombuffer(base64.b64decode(packed), dtype="<f4").tolist()
    return values


def check_session_id(session: str, where: str = "--session") -> str:
    if not SESSION_ID.match(session):
        raise InvalidInput(
            where,
            f"{session!r} is not a session id (letters, digits, '.', '_', '@', '-'; at most "
            "128; starting with a letter or digit)",
        )
    return session


def clip(text: str, limit: int = MAX_NOTE_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def unique(notes: Iterable[Note]) -> list[Note]:
    seen: set[tuple[NoteKind, str]] = set()
    kept = []
    for note in notes:
        key = (note.kind, note.text.casefold())
        if note.text and key not in seen:
            seen.add(key)
            kept.append(note)
    return kept


# --- notes from the run's events (deterministic) ---------------------------------------------


def notes_from_events(events: Iterable[Event], outcome: str, message: str | None) -> list[Note]:
    """Decisions and open questions the run's events record; no model involved."""
    decisions: list[str] = []
    questions: list[str] = []
    for event in events:
        data = event.data
        if event.kind is EventKind.DECOMPOSED and not data.get("fallback"):
            steps = "; ".join(str(s) for s in data.get("subtasks") or [])
            decisions.append(f"{event.agent} split the work into: {steps}")
        elif event.kind is EventKind.DELEGATED:
            decisions.append(f"{event.agent} gave {data.get('to')}: {data.get('task')}")
        elif event.kind is EventKind.APPROVED:
            decisions.append(
                f"{event.agent} approved {data.get('of')}'s work: {data.get('reason')}"
            )
        elif event.kind is EventKind.REJECTED:
            questions.append(
                f"{event.agent} rejected {data.get('of')}'s work ({data.get('reason')}): "
                "what would make it acceptable?"
            )
        elif event.kind is EventKind.AGREED:
            decisions.append(
                f"the team agreed on {data.get('author')}'s proposal: "
                f"{data.get('proposal') or ''}".rstrip(": ")
            )
        elif event.kind is EventKind.DEADLOCKED:
            questions.append(f"no agreement was reached: {data.get('message')}")
        elif event.kind is EventKind.TASK_FINISHED and data.get("ok") is False:
            questions.append(f"{event.agent}'s task failed: {data.get('error') or 'no reason'}")
    if outcome.lower() not in ("succeeded", "running") and message:
        questions.append(f"the run ended {outcome}: {message}")
    notes = [Note(NoteKind.DECISION, clip(d), Origin.EVENTS) for d in decisions]
    notes += [Note(NoteKind.QUESTION, clip(q), Origin.EVENTS) for q in questions]
    return unique(notes)


# --- notes from the team's model (one structured call) ----------------------------------------


class SessionNotes(BaseModel):
    """What the team's model reads out of a finished run."""

    facts: list[str] = Field(default_factory=list, description="Key facts learned.")
    decisions: list[str] = Field(default_factory=list, description="Decisions taken.")
    open_questions: list[str] = Field(default_factory=list, description="What is still open.")


class StructuredModel(Protocol):
    async def structured(
        self, messages: Sequence[Message], schema: type[M], *, repairs: int = 2
    ) -> M: ...


def notes_prompt(task: str, answer: str, outcome: str, known: Sequence[Note]) -> list[Message]:
    recorded = "\n".join(f"- {n.kind}: {n.text}" for n in known) or "- nothing"
    return [
        {
            "role": "system",
            "content": "You keep the notes of a team's work sessions, so that a later run "
            "can continue where this one stopped. Be short, concrete and faithful to the text.",
        },
        {
            "role": "user",
            "content": f"Task: {task}\nOutcome: {outcome}\nAnswer:\n{clip(answer, 4000)}\n"
            f"Recorded during the run:\n{recorded}\n\nList the key facts learned, the "
            "decisions taken and the open questions left (at most 5 each, one sentence each). "
            'Answer with a JSON object: {"facts": ["..."], "decisions": ["..."], '
            '"open_questions": ["..."]}',
        },
    ]


async def notes_from_model(
    model: StructuredModel, task: str, answer: str, outcome: str, known: Sequence[Note]
) -> list[Note]:
    """Facts, decisions and open questions as the team's model reads the run."""
    found = await model.structured(notes_prompt(task, answer, outcome, known), SessionNotes)
    pick = (
        (NoteKind.FACT, found.facts),
        (NoteKind.DECISION, found.decisions),
        (NoteKind.QUESTION, found.open_questions),
    )
    notes = []
    for kind, texts in pick:
        for text in texts[:MAX_NOTES_PER_KIND]:
            text = LIST_MARKER.sub("", text).strip()
            if len(WORD.findall(text)) >= 2:  # "4." or "n/a" is no note
                notes.append(Note(kind, clip(text), Origin.MODEL))
    return notes


# --- the store ---------------------------------------------------------------------------------


def store_for(
    name: str,
    spec: MemoryStoreSpec,
    *,
    password: str | None,
    username: str | None,
    timeout_s: float = 5.0,
    keep_runs: int = 50,
    where: str = "spec.memory.session",
) -> SessionStore:
    """The session store inside MemoryStore `name`: its Redis, keys beside its memories."""
    if spec.backend != Backend.REDIS:
        raise InvalidInput(
            where, f"sessions are kept in Redis, and MemoryStore {name} is {spec.backend}"
        )
    return SessionStore(
        spec.connection.url(),
        prefix=store_prefix(spec.collection),
        password=password,
        username=username,
        timeout_s=timeout_s,
        keep_runs=keep_runs,
    )


class UnknownSession(InvalidInput):
    """No run was ever saved under this session id (for this team)."""


class SessionStore:
    """Sessions in Redis (see the module's docstring for the keys)."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        password: str | None = None,
        username: str | None = None,
        timeout_s: float = 5.0,
        keep_runs: int = 50,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.keep_runs = keep_runs
        # A connection the server closed (a restart) is opened again: three tries in ~0.4 s.
        self.client: Any = aioredis.Redis.from_url(
            url,
            password=password,
            username=username,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=3),
            retry_on_error=[RedisConnectionError],
        )

    def key(self, team: str, session: str) -> str:
        return f"{self.prefix}:runs:{team}:{session}"

    def teams_key(self, session: str) -> str:
        return f"{self.prefix}:teams:{session}"

    def _unavailable(self, exc: RedisError) -> Unavailable:
        return Unavailable(f"session store at {self.url}: {exc}")

    async def append(self, run: SessionRun) -> None:
        """Add `run` to its session; only the newest `keep_runs` runs are kept."""
        key = self.key(run.team, run.session)
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.rpush(key, json.dumps(run.wire()))
                pipe.ltrim(key, -self.keep_runs, -1)
                pipe.sadd(self.teams_key(run.session), run.team)
                await pipe.execute()
        except RedisError as exc:
            raise self._unavailable(exc) from exc

    async def runs(self, team: str, session: str) -> list[SessionRun]:
        """The session's runs, oldest first; none for a new session."""
        try:
            raw = await self.client.lrange(self.key(team, session), 0, -1)
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return [SessionRun.from_wire(json.loads(item)) for item in raw]

    async def teams(self, session: str) -> list[str]:
        """The teams that ran under this session id."""
        try:
            members = await self.client.smembers(self.teams_key(session))
        except RedisError as exc:
            raise self._unavailable(exc) from exc
        return sorted(m.decode() for m in members)

    async def history(self, session: str, team: str | None = None) -> list[SessionRun]:
        """Every run of the session (of `team`, or of the only team that has it); an unknown
        session id is an error."""
        check_session_id(session, "SESSION")
        teams = [team] if team else await self.teams(session)
        if len(teams) > 1:
            raise InvalidInput(
                "--team", f"session {session} has runs of {', '.join(teams)}: say which"
            )
        runs = await self.runs(teams[0], session) if teams else []
        if not runs:
            of = f" of team {team}" if team else ""
            raise UnknownSession("SESSION", f"no session {session!r}{of} in {self.url}")
        return runs

    async def close(self) -> None:
        await self.client.aclose()


# --- transfer: the earlier runs' notes that matter for a new task -----------------------------


@dataclass
class Recalled:
    note: Note
    score: float
    when: dt.datetime


async def embed_notes(embedder: Embedder, notes: Sequence[Note]) -> None:
    """Give every note without a vector of `embedder`'s size one (in place)."""
    missing = [n for n in notes if n.vector is None or len(n.vector) != embedder.dimensions]
    if missing:
        for note, vector in zip(
            missing, await embedder.embed([n.text for n in missing]), strict=True
        ):
            note.vector = vector


async def rank(
    runs: Sequence[SessionRun],
    task: str,
    embedder: Embedder,
    *,
    k: int,
    min_similarity: float,
) -> list[Recalled]:
    """The `k` notes of `runs` (and their task/answer pairs) most similar to `task`, best
    first, none below `min_similarity`; notes embedded by another model are embedded again.
    A note that several runs recorded counts once, as of the newest; ties go to newer runs."""
    candidates: list[tuple[Note, dt.datetime]] = []
    for run in reversed(runs):
        for note in run.notes:
            if run.embedder != embedder.model:
                note.vector = None
            candidates.append((note, run.finished_at))
    notes = unique(n for n, _ in candidates)
    if not notes:
        return []
    query_note = Note(NoteKind.FACT, task, Origin.RUN)
    await embed_notes(embedder, [query_note, *notes])
    query = np.asarray(query_note.vector, dtype=np.float32)
    matrix = np.asarray([n.vector for n in notes], dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
    scores = matrix @ query / np.where(norms == 0, 1.0, norms)
    when = {id(n): at for n, at in candidates}
    order = np.argsort(-scores, kind="stable")
    return [
        Recalled(notes[i], float(scores[i]), when[id(notes[i])])
        for i in order[:k]
        if scores[i] >= min_similarity
    ]


def context_block(session: str, recalled: Sequence[Recalled], max_chars: int) -> str:
    """What the new run is told of earlier runs: one line per note, best first, at most
    `max_chars` characters in all (whole lines only)."""
    if not recalled:
        return ""
    head = (
        f"Notes from earlier runs of session {session} (most relevant first; use what helps, "
        "and say if something here is out of date):"
    )
    lines = [head]
    size = len(head)
    for item in recalled:
        line = f"- [{item.note.kind}, {item.when:%Y-%m-%d}] {item.note.text}"
        if size + 1 + len(line) > max_chars:
            break
        lines.append(line)
        size += 1 + len(line)
    return "\n".join(lines) if len(lines) > 1 else ""


def with_context(task: str, block: str) -> str:
    return f"{task}\n\n{block}" if block else task


def next_steps(runs: Sequence[SessionRun], limit: int = 5) -> list[str]:
    """How to continue: the newest run's open questions (then older ones not settled since),
    or a retry of a run that did not succeed."""
    if not runs:
        return []
    latest = runs[-1]
    steps = []
    if latest.outcome.lower() != "succeeded":
        steps.append(f"run the task again ({latest.outcome}): {latest.task}")
    seen = set()
    for run in reversed(runs):
        for note in run.of(NoteKind.QUESTION):
            if note.text.casefold() not in seen:
                seen.add(note.text.casefold())
                steps.append(f"answer: {note.text}")
    return steps[:limit]


# --- a run's session: load before, save after ---------------------------------------------------


@dataclass
class SessionMemory:
    """One session of one team, for a run: its context before, its record after."""

    store: SessionStore
    embedder: Embedder
    team: str
    session: str
    recall_k: int = 6
    min_similarity: float = 0.2
    max_chars: int = 2000
    loaded_runs: int = 0
    recalled: list[Recalled] = field(default_factory=list)
    load_s: float = 0.0
    save_s: float = 0.0

    async def context_for(self, task: str) -> str:
        """The block of earlier notes relevant to `task` ("" for a new session)."""
        started = time.perf_counter()
        runs = await self.store.runs(self.team, self.session)
        self.loaded_runs = len(runs)
        self.recalled = await rank(
            runs, task, self.embedder, k=self.recall_k, min_similarity=self.min_similarity
        )
        self.load_s = time.perf_counter() - started
        return context_block(self.session, self.recalled, self.max_chars)

    async def save(
        self,
        *,
        task: str,
        answer: str,
        outcome: str,
        message: str | None,
        events: Iterable[Event],
        started_at: dt.datetime,
        model: StructuredModel | None,
    ) -> SessionRun:
        """Record the finished run: notes from its events, and from `model` when given."""
        started = time.perf_counter()
        notes = notes_from_events(events, outcome, message)
        extraction = "events only: no model"
        if model is not None:
            try:
                notes = unique(
                    [*await notes_from_model(model, task, answer, outcome, notes), *notes]
                )
                extraction = "model and events"
            except HiveError as exc:  # the run is saved all the same, with what the events say
                extraction = f"events only: the model gave no notes ({exc})"
        run = SessionRun(
            session=self.session,
            team=self.team,
            task=task,
            answer=answer,
            outcome=outcome,
            message=message,
            started_at=started_at,
            finished_at=dt.datetime.now(dt.UTC),
            notes=notes,
            extraction=extraction[:300],
            embedder=self.embedder.model,
        )
        run.notes.append(run.answer_note())
        await embed_notes(self.embedder, [*run.notes])
        await self.store.append(run)
        self.save_s = time.perf_counter() - started
        return run
