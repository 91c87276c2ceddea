"""Swarm subgoals run as Kubernetes Jobs (AgentTeam ``spec.swarm.jobs``, opt-in).

With it, a swarm's coordinator running in a cluster runs each level of its goal graph (the
subgoals whose inputs are ready) as one Indexed Job: one completion per subgoal, each pod
(``hive swarm part``) answering its subgoal with the team's model and recording the answer in
the team's Redis under its completion index; the coordinator collects the answers once the Job
is complete. For subgoals that need more compute than the team's agent pods have: each part
gets its own pod, with these resources. Needs the team's Redis (the operator's agent Redis
URL); ``hive run`` (no cluster) works the subgoals with the team's agents as without it.
"""

from __future__ import annotations

from pydantic import Field

from hive.api.common import HiveModel


class SwarmJobsSpec(HiveModel):
    """The pods of the Jobs that run a swarm's subgoals."""

    cpu: str = Field(default="1", description="CPU request and limit of each part's pod.")
    memory: str = Field(default="1Gi", description="Memory request and limit of each part's pod.")
    active_deadline_seconds: int = Field(
        default=900,
        ge=10,
        le=86400,
        description="How long one level's Job may run before it fails (its parts' answers "
        "then missing fail the subgoals).",
    )
