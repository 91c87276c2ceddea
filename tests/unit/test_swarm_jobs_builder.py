"""spec.swarm.jobs: the coordinator's config carries the Job template of its parts, its Role
may create and get Jobs, the parts' pods have their NetworkPolicy; the launcher fills each
level's Job in and reads how it ended."""

from __future__ import annotations

import datetime as dt
from typing import Any

import yaml

from hive.kube.swarmjobs import finished, job_of
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner, child_name
from hive.runtime.swarmjobs.levels import job_name

OWNER = Owner("AgentTeam", "dbs", "default", "uid-1", generation=1)
SPEC: dict[str, Any] = {
    "goal": "compare",
    "model": {"name": "m", "endpoint": "http://vllm:8000/v1", "secretRef": {"name": "k"}},
    "pattern": "swarm",
    "swarm": {"jobs": {"cpu": "4", "memory": "8Gi", "activeDeadlineSeconds": 600}},
    "agents": [{"name": "lead", "role": "senior"}, {"name": "a", "role": "junior"}],
}


def children(spec: dict[str, Any], redis: str | None = "redis://redis:6380/0") -> list[Any]:
    observed = TeamObserved(deployments={}, sandbox_policies={}, pods={}, nodes_not_ready={})
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    pods = AgentPodSettings(image="hive:t", errors_redis_url=redis)
    return plan_team(OWNER, spec, None, observed, pods, now).children


def named(items: list[Any], kind: str, name: str) -> Any:
    return next((c for c in items if c["kind"] == kind and c["metadata"]["name"] == name), None)


def config_of(items: list[Any], agent: str) -> Any:
    config_map = named(items, "ConfigMap", child_name("dbs", agent, "config"))
    return yaml.safe_load(config_map["data"]["agent.yaml"])


def test_the_coordinator_gets_the_parts_job_template_and_may_make_jobs() -> None:
    items = children(SPEC)
    job = config_of(items, "lead")["swarmJob"]
    assert config_of(items, "a").get("swarmJob") is None
    assert job["kind"] == "Job"
    assert "name" not in job["metadata"]
    assert "blockOwnerDeletion" not in job["metadata"]["ownerReferences"][0]
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["activeDeadlineSeconds"] == 600
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][:2] == ["swarm", "part"]
    assert container["args"][container["args"].index("--endpoint") + 1] == "http://vllm:8000/v1"
    assert container["resources"]["limits"] == {"cpu": "4", "memory": "8Gi"}
    names = {e["name"] for e in container["env"]}
    assert {"HIVE_AGENT__ERRORS_REDIS_URL", "HIVE_MODEL_API_KEY"} <= names
    role = named(items, "Role", child_name("dbs", "lead"))
    assert {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]} in role[
        "rules"
    ]
    other = named(items, "Role", child_name("dbs", "a"))
    assert all("jobs" not in r["resources"] for r in other["rules"])
    policy = named(items, "NetworkPolicy", child_name("dbs", "swarm-part"))
    assert policy["spec"]["ingress"] == []
    assert [p["port"] for p in policy["spec"]["egress"][1]["ports"]] == [6380, 8000]


def test_no_template_without_the_field_or_the_teams_redis() -> None:
    for items in (children({**SPEC, "swarm": {}}), children(SPEC, redis=None)):
        assert config_of(items, "lead").get("swarmJob") is None
        assert named(items, "NetworkPolicy", child_name("dbs", "swarm-part")) is None


def test_a_level_fills_the_template_in() -> None:
    template = config_of(children(SPEC), "lead")["swarmJob"]
    job = job_of(template, "dbs-swarm-abc-1-0", 3, 2)
    assert job["metadata"]["name"] == "dbs-swarm-abc-1-0"
    assert (job["spec"]["completions"], job["spec"]["parallelism"]) == (3, 2)
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][-2:] == [
        "--job",
        "dbs-swarm-abc-1-0",
    ]
    assert "name" not in template["metadata"]  # the template itself is left as it was
    assert finished({"status": {}}) is None
    assert finished({"status": {"conditions": [{"type": "Complete", "status": "True"}]}}) == (
        "Complete"
    )
    failed = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded"}
    assert finished({"status": {"conditions": [failed]}}) == "Failed: DeadlineExceeded"


def test_job_names_are_dns_labels() -> None:
    assert job_name("dbs", "abc123", 2, 0) == "dbs-swarm-abc123-2-0"
    long = job_name("t" * 60, "abc123", 12, 3)
    assert len(long) <= 63
    assert long.endswith("-swarm-abc123-12-3")
    assert long != job_name("t" * 59 + "u", "abc123", 12, 3)
