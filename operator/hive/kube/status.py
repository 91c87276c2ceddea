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
