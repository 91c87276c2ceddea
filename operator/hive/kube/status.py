"""Status writes with server-side apply, each writer under its own field manager.

The operator owns ``phase``, ``observedGeneration``, counts and ``conditions``; each agent owns
its own entry of ``status.agents`` (a list-map keyed by name). Because every writer applies only
the fields it owns, no writer ever overwrites another's.
"""

from __future__ import annotations

from typing import Any

from lightkube import AsyncClient
from lightkube.types import PatchType

from hive.api import API_VERSION
from hive.api.agentteam import RunStatus
from hive.kube.errors import api_errors
from hive.kube.resources import FIELD_MANAGER, resource


async def apply_status(
    client: AsyncClient,
    kind: str,
    namespace: str,
    name: str,
    status: dict[str, Any],
    *,
    field_manager: str = FIELD_MANAGER,
) -> None:
    """Apply `status` as `field_manager` owns it; fields it leaves out it gives up."""
    body = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "status": status,
    }
    with api_errors(f"{kind} {namespace}/{name}"):
        await client.patch(
            resource(kind).Status,
            name,
            body,
            namespace=namespace,
            patch_type=PatchType.APPLY,
            field_manager=field_manager,
            force=True,
        )


async def _team(client: AsyncClient, namespace: str, name: str) -> Any:
    with api_errors(f"AgentTeam {namespace}/{name}"):
        return await client.get(resource("AgentTeam"), name, namespace=namespace)


async def team_generation(client: AsyncClient, namespace: str, name: str) -> int:
    team = await _team(client, namespace, name)
    return int(team.metadata.generation or 0)


async def team_run(client: AsyncClient, namespace: str, name: str) -> RunStatus | None:
    team = await _team(client, namespace, name)
    run = (team.status or {}).get("run")
    return RunStatus.model_validate(run) if run else None
