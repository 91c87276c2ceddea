"""`hive debug TEAM` reaches the coordinator's debug port through the API server's pod proxy,
with the kubeconfig's credentials for the API server and the caller's token for the pod."""

from __future__ import annotations

import httpx2
from lightkube.config.kubeconfig import KubeConfig
from lightkube.config.models import Cluster, User

from hive.cli.debugcmd import Remote
from hive.kube.podproxy import pod_proxy
from hive.runtime.debug.server import TOKEN_HEADER


async def test_the_pod_proxy_path_and_the_callers_token() -> None:
    config = KubeConfig.from_one(
        cluster=Cluster(server="https://api.example:6443"), user=User(token="users-token")
    )
    client = pod_proxy(config, "bees-ns", "lead-7d9f", 8092)
    seen: list[httpx2.Request] = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"ok": True})

    client._transport = httpx2.MockTransport(answer)  # the unit under test is the request
    assert await Remote(client, "users-token").call("GET", "/debug") == {"ok": True}
    (request,) = seen
    assert str(request.url) == (
        "https://api.example:6443/api/v1/namespaces/bees-ns/pods/lead-7d9f:8092/proxy/debug"
    )
    assert request.headers["Authorization"] == "Bearer users-token"  # for the API server
    assert request.headers[TOKEN_HEADER] == "users-token"  # for the pod, whatever the proxy keeps
