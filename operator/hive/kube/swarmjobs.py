"""Making a swarm level's Indexed Job from the coordinator's template (hive.reconcile.swarmjobs)
and waiting for it to finish: the :class:`hive.runtime.swarmjobs.levels.Launcher` of a
coordinator in a cluster. Its Role may create Jobs and get them, nothing more: the Job is read
by name until its Complete or Failed condition is True."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from lightkube import codecs
from lightkube.resources.batch_v1 import Job

from hive.kube.client import ApiClient
from hive.kube.errors import api_errors


def job_of(
    template: dict[str, Any], name: str, completions: int, parallelism: int
) -> dict[str, Any]:
    """The template with the Job's name, its completions (one per part) and parallelism; its
    pods are told the Job's name (where the parts' prompts and answers are)."""
    job = copy.deepcopy(template)
    job["metadata"]["name"] = name
    job["spec"]["completions"] = completions
    job["spec"]["parallelism"] = parallelism
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["args"] = [*container.get("args", []), "--job", name]
    return job


def finished(job: dict[str, Any]) -> str | None:
    """How the Job ended (Complete, or Failed: reason), or None while it runs."""
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "Complete"
        if condition.get("type") == "Failed":
            return (
                f"Failed: {condition.get('reason') or ''} {condition.get('message') or ''}".strip()
            )
    return None


class KubeJobLauncher:
    def __init__(
        self, client: ApiClient, namespace: str, template: dict[str, Any], *, poll_s: float = 0.5
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.template = template
        self.poll_s = poll_s

    async def run(self, job: str, completions: int, parallelism: int) -> str:
        manifest = job_of(self.template, job, completions, parallelism)
        manifest["metadata"]["namespace"] = self.namespace
        with api_errors(f"Job {self.namespace}/{job}"):
            await self.client.create(codecs.from_dict(manifest))
        while True:
            with api_errors(f"Job {self.namespace}/{job}"):
                current = await self.client.get(Job, job, namespace=self.namespace)
            ended = finished(current.to_dict())
            if ended is not None:
                return ended
            await asyncio.sleep(self.poll_s)
