"""`hive run team.yaml "task"`: run a team in this process, watch it work, read its report."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import click
from pydantic import SecretStr
from rich.console import Console

from hive.api.agentteam import AgentTeamSpec, Provider, RunOutcome
from hive.api.memorystore import MemoryStoreSpec
from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.cli.chaosrun import LocalChaos, fault_folder
from hive.cli.sessionscmd import SessionChoice, session_memory
from hive.errors import HiveError, InvalidInput
from hive.runtime.cache.middleware import CallCache
from hive.runtime.cache.wiring import call_cache
from hive.runtime.events import EventBus, EventKind
from hive.runtime.gateway.middleware import route_usage, routed_calls
from hive.runtime.memory.sessions import NoteKind, SessionMemory, with_context
from hive.runtime.models import OpenAICompatible
from hive.runtime.prefetch.wiring import prefetcher
from hive.runtime.privacy.traces import logged_events, scrub_exports
from hive.runtime.privacy.wiring import install_log_filter, local_audit, make_guard, with_privacy
from hive.runtime.resilience.calls import Chain
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.faults import FaultInjector, now_utc
from hive.runtime.resilience.learning import MemoryLearningStore
from hive.runtime.resilience.wiring import Resilience, fallback_models
from hive.runtime.teams.approvals import approve_all
from hive.runtime.teams.members import LocalMember
from hive.runtime.teams.roster import Approval, ApprovalRequest, Approver
from hive.runtime.teams.team import Team, TeamResult
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import Catalog, publish_to
from hive.runtime.tooling.discovery import FolderWatch, command_line_servers
from hive.runtime.tools import ToolRegistry
from hive.runtime.tracing.calls import TracedCalls
from hive.runtime.tracing.events import EventSpans
from hive.runtime.tracing.runs import run_span, trace_id_of
from hive.runtime.tracing.setup import tracing_from
from hive.settings import get_settings

if TYPE_CHECKING:
    from hive.cli.debugcmd import DebugChoice
    from hive.runtime.memory.embeddings import Embedder
    from hive.runtime.memory.team import TeamMemory

EXIT_CODES = {RunOutcome.SUCCEEDED: 0, RunOutcome.FAILED: 1, RunOutcome.DEADLOCKED: 3}


@contextlib.asynccontextmanager
async def model_for(
    spec: AgentTeamSpec,
    endpoint: str | None,
    name: str | None,
    console: Console,
    model_file: Path | None = None,
    model_key: SecretStr | None = None,
) -> AsyncIterator[OpenAICompatible]:
    """The team's model: the endpoint given, the spec's, or an embedded server started here;
    `model_key` is the key read from Vault (hive.cli.runvault) for a model with a vaultRef."""
    model_name = name or spec.model.name
    key = model_key or get_settings().model_api_key
    api_key = key.get_secret_value() if key else None
    if endpoint:
        yield OpenAICompatible(endpoint, model_name, api_key=api_key)
        return
    if spec.model.provider == Provider.EMBEDDED:
        from hive.runtime.embedded import EmbeddedModelServer, embedded_model_client

        console.print("[dim]starting the embedded model server…[/]")
        async with EmbeddedModelServer(model_file) as server:
            yield embedded_model_client(server, timeout_s=300)
        return
    if spec.model.provider == Provider.SCRIPTED:
        raise InvalidInput("model.provider", "scripted replays serve tests; give --endpoint")
    routes = spec.model.gateway.routes if spec.model.gateway else []
    if not spec.model.endpoint and not routes:
        raise InvalidInput("model.endpoint", "is required for openai-compatible; or --endpoint")
    if spec.model.secret_ref and not api_key:
        raise InvalidInput(
            "model.secretRef",
            f"set HIVE_MODEL_API_KEY to the API key (the Secret {spec.model.secret_ref.name} "
            "is only read in a cluster)",
        )
    # with spec.model.gateway the routes carry the calls (see local_chain)
    yield OpenAICompatible(spec.model.endpoint or routes[0].endpoint, model_name, api_key=api_key)


def ask_at_terminal(console: Console) -> Approver:
    lock = asyncio.Lock()

    async def decide(request: ApprovalRequest) -> Approval:
        async with lock:
            console.print(
                f"\n[bold]{request.senior}[/] asks: approve the result of "
                f"[bold]{request.subordinate}[/] for “{request.task}”?\n{request.output}\n"
            )
            approved = await asyncio.to_thread(click.confirm, "approve", default=True)
            return Approval(approved, "approved at the terminal" if approved else "refused")

    return decide


def local_cache(spec: AgentTeamSpec) -> CallCache | None:
    """The run's call cache where the team has spec.cache (its agents share it; L3 in
    HIVE_AGENT__ERRORS_REDIS_URL where set)."""
    if spec.cache is None:
        return None
    settings = get_settings()
    embedder = None
    if spec.cache.semantic is not None:
        from hive.runtime.memory.embeddings import embedder_from_settings

        embedder = embedder_from_settings(settings.agent.embeddings)
    return call_cache(
        spec.cache,
        namespace="local",
        team="run",
        agent=LOCAL_AGENT,
        folder=settings.agent.cache_dir,
        redis_url=settings.agent.errors_redis_url,
        embedder=embedder,
    )


def local_chain(
    spec: AgentTeamSpec,
    injector: FaultInjector | None,
    bus: EventBus,
    cache: CallCache | None = None,
) -> tuple[Chain, Resilience | None]:
    """The middlewares of a local run's calls: its chaos faults, its cache, and where the team
    declares fallback models, breakers, learned recovery and graceful degradation as in a pod
    (the run's agents share them)."""
    routing = routed_calls("run", spec, get_settings().gateway.max_wait_s)  # model.gateway
    if not spec.model.fallbacks:
        return ChainParts(faults=injector, cache=cache, routing=routing).chain(""), None
    resilience = Resilience.of(spec.resilience, MemoryLearningStore())
    parts = ChainParts(
        errors=resilience.errors,
        breakers=resilience.breakers,
        faults=injector,
        cache=cache,
        routing=routing,
    )
    keys = get_settings().fallback_model_api_keys
    fallbacks = fallback_models(spec, keys, parts.chain(""))
    parts.degradation = resilience.degrade(spec, fallbacks, LOCAL_AGENT)
    resilience.publish_to(bus)
    return parts.chain(""), resilience


LOCAL_AGENT = "team"  # a local run's agents share one chain; its level is the team's


def capability_changes(bus: EventBus) -> list[dict[str, str]]:
    """The run's capability levels as they changed (for the report)."""
    return [
        {"level": e.data["level"], "reason": e.data.get("reason", ""), "since": f"{e.at:%FT%TZ}"}
        for e in bus.history
        if e.kind is EventKind.CAPABILITY_CHANGED
    ]


async def run_team(
    spec: AgentTeamSpec,
    task: str | None,
    *,
    endpoint: str | None,
    model_name: str | None,
    approve: str,
    live: bool,
    console: Console,
    model_file: Path | None = None,
    policies: dict[str, SandboxPolicySpec | None] | None = None,
    chaos: LocalChaos | None = None,
    model_key: SecretStr | None = None,
    session: SessionChoice | None = None,
    memory_stores: dict[str, MemoryStoreSpec] | None = None,
    tools_dir: Path | None = None,
    mcp_servers: Sequence[str] = (),
    debug: DebugChoice | None = None,
) -> TeamResult:
    """Run the team; with `session`, the task carries the notes of the session's earlier runs
    most similar to it, and the run is saved to the session at its end; with `debug`, under
    its debugger (first in the chain, on the bus), replaying its session where it has one."""
    from hive.cli.live import report, watch

    approver: Approver | None = {"auto": approve_all, "ask": ask_at_terminal(console)}.get(approve)
    sandbox = get_settings().sandbox
    bus = EventBus()
    injector = FaultInjector(bus=bus)
    cache = local_cache(spec)
    chain, resilience = local_chain(spec, injector if chaos else None, bus, cache)
    tracing = tracing_from(get_settings().tracing, "run")  # HIVE_TRACING__OTLP_ENDPOINT
    if tracing is not None:  # each call a span, the team's events too
        traced = TracedCalls(tracing.tracer, spec.observability.record_content)
        chain = Chain((traced, *chain.middlewares), chain.agent)
        bus.subscribe(EventSpans(tracing.tracer))
    audit = local_audit() if spec.privacy is not None else None
    privacy = make_guard(spec.privacy, LOCAL_AGENT, get_settings().privacy, audit)
    if privacy is not None:  # spec.privacy: first after the debugger; traces and logs too
        chain = with_privacy(chain, privacy)
        install_log_filter(privacy)
        scrub_exports(tracing, privacy)  # every exported span's texts
    if debug is not None:  # outermost: a pause is no call's time
        from hive.runtime.debug.run import debugged_chain, hooked

        chain = debugged_chain(chain, hooked(debug.debugger, bus))
    toolbox = Toolbox(rootfs=sandbox.rootfs, runsc=sandbox.runsc, chain=chain)
    folder = folder_tools(toolbox, tools_dir, bus, mcp_servers)
    team_memory = local_memory(spec, memory_stores or {}, chain)
    if team_memory is not None:
        toolbox.memory = team_memory.tools
        try:
            await team_memory.check()
        except HiveError:
            await team_memory.close()
            raise
    agents = {a.name: a for a in spec.agents}
    chosen = policies or {}
    async with contextlib.AsyncExitStack() as stack:
        memory = (
            await stack.enter_async_context(session_memory(session, get_settings()))
            if session is not None
            else None
        )
        faults = (
            stack.enter_context(fault_folder(chaos, spec, injector, now_utc())) if chaos else None
        )
        async with model_for(spec, endpoint, model_name, console, model_file, model_key) as plain:
            model = replace(plain, chain=chain)
            if debug is not None and debug.replay is not None:  # the recorded answers first
                from hive.runtime.debug.replay import replaying

                model = replaying(model, debug.replay.answers, go_live=True)
            if get_settings().rag.store is not None:
                from hive.cli.ragcmd import give_documents

                give_documents(toolbox, model, get_settings())
            if resilience is not None and resilience.degradation is not None:
                resilience.degradation.model = plain.model  # --model-name may rename it
                stop_watch = asyncio.Event()
                degrading = asyncio.create_task(resilience.degradation.watch(stop_watch))
            registries: dict[str, ToolRegistry] = {}

            def tools_of(name: str) -> ToolRegistry:
                registries[name] = toolbox.for_agent(agents[name], chosen.get(name))
                return registries[name]

            team = Team.local(spec, model, bus=bus, approver=approver, tools=tools_of)
            prefetch = None
            if spec.cache is not None and spec.cache.prefetch is not None:
                prefetch = prefetcher(
                    spec.cache.prefetch,
                    namespace="local",
                    team="run",
                    redis_url=get_settings().agent.errors_redis_url,
                    registry_of=registries.get,
                )
                prefetch.attach(bus)
            run: Callable[[str | None], Awaitable[TeamResult]] = team.run
            if debug is not None:
                from hive.runtime.debug.run import run_debugged

                run = functools.partial(run_debugged, team, debug.debugger)
            if team_memory is not None:
                give_recall(team, team_memory)
            await toolbox.started()
            following = asyncio.create_task(folder.run()) if folder is not None else None
            for agent, names in toolbox.unavailable.items():
                console.print(f"[dim]{agent}: no built-in implementation of {', '.join(names)}[/]")
            for agent_tools in toolbox.live:
                for why in agent_tools.problems.values():
                    console.print(f"[yellow]{agent_tools.agent}: {why}[/]")
            shown = logged_events(team.bus, privacy)  # the events' texts as logs may show them
            display = watch(shown, spec, task or spec.goal, console, live and approve != "ask")
            stop = asyncio.Event()
            watching = None
            if faults is not None:
                await faults.refresh()  # in force before the first call
                for problem in injector.problems:
                    console.print(f"[yellow]fault skipped: {problem.message}[/]")
                watching = asyncio.create_task(faults.run(stop))
            try:
                asked = task or spec.goal
                started = now_utc()
                told = await session_context(memory, asked, console)
                if tracing is None:
                    result = await run(told)
                else:
                    with run_span(tracing.tracer, "local", "", "", None) as span:
                        console.print(f"[dim]trace {trace_id_of(span)}[/]")
                        result = await run(told)
                result.task = asked  # the report names the task as given
                if privacy is not None:  # pseudonyms back, for the requester only
                    result.output = privacy.restore(result.output)
                    console.print(f"[dim]privacy: {privacy.summary()}[/]")
                if memory is not None:
                    await save_session(memory, result, bus, started, model, console)
            finally:
                stop.set()
                if resilience is not None and resilience.degradation is not None:
                    stop_watch.set()
                    await degrading
                if watching is not None:
                    await watching
                if display is not None:
                    display.stop()
                if following is not None:
                    following.cancel()
                await toolbox.close()
                if team_memory is not None:
                    await team_memory.close()
                await model.aclose()
                if prefetch is not None:
                    await prefetch.close()
                if cache is not None:
                    await cache.close()
                if tracing is not None:
                    tracing.shutdown()  # the run's last spans exported
    result.capability = capability_changes(bus)
    if cache is not None:
        result.cache = cache.report()
        if prefetch is not None:
            result.cache["prefetch"] = prefetch.stats.as_dict()
    result.usage = route_usage(chain) or {}  # spec.model.gateway: by agent, model and route
    report(result, console)
    if chaos is not None:
        report_injections(injector, list(agents), console)
    return result


def folder_tools(
    toolbox: Toolbox, folder: Path | None, bus: EventBus, mcp_servers: Sequence[str] = ()
) -> FolderWatch | None:
    """With --tools DIR: the folder's ToolVersions (and Secrets) as the run's catalog, read now
    and followed while the team runs; with --mcp SERVER, each server's tools in it too (their
    changes followed by the MCP session)."""
    servers = command_line_servers(mcp_servers)
    if folder is None:
        if servers:
            toolbox.catalog, toolbox.publish = Catalog(servers), publish_to(bus)
        return None
    if not folder.is_dir():
        raise InvalidInput("--tools", f"{folder} is not a folder")
    watch = FolderWatch(folder, Catalog(), poll_s=get_settings().tools.folder_poll_s, fixed=servers)
    watch.scan()
    toolbox.catalog, toolbox.secrets_for = watch.catalog, watch.secrets_for
    toolbox.publish = publish_to(bus)
    return watch


def local_memory(
    spec: AgentTeamSpec, stores: dict[str, MemoryStoreSpec], chain: Chain
) -> TeamMemory | None:
    """The team's semantic memory in this run (None when no agent has a store): the stores of
    the team file, the embedder of the settings (an endpoint asked for the model of the first
    store opened), a new run id for what the agents store. Every agent's store is opened here,
    so a missing store or a wrong embedder stops the run before it starts."""
    from hive.api.agentteam import memory_store_ref
    from hive.runtime.memory.embeddings import embedder_for_store
    from hive.runtime.memory.team import TeamMemory

    named = [ref.name for agent in spec.agents if (ref := memory_store_ref(spec, agent))]
    if not named:
        return None
    settings = get_settings().agent

    def embedder() -> Embedder:  # made when the first agent's store opens
        embedding = stores[named[0]].embedding
        return embedder_for_store(settings.embeddings, embedding.model, embedding.dimensions)

    team_memory = TeamMemory(
        team=spec,
        stores=stores,
        embedder=embedder,
        run=uuid.uuid4().hex[:12],
        settings=settings.memory,
        chain=chain,
    )
    for agent in spec.agents:
        team_memory.memory_of(agent)
    return team_memory


def give_recall(team: Team, team_memory: TeamMemory) -> None:
    """Each local member recalls from its store before each task."""
    for member in team.roster.members.values():
        if isinstance(member, LocalMember):
            member.recall = team_memory.recall(member.spec)
            member.embedder = team_memory.loaded_embedder  # relevance in working memory


async def session_context(memory: SessionMemory | None, task: str, console: Console) -> str:
    """The task, followed by the notes of earlier runs of the session relevant to it."""
    if memory is None:
        return task
    block = await memory.context_for(task)
    given = (
        f"{len(memory.recalled)} note(s) of {memory.loaded_runs} earlier run(s) given to the team"
        if memory.loaded_runs
        else "new, nothing to recall yet"
    )
    console.print(f"[dim]session {memory.session}: {given} ({memory.load_s * 1000:.0f} ms)[/]")
    return with_context(task, block)


async def save_session(
    memory: SessionMemory,
    result: TeamResult,
    bus: EventBus,
    started: dt.datetime,
    model: OpenAICompatible,
    console: Console,
) -> None:
    """Save the run to its session; a store that fails is reported, the run's result stands."""
    try:
        saved = await memory.save(
            task=result.task,
            answer=result.output,
            outcome=str(result.outcome),
            message=result.message,
            events=list(bus.history),
            started_at=started,
            model=model.for_agent(result.coordinator),
        )
    except HiveError as exc:
        console.print(f"[red]session {memory.session} not saved: {exc}[/]")
        return
    counts = ", ".join(
        f"{len(saved.of(kind))} {kind}(s)"
        for kind in (NoteKind.FACT, NoteKind.DECISION, NoteKind.QUESTION)
    )
    console.print(
        f"[dim]session {memory.session} saved: {counts}; notes from {saved.extraction} "
        f"({memory.save_s * 1000:.0f} ms)[/]"
    )


def report_injections(injector: FaultInjector, agents: list[str], console: Console) -> None:
    """One line per agent and fault type: how many injections, first and last."""
    for agent in agents:
        for count in injector.report(agent)[0]:
            console.print(
                f"chaos {count.experiment}: {count.count} {count.type} fault(s) in {agent}'s "
                f"calls ({count.first_time:%H:%M:%S}-{count.last_time:%H:%M:%S})"
            )


def run_command(
    spec: AgentTeamSpec,
    task: str | None,
    *,
    endpoint: str | None,
    model_name: str | None,
    approve: str,
    live: bool | None,
    report_path: Path | None,
    model_file: Path | None = None,
    policies: dict[str, SandboxPolicySpec | None] | None = None,
    svg_path: Path | None = None,
    chaos: LocalChaos | None = None,
    model_key: SecretStr | None = None,
    session: SessionChoice | None = None,
    memory_stores: dict[str, MemoryStoreSpec] | None = None,
    tools_dir: Path | None = None,
    mcp_servers: Sequence[str] = (),
    debug: DebugChoice | None = None,
) -> int:
    console = Console(record=svg_path is not None)
    team_run = functools.partial(
        run_team,
        spec,
        task,
        endpoint=endpoint,
        model_name=model_name,
        approve=approve,
        model_file=model_file,
        policies=policies,
        chaos=chaos,
        model_key=model_key,
        session=session,
        memory_stores=memory_stores,
        tools_dir=tools_dir,
        mcp_servers=mcp_servers,
        debug=debug,
    )
    if debug is not None and debug.interactive:
        from hive.cli.debugui import debug_in_terminal

        if approve == "ask":
            raise InvalidInput("--approve", "ask needs the terminal that --debug takes")
        result = debug_in_terminal(debug, team_run, console)
    else:
        live_view = console.is_terminal if live is None else live
        result = asyncio.run(team_run(live=live_view, console=console))
    if debug is not None:
        debug.finish(result, console)
    if report_path is not None:
        report_path.write_text(json.dumps(result.wire(), indent=2, default=str) + "\n")
    if svg_path is not None:
        console.save_svg(str(svg_path), title=f"hive run: {result.pattern} team")
    return EXIT_CODES.get(result.outcome, 1)
