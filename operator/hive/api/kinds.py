"""The registry of Hive's kinds: one `Kind` per custom resource."""

from __future__ import annotations

from hive.api.agentteam import AgentTeamSpec, AgentTeamStatus
from hive.api.crd import Kind, PrinterColumn

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
        PrinterColumn("Pattern", ".spec.pattern", description="Team pattern.", priority=1),
        PrinterColumn("Goal", ".spec.goal", description="What the team works towards.", priority=1),
    ),
)

KINDS: tuple[Kind, ...] = (AGENT_TEAM,)
