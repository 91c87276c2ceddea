"""The registry of Hive's kinds: one `Kind` per custom resource."""

from __future__ import annotations

from hive.api.agentteam import AgentTeamSpec, AgentTeamStatus
from hive.api.chaos import ChaosExperimentSpec, ChaosExperimentStatus
from hive.api.crd import Kind, PrinterColumn
from hive.api.memorystore import MemoryStoreSpec, MemoryStoreStatus
from hive.api.sandboxpolicy import SandboxPolicySpec, SandboxPolicyStatus
from hive.api.toolversion import ToolVersionSpec, ToolVersionStatus

AGENT_TEAM = Kind(
    kind="AgentTeam",
    plural="agentteams",
    short_names=("at",),
    spec=AgentTeamSpec,
    status=AgentTeamStatus,
    description="A team of AI agents working towards one goal, run as pods by the Hive operator.",
    columns=(
        PrinterColumn("Phase", ".status.phase", description="Overall phase."),
        PrinterColumn("Agents", ".status.agentsReady", "integer", "Agents available."),
        PrinterColumn("Total", ".status.agentsTotal", "integer", "Agents declared.", priority=1),
        PrinterColumn("Work", ".status.run.outcome", description="The team's work on its goal."),
        PrinterColumn("Pattern", ".spec.pattern", description="Team pattern.", priority=1),
        PrinterColumn(
            "Delegations", ".status.run.delegations", "integer", "Tasks handed on.", priority=1
        ),
        PrinterColumn("Tokens", ".status.run.tokens", "integer", "Tokens used.", priority=1),
        PrinterColumn(
            "Breakers", ".status.breakersOpen", "integer", "Open circuit breakers.", priority=1
        ),
        PrinterColumn("Goal", ".spec.goal", description="What the team works towards.", priority=1),
    ),
)

TOOL_VERSION = Kind(
    kind="ToolVersion",
    plural="toolversions",
    short_names=("tv",),
    spec=ToolVersionSpec,
    status=ToolVersionStatus,
    description="One version of a tool's interface, with the migration from its predecessor.",
    columns=(
        PrinterColumn("Tool", ".spec.tool", description="Tool name."),
        PrinterColumn("Version", ".spec.version", description="Semantic version."),
        PrinterColumn("Kind", ".spec.implementation.kind", description="Implementation kind."),
        PrinterColumn("Latest", ".status.latest", "boolean", "Newest version of the tool."),
        PrinterColumn("Deprecated", ".status.deprecated", "boolean", "Deprecated.", priority=1),
        PrinterColumn("Path", ".status.migrationPathValid", "boolean", "Chain valid.", priority=1),
        PrinterColumn(
            "Functions", ".status.functionCount", "integer", "Functions made (openapi, mcp)."
        ),
        PrinterColumn("Consumers", ".status.consumerCount", "integer", "Agents using it."),
        PrinterColumn("Calls", ".status.calls", "integer", "Calls in the window.", priority=1),
    ),
)

SANDBOX_POLICY = Kind(
    kind="SandboxPolicy",
    plural="sandboxpolicies",
    short_names=("sbp",),
    spec=SandboxPolicySpec,
    status=SandboxPolicyStatus,
    description="Limits, network, filesystem and modules of code that agents run in gVisor.",
    columns=(
        PrinterColumn("Runtime", ".spec.runtimeClassName", description="RuntimeClass."),
        PrinterColumn("Network", ".spec.network.mode", description="none or allowlist."),
        PrinterColumn("Bound", ".status.boundAgentCount", "integer", "Agents governed."),
        PrinterColumn(
            "Verified", ".status.verified", "boolean", "Consistency checks passed.", priority=1
        ),
    ),
)

CHAOS_EXPERIMENT = Kind(
    kind="ChaosExperiment",
    plural="chaosexperiments",
    short_names=("chaos",),
    spec=ChaosExperimentSpec,
    status=ChaosExperimentStatus,
    description="Faults injected into a team's agents for a while, then rolled back.",
    columns=(
        PrinterColumn("Phase", ".status.phase", description="State machine phase."),
        PrinterColumn("Verdict", ".status.verdict", description="Pass, Fail or Stopped."),
        PrinterColumn("Team", ".spec.selector.team", description="Target team."),
        PrinterColumn("Faults", ".status.faultsInjected", "integer", "Injected.", priority=1),
        PrinterColumn("Failures", ".status.failuresDetected", "integer", "Seen.", priority=1),
        PrinterColumn("Recovery", ".status.recoveryTimeSeconds", "number", "Seconds.", priority=1),
    ),
)

MEMORY_STORE = Kind(
    kind="MemoryStore",
    plural="memorystores",
    short_names=("ms",),
    spec=MemoryStoreSpec,
    status=MemoryStoreStatus,
    description="Long-term memory of agents: a Weaviate collection or a Redis keyspace.",
    columns=(
        PrinterColumn("Backend", ".spec.backend", description="weaviate or redis."),
        PrinterColumn("Collection", ".spec.collection", description="Collection or prefix."),
        PrinterColumn("Objects", ".status.objectCount", "integer", "Memories stored."),
        PrinterColumn("Version", ".status.backendVersion", description="Backend's version."),
        PrinterColumn("Endpoint", ".status.endpoint", description="Backend.", priority=1),
    ),
)

KINDS: tuple[Kind, ...] = (AGENT_TEAM, TOOL_VERSION, SANDBOX_POLICY, CHAOS_EXPERIMENT, MEMORY_STORE)
BY_KIND = {k.kind: k for k in KINDS}
