"""A team's agent pods get the Redis their error learning is shared in: the team's MemoryStore
of backend redis, or the operator's default; a wrong store is a clear reason, not a crash."""

from __future__ import annotations

from typing import Any

from hive.reconcile.agentteam import AgentPodSettings, TeamPlan
from hive.reconcile.learning import PASSWORD_ENV, URL_ENV
from hive.reconcile.meta import Owner
from tests.unit import planned
from tests.unit.planned import egress_ports, env, ready

OWNER = Owner("AgentTeam", "research", "default", "uid-1", generation=3)
REDIS: dict[str, Any] = {
    "backend": "redis",
    "connection": {"endpoint": "redis://redis.data:6380/2"},
    "collection": "mem",
}


def spec(store: str | None = "shared") -> dict[str, Any]:
    out: dict[str, Any] = {
        "goal": "answer",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "agents": [{"name": "lead", "role": "senior"}],
    }
    if store:
        out["resilience"] = {"learning": {"memoryRef": {"name": store}}}
    return out


def plan(
    s: dict[str, Any], stores: dict[str, Any] | None = None, default: str | None = None
) -> TeamPlan:
    pods = AgentPodSettings(image="hive:test", errors_redis_url=default)
    return planned.plan(s, stores, pods, OWNER)


def test_the_teams_redis_store_reaches_every_agent_pod() -> None:
    p = plan(spec(), {"shared": REDIS}, default="redis://other:6379/0")
    assert env(p)[URL_ENV] == "redis://redis.data:6380/2", "the team's store wins"
    assert PASSWORD_ENV not in env(p)
    assert 6380 in egress_ports(p)


def test_a_password_comes_from_the_stores_secret_never_the_deployment() -> None:
    store = {**REDIS, "connection": {**REDIS["connection"], "secretRef": {"name": "redis-pw"}}}
    seen = env(plan(spec(), {"shared": store}))
    assert seen[PASSWORD_ENV] == {"secretKeyRef": {"name": "redis-pw", "key": "api-key"}}
    assert seen[URL_ENV] == f"redis://:$({PASSWORD_ENV})@redis.data:6380/2"
    names = list(env(plan(spec(), {"shared": store})))
    assert names.index(PASSWORD_ENV) < names.index(URL_ENV), "defined before it is expanded"


def test_without_a_store_the_operators_default_or_nothing() -> None:
    assert env(plan(spec(None), default="redis://r:6379/0"))[URL_ENV] == "redis://r:6379/0"
    assert 6379 in egress_ports(plan(spec(None), default="redis://r:6379/0"))
    assert URL_ENV not in env(plan(spec(None)))


def test_a_missing_store_is_a_reason_and_the_agents_keep_running() -> None:
    p = plan(spec("gone"))
    assert (ready(p).status, ready(p).reason) == ("False", "MemoryStoreNotFound")
    assert ready(p).message == "spec.resilience.learning.memoryRef: MemoryStore 'gone' not found"
    assert URL_ENV not in env(p), "the pods learn in memory meanwhile"


def test_a_store_that_is_not_redis_is_a_reason() -> None:
    weaviate = {"backend": "weaviate", "connection": {"endpoint": "http://w:8080"}}
    p = plan(spec(), {"shared": weaviate})
    assert (ready(p).status, ready(p).reason) == ("False", "LearningStoreNotRedis")
    assert "backend 'weaviate'" in ready(p).message
    assert "spec.resilience.learning.memoryRef" in ready(p).message
