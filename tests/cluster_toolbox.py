"""An agent pod's tools as the pod holds them in a cluster: its catalog (`ClusterTools`)
following the namespace's tool objects on the real API server, and a Toolbox over it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from lightkube import AsyncClient

from hive.kube.client import async_client
from hive.runtime.toolbox import Toolbox
from hive.settings import KubeSettings


@asynccontextmanager
async def cluster_toolbox(
    kubeconfig: Path, namespace: str
) -> AsyncIterator[tuple[AsyncClient, Toolbox]]:
    """The pod's client (logged in with `kubeconfig`) and a Toolbox for `namespace` whose
    catalog has listed the namespace's tool objects once and follows them; all closed after."""
    from hive.cli.clustertools import ClusterTools

    client = async_client(KubeSettings(kubeconfig=kubeconfig))
    tools = ClusterTools(client, namespace)
    following = asyncio.create_task(tools.follow())
    toolbox = Toolbox(catalog=tools.catalog, kinds=tools.kinds(), secrets_for=tools.secrets_for)
    toolbox.namespace = namespace
    try:
        await tools.listed()
        yield client, toolbox
    finally:
        following.cancel()
        await toolbox.close()
        await client.close()
