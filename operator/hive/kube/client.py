"""Clients for the Kubernetes API, built from a kubeconfig or the in-cluster service account.

The async client (the operator's) counts every request it sends by HTTP method
(``hive_kube_requests_total``): what a reconcile or a resync costs the API server, and that a
resync of unchanged objects writes nothing, can be read off /metrics.
"""

from __future__ import annotations

from pathlib import Path

import httpx2
from lightkube import AsyncClient, Client, KubeConfig
from lightkube.config.client_adapter import verify_cluster
from lightkube.core.exceptions import ConfigError
from prometheus_client import Counter

from hive.errors import InvalidInput
from hive.settings import KubeSettings

ApiClient = AsyncClient  # what the layers above hold, without importing lightkube
CONNECTIONS = 100  # open to the API server at most, and kept open
REQUESTS = Counter(
    "hive_kube_requests", "Requests sent to the Kubernetes API server, by HTTP method.", ["method"]
)


async def _count(request: httpx2.Request) -> None:
    REQUESTS.labels(request.method).inc()


def load_config(kubeconfig: Path | None, service_account_dir: Path | None = None) -> KubeConfig:
    """The kubeconfig at `kubeconfig`, else in-cluster (the service account) or the default file."""
    try:
        if kubeconfig is not None:
            if not kubeconfig.exists():
                raise InvalidInput("kubeconfig", f"file {kubeconfig} does not exist")
            return KubeConfig.from_file(kubeconfig)
        if service_account_dir is not None:
            return KubeConfig.from_env(service_account=service_account_dir)
        return KubeConfig.from_env()
    except ConfigError as exc:
        raise InvalidInput("kubeconfig", str(exc)) from exc


def _kept_alive(config: KubeConfig) -> httpx2.AsyncHTTPTransport | None:
    """A transport that keeps every connection it opens (httpx keeps 20 of its 100): many
    reconciles at once each apply their children a few at a time, and each request past the
    20 kept would otherwise open a connection, a TLS handshake, and close it again."""
    selected = config.get()
    if selected is None or selected.user is None:  # lightkube's own transport then
        return None
    tls = verify_cluster(selected.cluster, selected.user, selected.abs_file)
    limits = httpx2.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    return httpx2.AsyncHTTPTransport(verify=tls, limits=limits)


def async_client(settings: KubeSettings, *, field_manager: str = "hive") -> AsyncClient:
    config = load_config(settings.kubeconfig, settings.service_account_dir)
    client = AsyncClient(
        config,
        field_manager=field_manager,
        timeout=httpx2.Timeout(settings.request_timeout_s),
        transport=_kept_alive(config),
    )
    # lightkube builds its httpx client itself; its request hooks are the one place that
    # sees every request (lists and watches included)
    client._client._client.event_hooks["request"].append(_count)
    return client


def sync_client(settings: KubeSettings, *, field_manager: str = "hive") -> Client:
    return Client(
        load_config(settings.kubeconfig, settings.service_account_dir),
        field_manager=field_manager,
        timeout=httpx2.Timeout(settings.request_timeout_s),
    )


def connection_details(settings: KubeSettings) -> dict[str, str | None]:
    """Server URL and credentials from the kubeconfig, for clients that log in on their own."""
    selected = load_config(settings.kubeconfig, settings.service_account_dir).get()
    if selected is None:
        raise InvalidInput("kubeconfig", "has no current context")
    cluster, user = selected.cluster, selected.user

    def path(value: str | None) -> str | None:
        return str(selected.abs_file(value)) if value else None

    return {
        "server": cluster.server,
        "ca_path": path(cluster.certificate_auth),
        "ca_data": cluster.certificate_auth_data,
        "certificate_path": path(user.client_cert) if user else None,
        "certificate_data": user.client_cert_data if user else None,
        "private_key_path": path(user.client_key) if user else None,
        "private_key_data": user.client_key_data if user else None,
        "token": user.token if user else None,
        "namespace": selected.namespace,
    }
