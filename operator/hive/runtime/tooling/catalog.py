"""The catalog: every ToolVersion present now, and how an agent's requirement resolves to one.

`Catalog` holds the versions of every tool as discovery (``hive.runtime.tooling.discovery``)
finds them — from the API server in a pod, from a folder with ``hive run --tools DIR`` — and
tells its subscribers when they change. An agent asks for a tool by name and semver range
(``version: "^1.0"``); `Catalog.resolve` picks the highest matching version present now
(deprecated ones only when nothing else matches), and the version the caller was written for:
``pinned`` when declared, else the oldest present version the range allows. The model sees the
written-for version's schema; its calls are migrated forward to the resolved version and its
results back (``hive.runtime.tooling.migrate``).

`AgentTools` keeps one agent's catalog tools in step with the catalog: on every change it asks
each resolved version's kind for its functions and wraps each call with migration, schema
checks, the outcome (an event and Prometheus metrics), deprecation warnings and the counts of
calls per version (`CallCounts`, reported to the operator for ``status.consumers``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import jsonschema
from prometheus_client import Counter, Histogram

from hive.api.agentteam import ToolCallCount, ToolRequirement
from hive.api.semver import best_match, less, ordered, satisfies
from hive.api.toolversion import DiscoveredTool, ToolVersionSpec
from hive.errors import ExternalFailure, HiveError, InvalidInput
from hive.runtime.cache.keys import ToolCaching, digest
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.resilience.calls import EMPTY, Call, CallKind, Chain
from hive.runtime.tooling.kinds import CALL_STATUS, Function, KindContext, KindRegistry
from hive.runtime.tooling.migrate import MigrationPath, migration_path
from hive.runtime.tools import Tool

log = logging.getLogger(__name__)

TOOL_CALLS = Counter(
    "hive_tool_calls_total",
    "Calls of catalog tools by tool, version and outcome (ok, or the error's kind/status).",
    ["agent", "tool", "version", "outcome"],
)
TOOL_LATENCY = Histogram(
    "hive_tool_call_seconds",
    "Latency of catalog tool calls.",
    ["tool", "version"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
VALIDATORS_KEPT = 512  # distinct schemas whose validators are kept
_VALIDATORS: OrderedDict[str, _Checked] = OrderedDict()
DEPRECATED_CALLS = Counter(
    "hive_tool_deprecated_calls_total",
    "Calls of deprecated tool versions, by caller.",
    ["agent", "tool", "version"],
)


class ToolNotPresent(InvalidInput):
    """The agent's tool has no version present that its range allows (removed, never applied)."""


@dataclass(frozen=True)
class CatalogEntry:
    """One ToolVersion as discovery found it."""

    spec: ToolVersionSpec
    name: str  # the object's name (or the file's, locally)
    source: str  # "namespace/name" in a cluster, the file path locally
    # kind mcp: the server's tools as the operator last listed them (status.discoveredTools),
    # offered until the agent's own session with the server is up
    announced: tuple[DiscoveredTool, ...] = ()


@dataclass(frozen=True)
class Resolution:
    """What an agent's requirement resolved to now."""

    target: CatalogEntry  # the version called
    written_for: ToolVersionSpec  # the version whose schema the model sees
    path: MigrationPath

    @property
    def deprecated(self) -> bool:
        return self.target.spec.deprecation.deprecated


