"""Cross-session memory on the command line: `hive run --session ID` (a run that starts from what
earlier runs of the session learned, and is saved to it) and `hive sessions show ID` (the
session's history and how to continue)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import SecretStr

from hive.api.agentteam import AgentTeamSpec, memory_store_ref
from hive.api.memorystore import Backend, MemoryStoreSpec
from hive.cli.errors import one_line_errors
from hive.errors import InvalidInput
from hive.settings import SessionsSettings, Settings, get_settings

DEFAULT_PREFIX = "hive:sessions"  # hive.runtime.memory.sessions.DEFAULT_PREFIX, without numpy

if TYPE_CHECKING:  # numpy, redis and the embedder load only when a session is used
    from hive.runtime.memory.sessions import SessionMemory, SessionRun, SessionStore


@dataclass(frozen=True)
class SessionChoice:
    """Which session a `hive run` belongs to and where it is kept."""

    session: str
    team: str
    store_url: str
    prefix: str = DEFAULT_PREFIX
    store: str | None = None  # the team file's MemoryStore that keeps it, if one does
    password: SecretStr | None = None
    username: str | None = None


def choose_session(
    team_file: Path,
    team: AgentTeamSpec,
    session: str | None,
    store_url: str | None,
    stores: Mapping[str, MemoryStoreSpec],
    settings: Settings,
) -> SessionChoice | None:
    """The run's session: `--session`, else the team's spec.memory.session (None: neither).
    It is kept at `--session-store`, else in the coordinator's MemoryStore when the team file
    has it and it is a redis one (as in a cluster; the team's own session needs that), else at
    the sessions setting's Redis."""
    from hive.api.agentteam import coordinator_of
    from hive.runtime.memory.sessions import check_session_id, store_prefix

    chosen = session or team.memory.session
    if chosen is None:
        if store_url is not None:
            raise InvalidInput("--session-store", "is used only with --session ID")
        return None
    check_session_id(chosen, "--session" if session else "spec.memory.session")
    name = team_name(team_file)
    options = settings.agent.sessions
    if store_url is None:
        coordinator = next(a for a in team.agents if a.name == coordinator_of(team))
        ref = memory_store_ref(team, coordinator)
        spec = stores.get(ref.name) if ref is not None else None
        if ref is not None and spec is not None and spec.backend != Backend.REDIS and not session:
            raise InvalidInput(
                "spec.memory.session",
                f"sessions are kept in Redis, and MemoryStore {ref.name} is {spec.backend}",
            )
        if ref is not None and spec is not None and spec.backend == Backend.REDIS:
            memory = settings.agent.memory
            return SessionChoice(
                chosen,
                name,
                spec.connection.url(),
                store_prefix(spec.collection),
                ref.name,
                memory.secret,
                memory.username,
            )
    url = store_url or options.redis_url
    if not url.startswith(("redis://", "rediss://")):
        raise InvalidInput("--session-store", f"{url!r} is not a redis:// or rediss:// URL")
    return SessionChoice(chosen, name, url, password=options.password)


def team_name(team_file: Path) -> str:
    """The team's name: its AgentTeam's metadata.name, or the file's name without suffix."""
    from hive.cli.teamfile import documents

    for doc in documents(team_file):
        if isinstance(doc, dict) and doc.get("kind") in (None, "AgentTeam"):
            name = (doc.get("metadata") or {}).get("name")
            if name:
                return str(name)
    return team_file.stem


def store_of(
    url: str,
    settings: SessionsSettings,
    prefix: str = DEFAULT_PREFIX,
    password: SecretStr | None = None,
    username: str | None = None,
) -> SessionStore:
    from hive.runtime.memory.sessions import SessionStore

    secret = password or settings.password
    return SessionStore(
        url,
        prefix=prefix,
        password=secret.get_secret_value() if secret else None,
        username=username,
        keep_runs=settings.keep_runs,
    )


@contextlib.asynccontextmanager
async def session_memory(choice: SessionChoice, settings: Settings) -> AsyncIterator[SessionMemory]:
    """The session of a local run, its store open and its embedder ready, closed afterwards."""
    from hive.runtime.memory.embeddings import embedder_from_settings
    from hive.runtime.memory.sessions import SessionMemory

    options = settings.agent.sessions
    store = store_of(choice.store_url, options, choice.prefix, choice.password, choice.username)
    embedder = embedder_from_settings(settings.agent.embeddings)
    try:
        yield SessionMemory(
            store,
            embedder,
            choice.team,
            choice.session,
            recall_k=options.recall_k,
            min_similarity=options.min_similarity,
            max_chars=options.max_chars,
        )
    finally:
        await store.close()
        closing = getattr(embedder, "aclose", None)
        if closing is not None:
            await closing()


def render_history(session: str, runs: Sequence[SessionRun]) -> str:
    """The session's runs, oldest first, then how to continue."""
    from hive.runtime.memory.sessions import NoteKind, clip, next_steps

    first, last = runs[0], runs[-1]
    lines = [
        f"session {session} of team {last.team}: {len(runs)} run(s), "
        f"{first.started_at:%Y-%m-%d %H:%M} to {last.finished_at:%Y-%m-%d %H:%M} UTC"
    ]
    for number, run in enumerate(runs, 1):
        lines += [
            "",
            f"run {number} · {run.finished_at:%Y-%m-%d %H:%M:%S} UTC · {run.outcome}",
            f"  task: {clip(run.task, 300)}",
            f"  answer: {clip(run.answer, 300) or '(none)'}",
        ]
        if run.message:
            lines.append(f"  message: {clip(run.message, 300)}")
        for kind, title in (
            (NoteKind.FACT, "facts"),
            (NoteKind.DECISION, "decisions"),
            (NoteKind.QUESTION, "open questions"),
        ):
            notes = run.of(kind)
            if notes:
                lines.append(f"  {title}:")
                lines += [f"    - {n.text} ({n.origin})" for n in notes]
        lines.append(f"  notes from: {run.extraction}")
    steps = next_steps(runs)
    lines += ["", "How to continue:"]
    if steps:
        lines += [f"  {i}. {step}" for i, step in enumerate(steps, 1)]
        task = steps[0].split(": ", 1)[-1]
    else:
        lines.append("  nothing left open; give the session its next task")
        task = "NEXT TASK"
    lines.append(f'  hive run TEAM_FILE "{clip(task, 120)}" --session {session}')
    return "\n".join(lines)


def show_command(
    session: str,
    team: str | None,
    store_url: str,
    settings: SessionsSettings,
    prefix: str = DEFAULT_PREFIX,
) -> str:
    """`hive sessions show`: the history of `session`, or a one-line error."""

    async def read() -> list[SessionRun]:
        store = store_of(store_url, settings, prefix)
        try:
            return await store.history(session, team)
        finally:
            await store.close()

    return render_history(session, asyncio.run(read()))


@click.group()
def sessions() -> None:
    """Sessions of cross-session memory: what earlier runs of `hive run --session ID` learned."""


@sessions.command()
@click.argument("session")
@click.option("--team", help="The team (needed only when several teams used SESSION).")
@click.option(
    "--store",
    "store_url",
    help="Redis of the sessions (default: HIVE_AGENT__SESSIONS__REDIS_URL, the local one).",
)
@click.option(
    "--collection",
    help="The sessions of a team in a cluster: the collection of the redis MemoryStore its "
    "spec.memory.storeRef names (with --store at its endpoint, --team NAMESPACE/NAME).",
)
@one_line_errors
def show(session: str, team: str | None, store_url: str | None, collection: str | None) -> None:
    """The runs of SESSION (task, answer, facts, decisions, open questions) and the next steps."""
    from hive.runtime.memory.sessions import store_prefix

    options = get_settings().agent.sessions
    prefix = store_prefix(collection) if collection else DEFAULT_PREFIX
    click.echo(show_command(session, team, store_url or options.redis_url, options, prefix))
