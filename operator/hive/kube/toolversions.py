"""Following the ToolVersions of a namespace for a running agent, and reading the Secret values
their credentials name (one Secret at a time, never listed).

`follow_tool_versions` lists the namespace's ToolVersions, hands them over whole, then watches
from the list's resourceVersion and hands over each change; when the watch ends or fails (the
API server restarted, the resourceVersion expired) it lists again, so a change missed while
disconnected is still seen. Needs get, list and watch on toolversions in the namespace (the
agent's Role).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from lightkube import ApiError

from hive.kube.client import ApiClient
from hive.kube.errors import api_errors
from hive.kube.resources import resource
from hive.kube.secrets import read_secret

log = logging.getLogger(__name__)

OnList = Callable[[list[dict[str, Any]]], None]
OnEvent = Callable[[str, dict[str, Any]], None]  # ("ADDED" | "MODIFIED" | "DELETED", object)


async def follow_tool_versions(
    client: ApiClient,
    namespace: str,
    on_list: OnList,
    on_event: OnEvent,
    *,
    retry_s: float = 1.0,
    server_timeout_s: int = 300,
) -> None:
    """Until cancelled: the namespace's ToolVersions, whole and then change by change."""
    kind = resource("ToolVersion")
    failures = 0
    while True:
        try:
            with api_errors(f"ToolVersions in {namespace}"):
                listing = client.list(kind, namespace=namespace)
                objects = [dict(o.to_dict()) async for o in listing]
                version = _list_version(listing)
            on_list(objects)
            failures = 0
            async for event, obj in client.watch(
                kind,
                namespace=namespace,
                resource_version=version,
                server_timeout=server_timeout_s,
            ):
                on_event(event, dict(obj.to_dict()))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the watch is relisted: nothing a change needs is lost
            failures += 1
            wait = min(30.0, retry_s * 2 ** min(failures - 1, 5))
            if not (isinstance(exc, ApiError) and exc.status.code == 410):
                log.warning(
                    "watching ToolVersions in %s: %s (again in %.1f s)", namespace, exc, wait
                )
            await asyncio.sleep(wait)


def _list_version(listing: Any) -> str | None:
    try:
        return str(listing.resourceVersion)
    except Exception:  # an empty list may come without one: watch from now
        return None


async def read_secret_keys(
    client: ApiClient, namespace: str, refs: Iterable[tuple[str, str]]
) -> Mapping[str, str]:
    """{"<secret>/<key>": value} for each (secret, key) present."""
    values: dict[str, str] = {}
    for name in sorted({secret for secret, _ in refs}):
        data = await read_secret(client, namespace, name)
        for secret, key in refs:
            if secret == name and data is not None and key in data:
                values[f"{secret}/{key}"] = data[key]
    return values
