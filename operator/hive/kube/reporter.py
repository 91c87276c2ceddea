"""StatusReporter: one agent's own entry in its AgentTeam's status, by server-side apply.

Each agent applies only ``status.agents[name=<agent>]`` under the field manager
``hive-agent-<agent>``. ``status.agents`` is a list-map keyed by name, so the API server merges
entries from different managers, and no agent can overwrite another's or the operator's fields.
"""

from __future__ import annotations

from hive.api.agentteam import AgentStatus, PrivacyStatus, RunStatus
from hive.kube.client import ApiClient
from hive.kube.status import apply_status, team_generation, team_run

RUN_FIELD_MANAGER = "hive-coordinator"  # apart from the entry's manager, so neither drops the other
PRIVACY_FIELD_MANAGER = "hive-privacy"  # apart from the run's, for the same reason


def field_manager_for(agent: str) -> str:
    return f"hive-agent-{agent}"


class StatusReporter:
    """Reports one agent's status entry into one AgentTeam."""

    def __init__(self, client: ApiClient, namespace: str, team: str, agent: str) -> None:
        self.client = client
        self.namespace = namespace
        self.team = team
        self.agent = agent

    async def report(self, status: AgentStatus) -> None:
        if status.name != self.agent:
            raise ValueError(f"reporter for agent {self.agent!r} given status of {status.name!r}")
        await apply_status(
            self.client,
            "AgentTeam",
            self.namespace,
            self.team,
            {"agents": [status.wire()]},
            field_manager=field_manager_for(self.agent),
        )

    async def report_run(self, run: RunStatus) -> None:
        """The team's run, owned by this agent's field manager (the coordinator's)."""
        await apply_status(
            self.client,
            "AgentTeam",
            self.namespace,
            self.team,
            {"run": run.wire()},
            field_manager=RUN_FIELD_MANAGER,
        )

    async def report_privacy(self, privacy: PrivacyStatus) -> None:
        """The team's status.privacy (the coordinator's, with each run it finishes)."""
        await apply_status(
            self.client,
            "AgentTeam",
            self.namespace,
            self.team,
            {"privacy": privacy.wire()},
            field_manager=PRIVACY_FIELD_MANAGER,
        )

    async def generation(self) -> int:
        """The team's .metadata.generation now."""
        return await team_generation(self.client, self.namespace, self.team)

    async def last_run(self) -> RunStatus | None:
        """The run recorded in the team's status, if any."""
        return await team_run(self.client, self.namespace, self.team)
