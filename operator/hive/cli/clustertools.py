"""An agent pod's tool catalog: the namespace's ToolVersions, followed through the API server
while the agent runs (``hive.kube.toolversions``), the Secret values their credentials name, and
the OpenAPI documents they keep in ConfigMaps. The pod's Role grants get on exactly those
Secrets and ConfigMaps (by name, from the ToolVersions of the tools its agent lists), so an
agent reads no other; a document is read again whenever the agent's tools are rebuilt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence

from hive.api.toolversion import ToolVersionSpec
from hive.kube.children import get_object
from hive.kube.client import ApiClient
from hive.kube.toolversions import follow_tool_versions, read_secret_keys
from hive.runtime.tooling.catalog import Catalog
from hive.runtime.tooling.discovery import ClusterFeed, secret_refs
from hive.runtime.tooling.kinds import KindRegistry
from hive.runtime.tooling.openapi import OpenApiKind

log = logging.getLogger(__name__)


class ClusterTools:
    def __init__(self, client: ApiClient, namespace: str) -> None:
        self.client = client
        self.namespace = namespace
        self.catalog = Catalog()
        self.feed = ClusterFeed(self.catalog, namespace)
        self._listed = asyncio.Event()

    def _on_list(self, objects: list[dict[str, object]]) -> None:
        self.feed.on_list(objects)
        self._listed.set()

    async def follow(self) -> None:
        await follow_tool_versions(self.client, self.namespace, self._on_list, self.feed.on_event)

    async def listed(self, timeout_s: float = 10.0) -> None:
        """Until the first list arrived (or `timeout_s`: the agent starts without its tools,
        which come when the API server answers)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listed.wait(), timeout_s)
        if not self._listed.is_set():
            log.warning("no ToolVersions listed in %s yet: starting without them", self.namespace)

    async def secrets_for(self, specs: Sequence[ToolVersionSpec]) -> Mapping[str, str]:
        return await read_secret_keys(self.client, self.namespace, secret_refs(specs))

    async def config_map_key(self, namespace: str, name: str, key: str) -> str | None:
        """The text of `key` in ConfigMap `name`, or None when either is absent."""
        found = await get_object(self.client, "ConfigMap", namespace, name)
        if found is None:
            return None
        value = (found.get("data") or {}).get(key)
        return value if isinstance(value, str) else None

    def kinds(self) -> KindRegistry:
        """Every kind present, the openapi kind reading ConfigMaps through this pod's client."""
        registry = KindRegistry.default()
        registry.register(OpenApiKind(config_maps=self.config_map_key))
        return registry
