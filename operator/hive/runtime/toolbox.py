"""The tools an agent gets: built-in implementations of the tools its spec names.

An agent's spec lists tools by name and version range (the ToolVersion resources describe their
interfaces); this is where a name becomes something that runs. `python` (or `run-python`) is
the sandboxed code tool: agent-written Python in a warm gVisor pool under the agent's
SandboxPolicy, started on first use — or, in a cluster, in the team's sandbox pods for that
policy (`sandboxUrl` in the agent's configuration). A name with no implementation here, or a
policy this host cannot enforce, is reported, not fatal: the agent works without that tool.
An agent with a memory store (hive.runtime.memory.team) also gets `remember` and `recall`.

With a catalog (the ToolVersions discovered in the namespace, or in a folder locally), every
other tool the agent names comes from it: resolved by its range when the agent starts and again
whenever the catalog changes, run by its implementation kind (``hive.runtime.tooling``); a
ToolVersion of kind builtin with ref ``python`` is the sandboxed code tool under another name.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hive.api.agentteam import AgentSpec
from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.errors import HiveError
from hive.runtime.memory.tools import MEMORY_TOOLS
from hive.runtime.resilience.calls import EMPTY, Chain
from hive.runtime.sandbox.limits import SandboxLimits, limits_from_policy
from hive.runtime.sandbox.pool import SandboxPool
from hive.runtime.sandbox.remote import RemoteSandboxPool, SandboxCaller
from hive.runtime.sandbox.tool import run_python_tool
from hive.runtime.tooling.catalog import (
    AgentTools,
    CallCounts,
    Catalog,
    Publish,
    SecretsFor,
)
from hive.runtime.tooling.kinds import KindContext, KindRegistry
from hive.runtime.tools import Tool, ToolRegistry

if TYPE_CHECKING:
    from hive.runtime.rag.answering import Answerer

CODE_TOOLS = frozenset({"python", "run-python"})
SEARCH_DOCUMENTS = "search_documents"  # the function; specs name it search-documents
DOCUMENT_TOOLS = frozenset({"search-documents"})
# How long an agent's start waits for catalog tools whose server did not answer yet (an MCP
# server or an OpenAPI document behind a NetworkPolicy that is not in force yet, a relay still
# coming up): its first task then sees every tool it declared, or starts without after this.
TOOLS_SETTLE_S = 10.0


@dataclass
class Toolbox:
    """Every agent's tools, and the sandboxes behind them, closed together."""

    rootfs: Path | None = None
    runsc: str | None = None
    sandbox_url: str | None = None  # in a cluster: the team's sandbox pods for this policy
    key_file: Path | None = None  # the agent's own key, with which it asks them (SandboxCaller)
    pools: list[SandboxPool | RemoteSandboxPool] = field(default_factory=list)
    chain: Chain = EMPTY  # the middlewares every tool call and sandbox execution passes
    unavailable: dict[str, list[str]] = field(default_factory=dict)
    # an agent's remember and recall tools, when it has a memory store (TeamMemory.tools)
    memory: Callable[[AgentSpec], list[Tool]] | None = None
    closing: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # with the pools
    documents: Answerer | None = None  # the indexed documents behind search_documents
    catalog: Catalog | None = None  # the ToolVersions present now, kept current by discovery
    kinds: KindRegistry | None = None  # how each implementation kind runs (default: all known)
    secrets_for: SecretsFor | None = None  # Secret values the versions' auth names
    counts: CallCounts | None = None  # calls per version, reported for status.consumers
    publish: Publish | None = None  # each catalog tool call's outcome
    namespace: str = "default"
    live: list[AgentTools] = field(default_factory=list)
    _starting: list[asyncio.Task[None]] = field(default_factory=list)
    _kind_watch: asyncio.Task[None] | None = None

    def for_agent(self, agent: AgentSpec, policy: SandboxPolicySpec | None) -> ToolRegistry:
        tools: list[Tool] = []
        from_catalog = []
        for requirement in agent.tools:
            if requirement.name in CODE_TOOLS:
                try:
                    tools.append(self._python_tool(agent, policy))
                except HiveError as exc:  # e.g. an egress allowlist this host cannot enforce
                    self.unavailable.setdefault(agent.name, []).append(
                        f"{requirement.name} ({exc})"
                    )
            elif requirement.name in DOCUMENT_TOOLS and self.documents is not None:
                from hive.runtime.rag.tool import search_documents_tool

                tools.append(search_documents_tool(self.documents))
            elif requirement.name in MEMORY_TOOLS and self.memory is not None:
                continue
            elif self.catalog is not None:
                from_catalog.append(requirement)
            else:
                self.unavailable.setdefault(agent.name, []).append(requirement.name)
        if self.memory is not None:
            tools += self.memory(agent)
        registry = ToolRegistry.of(tools)
        registry.chain = self.chain.with_agent(agent.name)
        registry.alternatives = {t.name: t.alternatives for t in agent.tools if t.alternatives}
        if from_catalog and self.catalog is not None:
            if self.kinds is None:
                self.kinds = KindRegistry.default()
            live = AgentTools(
                agent=agent.name,
                requirements=from_catalog,
                catalog=self.catalog,
                kinds=self.kinds,
                context=KindContext(
                    namespace=self.namespace, builtins={"python": self._lazy_python(agent, policy)}
                ),
                secrets_for=self.secrets_for,
                counts=self.counts,
                publish=self.publish,
                chain=self.chain.with_agent(agent.name),
            )
            self.live.append(live)
            registry.live = live
            with contextlib.suppress(RuntimeError):  # no loop yet: `started()` starts it
                self._starting.append(asyncio.get_running_loop().create_task(live.start()))
        return registry

    async def started(self) -> None:
        """Until every agent's catalog tools are built and followed (call once a loop runs)."""
        waiting = [t for t in self.live if t._task is None]
        starting, self._starting = self._starting, []
        await asyncio.gather(*starting)
        await asyncio.gather(*(t.start() for t in waiting if t._task is None))
        if self.catalog is not None and self.kinds is not None and self._kind_watch is None:
            self._kind_watch = asyncio.create_task(self._follow_kinds(self.catalog, self.kinds))
        await self._settled(TOOLS_SETTLE_S)

    async def _settled(self, timeout_s: float) -> None:
        """Until no agent's catalog tool is missing for want of an answer from its server (the
        kinds' `changed` events rebuild them once it answers), at most `timeout_s`."""

        async def settle(tools: AgentTools) -> None:
            while tools.unanswered:
                tools.refreshed.clear()
                await tools.refreshed.wait()

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await asyncio.gather(*(settle(t) for t in self.live))

    async def _follow_kinds(self, catalog: Catalog, kinds: KindRegistry) -> None:
        """Kinds whose functions change by themselves (an MCP server's tools/list_changed) set
        their `changed` event: the tools of that kind are announced as changed."""
        watched: dict[str, asyncio.Event] = {
            name: event
            for name, kind in kinds.kinds.items()
            if isinstance(event := getattr(kind, "changed", None), asyncio.Event)
        }
        while watched:
            waits = {asyncio.ensure_future(e.wait()): name for name, e in watched.items()}
            done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            for task in pending:
                task.cancel()
            for task in done:
                watched[waits[task]].clear()
                catalog.touch(catalog.kinds_of(waits[task]))

    def _python_tool(self, agent: AgentSpec, policy: SandboxPolicySpec | None) -> Tool:
        limits = limits_from_policy(policy) if policy else SandboxLimits()
        pool: SandboxPool | RemoteSandboxPool = (
            RemoteSandboxPool(self.sandbox_url, limits, caller=self._caller(agent))
            if self.sandbox_url
            else SandboxPool(limits, rootfs=self.rootfs, runsc=self.runsc)
        )
        self.pools.append(pool)
        sandbox = agent.sandbox_policy_ref.name if agent.sandbox_policy_ref else "local"
        return run_python_tool(pool, sandbox=sandbox, chain=self.chain.with_agent(agent.name))

    def _lazy_python(
        self, agent: AgentSpec, policy: SandboxPolicySpec | None
    ) -> Callable[..., Awaitable[Any]]:
        """The code tool for a builtin ToolVersion, its sandbox made on the first call."""
        made: list[Tool] = []

        async def python(**arguments: Any) -> Any:
            if not made:
                made.append(self._python_tool(agent, policy))
            return await made[0].function(**arguments)

        return python

    def _caller(self, agent: AgentSpec) -> SandboxCaller | None:
        if self.key_file is None:
            return None
        return SandboxCaller(agent.name, self.key_file)

    async def close(self) -> None:
        if self._kind_watch is not None:
            self._kind_watch.cancel()
            await asyncio.gather(self._kind_watch, return_exceptions=True)
        await asyncio.gather(*(t.close() for t in self.live), return_exceptions=True)
        if self.kinds is not None:
            await self.kinds.close()
        await asyncio.gather(*(p.close() for p in self.pools), return_exceptions=True)
        await asyncio.gather(*(close() for close in self.closing), return_exceptions=True)
