"""`hive swarm part`: one part of a swarm's Indexed Job, in its pod (spec.swarm.jobs); and the
coordinator pod's wiring of the Jobs it makes."""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING, Any

import click

from hive.cli.errors import one_line_errors
from hive.errors import InvalidInput
from hive.settings import Settings, get_settings

if TYPE_CHECKING:
    from hive.runtime.pod import PodConfig
    from hive.runtime.swarmjobs.levels import SwarmJobs


@click.group()
def swarm() -> None:
    """Swarm subgoals run as Kubernetes Jobs."""


@swarm.command("part")
@click.option("--namespace", required=True, help="The team's namespace.")
@click.option("--team", required=True, help="The team.")
@click.option("--job", required=True, help="The Job (where its parts' prompts are).")
@click.option("--endpoint", required=True, help="The team's model endpoint.")
@click.option("--model", "model_name", required=True, help="The team's model name.")
@one_line_errors
def part(namespace: str, team: str, job: str, endpoint: str, model_name: str) -> None:
    """Answer the part of JOB at this pod's completion index (JOB_COMPLETION_INDEX) with the
    team's model, recording the answer in the team's Redis (HIVE_AGENT__ERRORS_REDIS_URL)."""
    from hive.runtime.models import OpenAICompatible
    from hive.runtime.swarmjobs.part import answer_part

    settings = get_settings()
    index_text = os.environ.get("JOB_COMPLETION_INDEX", "")
    if not index_text.isdigit():
        raise InvalidInput("JOB_COMPLETION_INDEX", "not set: run as a pod of an Indexed Job")
    redis_url = settings.agent.errors_redis_url
    if not redis_url:
        raise InvalidInput("HIVE_AGENT__ERRORS_REDIS_URL", "the team's Redis is required")
    key = settings.model_api_key.get_secret_value() if settings.model_api_key else None
    model = OpenAICompatible(endpoint, model_name, api_key=key)

    async def main() -> bool:
        try:
            return await answer_part(redis_url, namespace, team, job, int(index_text), model)
        finally:
            await model.aclose()

    recorded = asyncio.run(main())
    click.echo(f"part {index_text} of {job}: {'answered' if recorded else 'answered before'}")


def pod_swarm_jobs(config: PodConfig, settings: Settings, client: Any) -> SwarmJobs | None:
    """The coordinator's Jobs for its swarm's parts, where the operator gave it their template
    (spec.swarm.jobs, and the team's Redis)."""
    if config.swarm_job is None or not config.is_coordinator:
        return None
    redis_url = settings.agent.errors_redis_url
    if not redis_url:
        return None
    from hive.kube.swarmjobs import KubeJobLauncher
    from hive.runtime.swarmjobs.levels import SwarmJobs

    launcher = KubeJobLauncher(client, config.namespace, config.swarm_job)
    return SwarmJobs(redis_url, config.namespace, config.team, launcher)