class Catalog:
    """The versions of every tool present now; subscribers hear of every change."""

    def __init__(self, entries: Iterable[CatalogEntry] = ()) -> None:
        self._tools: dict[str, dict[str, CatalogEntry]] = {}
        self._subscribers: list[Callable[[set[str]], None]] = []
        self.generation = 0
        for entry in entries:
            self._tools.setdefault(entry.spec.tool, {})[entry.spec.version] = entry

    def subscribe(self, subscriber: Callable[[set[str]], None]) -> Callable[[], None]:
        """`subscriber(changed tool names)` after every change; returns the unsubscriber."""
        self._subscribers.append(subscriber)
        return lambda: self._subscribers.remove(subscriber)

    def tools(self) -> list[str]:
        return sorted(self._tools)

    def entries(self, tool: str | None = None) -> list[CatalogEntry]:
        names = [tool] if tool is not None else sorted(self._tools)
        out = []
        for name in names:
            versions = self._tools.get(name, {})
            out += [versions[v] for v in ordered(versions)]
        return out

    def specs(self, tool: str) -> dict[str, ToolVersionSpec]:
        return {v: e.spec for v, e in self._tools.get(tool, {}).items()}

    def put(self, entry: CatalogEntry) -> None:
        """Add or change one version (an entry of another name for the same version replaces
        it: the newest word wins, as admission refuses duplicates anyway)."""
        tool = entry.spec.tool
        if self._tools.get(tool, {}).get(entry.spec.version) == entry:
            return  # the object changed elsewhere (its status's counts): nothing to announce
        # the object may have changed its tool or version: drop what it declared before
        changed = self._drop_named(entry.name) | {tool}
        self._tools.setdefault(tool, {})[entry.spec.version] = entry
        self._changed(changed)

    def remove(self, name: str) -> None:
        """The version declared by object (or file) `name` is gone."""
        changed = self._drop_named(name)
        if changed:
            self._changed(changed)

    def replace(self, entries: Iterable[CatalogEntry]) -> None:
        """Everything present now (after a fresh list): the difference is announced."""
        fresh: dict[str, dict[str, CatalogEntry]] = {}
        for entry in entries:
            fresh.setdefault(entry.spec.tool, {})[entry.spec.version] = entry
        changed = {
            tool
            for tool in set(fresh) | set(self._tools)
            if fresh.get(tool) != self._tools.get(tool)
        }
        self._tools = fresh
        if changed:
            self._changed(changed)

    def touch(self, tools: set[str]) -> None:
        """Announce `tools` as changed though their versions are not (their kind's functions
        changed: an MCP server listed other tools)."""
        if tools:
            self._changed(tools)

    def kinds_of(self, kind: str) -> set[str]:
        """The tools with a version of implementation kind `kind`."""
        return {
            tool
            for tool, versions in self._tools.items()
            if any(str(e.spec.implementation.kind) == kind for e in versions.values())
        }

    def view(self) -> dict[str, list[ToolVersionSpec]]:
        """Every tool's versions, oldest first."""
        return {tool: [e.spec for e in self.entries(tool)] for tool in self._tools}

    def _drop_named(self, name: str) -> set[str]:
        changed = set()
        for tool, versions in list(self._tools.items()):
            for version, entry in list(versions.items()):
                if entry.name == name:
                    del versions[version]
                    changed.add(tool)
            if not versions:
                del self._tools[tool]
        return changed

    def _changed(self, tools: set[str]) -> None:
        self.generation += 1
        for subscriber in list(self._subscribers):
            try:
                subscriber(tools)
            except Exception:
                log.exception("catalog subscriber failed")

    def resolve(self, tool: str, version_range: str = "*", pinned: str | None = None) -> Resolution:
        """The highest version of `tool` present now that `version_range` allows (deprecated
        versions only when no other matches), with the path from the written-for version."""
        present = self._tools.get(tool)
        if not present:
            raise ToolNotPresent(
                f"tool {tool!r}", "no ToolVersion of it is present now (removed, or not applied)"
            )
        matching = [v for v in present if satisfies(v, version_range)]
        if not matching:
            raise ToolNotPresent(
                f"tool {tool!r}",
                f"no version present matches {version_range!r} "
                f"(present: {', '.join(ordered(present))})",
            )
        usable = [v for v in matching if not present[v].spec.deprecation.deprecated] or matching
        target = best_match(usable, version_range) or ordered(usable)[-1]
        written_for = pinned if pinned in present and not less(target, pinned or "") else None
        if written_for is None:
            written_for = target if pinned is not None else ordered(matching)[0]
        specs = {v: e.spec for v, e in present.items()}
        path = migration_path(tool, written_for, target, specs)
        return Resolution(present[target], present[written_for].spec, path)


