"""A pod's HTTP port through the API server's pod proxy (``pods/NAME:PORT/proxy``): the caller
needs nothing but its kubeconfig and the right to proxy to the pod, no port on its machine."""

from __future__ import annotations

import httpx2
from lightkube import Client
from lightkube.config.client_adapter import AsyncClient as adapted_client
from lightkube.config.client_adapter import ConnectionParams
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.core_v1 import Pod

from hive.errors import InvalidInput
from hive.kube.errors import api_errors
from hive.reconcile.meta import AGENT_LABEL, TEAM_LABEL


def running_agent_pod(client: Client, namespace: str, team: str, agent: str) -> str:
    """The name of a running pod of `agent` in `team` (the newest)."""
    with api_errors(f"pods of AgentTeam {namespace}/{team}"):
        pods = list(
            client.list(Pod, namespace=namespace, labels={TEAM_LABEL: team, AGENT_LABEL: agent})
        )
    running = [p for p in pods if p.status is not None and p.status.phase == "Running"]
    if not running:
        raise InvalidInput(
            f"AgentTeam {namespace}/{team}", f"no running pod of its coordinator {agent}"
        )
    names = sorted(
        (str(p.metadata.creationTimestamp), str(p.metadata.name)) for p in running if p.metadata
    )
    return names[-1][1]


def pod_proxy(
    config: KubeConfig, namespace: str, pod: str, port: int, *, timeout_s: float = 60.0
) -> httpx2.AsyncClient:
    """An HTTP client whose paths go to `pod`'s `port`, through the API server."""
    single = config.get()
    if single is None:
        raise InvalidInput("kubeconfig", "has no current context")
    client = adapted_client(single, ConnectionParams())
    client.base_url = httpx2.URL(
        f"{single.cluster.server.rstrip('/')}/api/v1/namespaces/{namespace}/pods/{pod}:{port}/proxy"
    )
    client.timeout = httpx2.Timeout(timeout_s)
    return client
