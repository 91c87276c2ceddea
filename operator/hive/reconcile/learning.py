"""Where a team's agents share what they learn about errors: a Redis, given to their pods.

The team names a MemoryStore of backend redis in ``spec.resilience.learning.memoryRef``; its
endpoint becomes ``HIVE_AGENT__ERRORS_REDIS_URL`` of every agent container, with the store's
``secretRef`` (if any) as the password, read from the Secret into ``HIVE_ERRORS_REDIS_PASSWORD``
and put into the URL by Kubernetes' ``$(VAR)`` expansion, so the password is never in the
Deployment. A team without a ref gets the operator's ``errorsRedisUrl`` if one is set, else
nothing (each pod learns alone, in memory). A ref to a missing store, or to one that is not
redis, is a problem the team reports (Ready False) instead of pods that cannot connect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from hive.api.agentteam import AgentTeamSpec

JSON = dict[str, Any]
URL_ENV = "HIVE_AGENT__ERRORS_REDIS_URL"
PASSWORD_ENV = "HIVE_ERRORS_REDIS_PASSWORD"  # noqa: S105 - the variable's name, not a secret


@dataclass(frozen=True)
class LearningWiring:
    """The env of the agent containers, the Redis port they must reach, or what is wrong."""

    env: list[JSON] = field(default_factory=list)
    port: int | None = None
    problem: tuple[str, str] | None = None  # (reason, message naming the field)


def _port(url: str) -> int | None:
    try:
        parts = urlsplit(url)
        return parts.port or (6379 if parts.scheme in ("redis", "rediss") else None)
    except ValueError:
        return None


def _with_password(url: str) -> str:
    """`url` with $(PASSWORD_ENV) as its password (Kubernetes expands it from the env)."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f":$({PASSWORD_ENV})@{host}").geturl()


def learning_wiring(
    team: AgentTeamSpec, stores: Mapping[str, Mapping[str, Any]], default_url: str | None
) -> LearningWiring:
    """How the team's pods reach their error-learning Redis, from the MemoryStores observed
    (name -> spec) and the operator's default URL."""
    ref = team.resilience.learning.memory_ref
    if ref is None:
        if not default_url:
            return LearningWiring()
        return LearningWiring([{"name": URL_ENV, "value": default_url}], _port(default_url))
    where = "spec.resilience.learning.memoryRef"
    store = stores.get(ref.name)
    if store is None:
        return LearningWiring(
            problem=("MemoryStoreNotFound", f"{where}: MemoryStore '{ref.name}' not found")
        )
    connection = store.get("connection") or {}
    endpoint = str(connection.get("endpoint") or "")
    if store.get("backend") != "redis" or not endpoint.startswith("redis"):
        return LearningWiring(
            problem=(
                "LearningStoreNotRedis",
                f"{where}: MemoryStore '{ref.name}' has backend "
                f"'{store.get('backend')}'; error learning needs backend redis",
            )
        )
    secret = connection.get("secretRef") or {}
    if not secret.get("name"):
        return LearningWiring([{"name": URL_ENV, "value": endpoint}], _port(endpoint))
    password = {
        "name": PASSWORD_ENV,
        "valueFrom": {
            "secretKeyRef": {"name": secret["name"], "key": secret.get("key") or "api-key"}
        },
    }
    url = {"name": URL_ENV, "value": _with_password(endpoint)}
    return LearningWiring([password, url], _port(endpoint))


def allow_egress(policy: JSON, port: int) -> None:
    """Let an agent's NetworkPolicy reach `port` over TCP, next to its API ports."""
    for rule in policy.get("spec", {}).get("egress", []):
        ports = rule.get("ports")
        if "to" not in rule and ports is not None:
            if not any(p.get("port") == port for p in ports):
                ports.append({"protocol": "TCP", "port": port})
            return