@dataclass
class CallCounts:
    """Calls per (tool, version) of this process's agents within a recent window, by agent."""

    window_s: float = 3600.0
    bucket_s: float = 60.0
    _buckets: dict[tuple[str, str, str], dict[int, int]] = field(default_factory=dict)
    _last: dict[tuple[str, str, str], float] = field(default_factory=dict)

    def add(self, agent: str, tool: str, version: str, now: float | None = None) -> None:
        now = time.time() if now is None else now
        key = (agent, tool, version)
        buckets = self._buckets.setdefault(key, {})
        slot = int(now // self.bucket_s)
        buckets[slot] = buckets.get(slot, 0) + 1
        self._last[key] = now

    def counts(self, agent: str | None = None, now: float | None = None) -> list[dict[str, Any]]:
        """[{agent, tool, version, calls, lastCall (epoch s)}] with calls in the window."""
        now = time.time() if now is None else now
        oldest = int((now - self.window_s) // self.bucket_s) + 1
        out = []
        for key, buckets in sorted(self._buckets.items()):
            for slot in [s for s in buckets if s < oldest]:
                del buckets[slot]
            calls = sum(buckets.values())
            if calls and (agent is None or key[0] == agent):
                out.append(
                    {
                        "agent": key[0],
                        "tool": key[1],
                        "version": key[2],
                        "calls": calls,
                        "lastCall": self._last[key],
                    }
                )
        return out


def reported_calls(counts: CallCounts, agent: str) -> Callable[[], list[ToolCallCount]]:
    """The agent's counts as its status entry reports them (the newest 100)."""

    def report() -> list[ToolCallCount]:
        found = sorted(counts.counts(agent), key=lambda c: -c["lastCall"])[:100]
        return [
            ToolCallCount(
                tool=c["tool"],
                version=c["version"],
                calls=c["calls"],
                last_call=dt.datetime.fromtimestamp(c["lastCall"], dt.UTC).replace(microsecond=0),
            )
            for c in sorted(found, key=lambda c: (c["tool"], c["version"]))
        ]

    return report


@dataclass(frozen=True)
class CallOutcome:
    """One finished catalog tool call, for events and reports."""

    agent: str
    tool: str
    function: str
    version: str
    written_for: str
    outcome: str  # "ok", or the error's class name
    status: str | None  # what the kind said: an HTTP status, "timeout", ...
    latency_s: float
    deprecated: bool
    error: str | None = None


Publish = Callable[[CallOutcome], Awaitable[None] | None]


def publish_to(bus: EventBus) -> Publish:
    """Each outcome as a tool-outcome event of the calling agent on `bus`."""

    async def publish(outcome: CallOutcome) -> None:
        data = {k: v for k, v in asdict(outcome).items() if k != "agent"}
        await bus.publish(Event(EventKind.TOOL_OUTCOME, outcome.agent, data))

    return publish


SecretsFor = Callable[[Sequence[ToolVersionSpec]], Awaitable[Mapping[str, str]]]


def _declared_output(spec: ToolVersionSpec, function: Function) -> dict[str, Any] | None:
    if (
        "output_schema" not in spec.model_fields_set
        and function.output_schema == spec.output_schema
    ):
        return None  # the default {"type": "object"} is no promise worth checking
    return function.output_schema


class _Checked:
    """A JSON Schema validator built once; errors name the place."""

    def __init__(self, schema: dict[str, Any]) -> None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        self.validator = cls(schema)

    @classmethod
    def of(cls, schema: dict[str, Any]) -> _Checked:
        """The validator of `schema`, built once per distinct schema and kept (the latest
        VALIDATORS_KEPT): a catalog change rebuilds every agent's tools, and the schemas of the
        versions that did not change are checked and compiled again for nothing otherwise."""
        key = json.dumps(schema, sort_keys=True, default=str)
        found = _VALIDATORS.get(key)
        if found is None:
            found = _VALIDATORS[key] = cls(schema)
            while len(_VALIDATORS) > VALIDATORS_KEPT:
                _VALIDATORS.popitem(last=False)
        else:
            _VALIDATORS.move_to_end(key)
        return found

    def problem(self, value: Any) -> str | None:
        if self.validator.is_valid(value):  # the usual case, without gathering errors
            return None
        error = jsonschema.exceptions.best_match(self.validator.iter_errors(value))
        if error is None:
            return None
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        return f"{where}: {error.message}"


@dataclass
class AgentTools:
    """One agent's tools from the catalog, rebuilt when the catalog changes."""

    agent: str
    requirements: Sequence[ToolRequirement]
    catalog: Catalog
    kinds: KindRegistry
    context: KindContext = field(default_factory=KindContext)
    secrets_for: SecretsFor | None = None  # the Secret values the versions' auth names
    counts: CallCounts | None = None
    publish: Publish | None = None
    tools: dict[str, Tool] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)  # required tool -> why it is absent
    unanswered: set[str] = field(default_factory=set)  # of those: its kind's server failed
    refreshed: asyncio.Event = field(default_factory=asyncio.Event)  # set after each rebuild
    _warned: set[tuple[str, str]] = field(default_factory=set)
    _dirty: asyncio.Event = field(default_factory=asyncio.Event)
    chain: Chain = EMPTY  # breakers, faults, audit: what a composite's steps pass too
    _task: asyncio.Task[None] | None = None
    _unsubscribe: Callable[[], None] | None = None
    _context: KindContext | None = None
    _inner: dict[tuple[str, str, int], tuple[Tool, _Checked]] = field(default_factory=dict)
    # (agent, tool, version, outcome) -> the children of TOOL_CALLS and TOOL_LATENCY
    _metrics: dict[tuple[str, str, str, str], tuple[Any, Any]] = field(default_factory=dict)

    @property
    def names(self) -> set[str]:
        return {r.name for r in self.requirements}

    async def start(self) -> None:
        """Build the tools now, then keep them in step with the catalog."""
        await self.refresh()
        self._unsubscribe = self.catalog.subscribe(self._on_change)
        self._task = asyncio.create_task(self._follow(), name=f"tools of {self.agent}")

    def _on_change(self, tools: set[str]) -> None:
        if tools & self.names:
            self._dirty.set()

    async def _follow(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.refresh()
            except Exception:
                log.exception("agent %s: refreshing its tools failed", self.agent)

    async def refresh(self) -> None:
        tools: dict[str, Tool] = {}
        problems: dict[str, str] = {}
        unanswered: set[str] = set()
        resolved: list[tuple[ToolRequirement, Resolution]] = []
        for requirement in self.requirements:
            try:
                resolved.append(
                    (
                        requirement,
                        self.catalog.resolve(
                            requirement.name, requirement.version, requirement.pinned
                        ),
                    )
                )
            except HiveError as exc:
                problems[requirement.name] = str(exc)
        context = replace(
            self.context,
            call_tool=self.context.call_tool or self.call_tool,
            tools=self.catalog.view(),
            announced={
                (r.target.spec.tool, r.target.spec.version): r.target.announced
                for _, r in resolved
                if r.target.announced
            },
        )
        if self.secrets_for is not None and resolved:
            specs = [r.target.spec for _, r in resolved]
            try:
                secrets = await self.secrets_for(specs)
                context = replace(context, secrets={**context.secrets, **secrets})
            except Exception as exc:  # the versions needing them say so when asked
                log.warning("agent %s: reading tool Secrets: %s", self.agent, exc)
        self._context = context
        for requirement, resolution in resolved:
            spec = resolution.target.spec
            try:
                functions = await self.kinds.get(spec).functions(spec, context)
            except Exception as exc:  # one kind's trouble never takes the other tools away
                problems[requirement.name] = f"tool {requirement.name!r} {spec.version}: {exc}"
                unanswered.add(requirement.name)
                if not isinstance(exc, HiveError):
                    log.warning("agent %s: tool %s: %r", self.agent, requirement.name, exc)
                continue
            single = len(functions) == 1
            for function in functions:
                tools[function.name] = self._tool(resolution, function, single)
        self.tools, self.problems, self.unanswered = tools, problems, unanswered
        self.refreshed.set()

    async def call_tool(self, name: str, version_range: str, arguments: dict[str, Any]) -> Any:
        """Call a tool of the catalog by name and range, through the whole call path (checks,
        migration, the chain's breakers and faults): how composite tools run their steps."""
        resolution = self.catalog.resolve(name, version_range)
        spec = resolution.target.spec
        key = (name, spec.version, self.catalog.generation)
        inner = self._inner.get(key)
        if inner is None:
            context = self._context or self.context
            if self.secrets_for is not None:
                context = replace(
                    context, secrets={**context.secrets, **await self.secrets_for([spec])}
                )
            functions = await self.kinds.get(spec).functions(spec, context)
            chosen = [f for f in functions if f.name == name] or functions[:1]
            if not chosen:
                raise InvalidInput(f"tool {name!r}", f"{spec.version} offers no function")
            tool = self._tool(resolution, chosen[0], len(functions) == 1)
            self._inner = {k: v for k, v in self._inner.items() if k[2] == key[2]}
            inner = self._inner[key] = (tool, _Checked.of(tool.parameters))
        tool, checked = inner
        problem = checked.problem(arguments)
        if problem is not None:
            raise InvalidInput(f"tool {name!r} arguments", problem)
        call = Call(CallKind.TOOL, name, "call")
        return await self.chain.run(call, lambda: tool.function(**arguments))

    def missing(self, name: str) -> str | None:
        """Why a tool this agent requires is not callable now (None when it is, or not ours)."""
        if name in self.tools:
            return None
        return self.problems.get(name)

    def _tool(self, resolution: Resolution, function: Function, single: bool) -> Tool:
        target = resolution.target.spec
        written_for = resolution.written_for
        path = resolution.path
        migrated = single and not path.empty and written_for.version != target.version
        parameters = written_for.input_schema if migrated else function.parameters
        after_migration = _Checked.of(function.parameters) if migrated else None
        output_schema = _declared_output(target, function)
        output = _Checked.of(output_schema) if output_schema is not None else None
        agent, tool_name = self.agent, target.tool

        async def run(**arguments: Any) -> Any:
            started = time.perf_counter()
            CALL_STATUS.set(None)
            outcome, error = "ok", None
            try:
                args = path.arguments(arguments) if migrated else arguments
                if after_migration is not None:
                    problem = after_migration.problem(args)
                    if problem is not None:
                        raise InvalidInput(
                            f"tool {tool_name!r} {target.version}",
                            f"arguments migrated from {written_for.version} break its "
                            f"inputSchema at {problem}",
                        )
                result = await function.call(args)
                if output is not None:
                    problem = output.problem(result)
                    if problem is not None:
                        raise ExternalFailure(
                            f"tool {tool_name!r} {target.version} answered a result that "
                            f"breaks its outputSchema at {problem}"
                        )
                return path.result(result) if migrated else result
            except Exception as exc:
                outcome, error = type(exc).__name__, str(exc)
                raise
            finally:
                await self._record(
                    CallOutcome(
                        agent=agent,
                        tool=tool_name,
                        function=function.name,
                        version=target.version,
                        written_for=written_for.version,
                        outcome=outcome,
                        status=CALL_STATUS.get(),
                        latency_s=time.perf_counter() - started,
                        deprecated=target.deprecation.deprecated,
                        error=error,
                    ),
                    target,
                )

        return Tool(
            name=function.name,
            description=function.description or target.description,
            parameters=parameters,
            function=run,
            version=target.version,
            cache=_caching(target, function.name, written_for.version if migrated else None),
        )

    async def _record(self, outcome: CallOutcome, spec: ToolVersionSpec) -> None:
        calls_key = (outcome.agent, outcome.tool, outcome.version, outcome.outcome)
        counted = self._metrics.get(calls_key)
        if counted is None:  # labels() takes a lock and builds its key on every call
            counted = self._metrics[calls_key] = (
                TOOL_CALLS.labels(*calls_key),
                TOOL_LATENCY.labels(outcome.tool, outcome.version),
            )
        counted[0].inc()
        counted[1].observe(outcome.latency_s)
        if self.counts is not None:
            self.counts.add(outcome.agent, outcome.tool, outcome.version)
        if outcome.deprecated:
            DEPRECATED_CALLS.labels(outcome.agent, outcome.tool, outcome.version).inc()
            if (outcome.tool, outcome.version) not in self._warned:
                self._warned.add((outcome.tool, outcome.version))
                log.warning(
                    "agent %s calls tool %s %s, which is deprecated: %s",
                    outcome.agent,
                    outcome.tool,
                    outcome.version,
                    spec.deprecation.message or "no replacement named",
                )
        if self.publish is not None:
            try:
                published = self.publish(outcome)
                if published is not None:
                    await published
            except Exception:
                log.exception("publishing a tool call outcome failed")

    async def close(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None


def _caching(spec: ToolVersionSpec, function: str, written_for: str | None) -> ToolCaching | None:
    """A cacheable version's results keyed by its whole spec (any change: a new cache), the
    function and the version the agent's calls are migrated from."""
    if spec.cache is None or spec.side_effects:
        return None
    fingerprint = digest([spec.model_dump(mode="json"), function, written_for])
    return ToolCaching(ttl_s=float(spec.cache.ttl_seconds), fingerprint=fingerprint)
