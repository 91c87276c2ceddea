"""The agents' own keys: each agent pod holds its own, every agent's configuration the team's
public signing keys, each sandbox pod the keys of its callers."""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import replace
from typing import Any

import yaml

from hive.reconcile.agentkeys import agent_key, keys_secret, team_key
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner
from hive.runtime.identity.peerauth import public_key_text
from hive.runtime.sandbox.bootstrap import run_proof

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = Owner("AgentTeam", "research", "default", "uid-1", generation=1)
MASTER = b"m" * 32
PODS = AgentPodSettings(image="hive:test", sandbox_key=MASTER)
PYTHON = [{"name": "python", "version": "^1"}]
POLICIES = {p: {"runtimeClassName": "gvisor", "network": {"mode": "none"}} for p in ("a", "b")}


def team() -> dict[str, Any]:
    return {
        "goal": "answer",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1"},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["one", "two", "three"]},
            {"name": "one", "role": "junior", "sandboxPolicyRef": {"name": "a"}, "tools": PYTHON},
            {"name": "two", "role": "junior", "sandboxPolicyRef": {"name": "b"}, "tools": PYTHON},
            {"name": "three", "role": "junior", "sandboxPolicyRef": {"name": "a"}},
        ],
    }


def children(pods: AgentPodSettings = PODS) -> dict[tuple[str, str], dict[str, Any]]:
    observed = TeamObserved(sandbox_policies=POLICIES)
    plan = plan_team(OWNER, team(), None, observed, pods, T0)
    return {(c["kind"], c["metadata"]["name"]): c for c in plan.children}


def pod(objects: dict[tuple[str, str], dict[str, Any]], name: str) -> dict[str, Any]:
    spec: dict[str, Any] = objects[("Deployment", name)]["spec"]["template"]["spec"]
    return spec


def secret_volumes(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v["secret"] for v in spec["volumes"] if "secret" in v}


def test_every_agent_gets_its_own_key_and_every_config_the_teams_public_keys() -> None:
    objects = children()
    secret = objects[("Secret", "research-agent-keys")]
    assert sorted(secret["data"]) == ["lead", "one", "three", "two"]
    keys = {name: bytes.fromhex(base64.b64decode(v).decode()) for name, v in secret["data"].items()}
    assert len(set(keys.values())) == 4
    assert keys["one"] == agent_key(team_key(MASTER, OWNER), "one")
    for agent in keys:
        config = yaml.safe_load(
            objects[("ConfigMap", f"research-{agent}-config")]["data"]["agent.yaml"]
        )
        assert config["peerKeys"] == {name: public_key_text(k) for name, k in keys.items()}


def test_an_agent_pod_mounts_its_own_key_and_nothing_else() -> None:
    objects = children()
    for agent in ("lead", "one", "three"):
        spec = pod(objects, f"research-{agent}")
        volume = secret_volumes(spec)["agent-key"]
        assert volume["secretName"] == "research-agent-keys"
        assert volume["items"] == [{"key": agent, "path": "key"}]
        assert volume["defaultMode"] == 0o440
        mounts = {m["name"]: m for m in spec["containers"][0]["volumeMounts"]}
        assert mounts["agent-key"]["mountPath"] == "/etc/hive/identity"
        assert mounts["agent-key"]["readOnly"] is True


def test_a_sandbox_pod_holds_only_the_keys_of_its_policys_callers() -> None:
    objects = children()
    for policy, callers in (("a", ["one"]), ("b", ["two"])):
        spec = pod(objects, f"research-sandbox-{policy}")
        volume = secret_volumes(spec)["callers"]
        assert [item["key"] for item in volume["items"]] == callers
        assert volume["defaultMode"] == 0o400, "root's: the runs inside cannot read them"
        args = spec["containers"][0]["args"]
        assert args[args.index("--callers") + 1] == "/etc/hive/callers"


def test_without_a_master_key_no_key_is_given_out_and_the_sandbox_refuses_every_run() -> None:
    objects = children(replace(PODS, sandbox_key=None))
    assert not any(kind == "Secret" for kind, _ in objects)
    sandbox = pod(objects, "research-sandbox-a")
    assert secret_volumes(sandbox) == {}
    assert "--callers" in sandbox["containers"][0]["args"], "an empty callers folder: no runs"
    assert secret_volumes(pod(objects, "research-one")) == {}
    config = objects[("ConfigMap", "research-one-config")]["data"]["agent.yaml"]
    assert yaml.safe_load(config)["peerKeys"] is None, "no keys: peers take unsigned calls"


def test_keys_are_stable_across_reconciles_and_new_for_a_new_team_under_the_same_name() -> None:
    first = keys_secret(OWNER, MASTER, ["one"], {})
    assert keys_secret(OWNER, MASTER, ["one"], {}) == first
    again = keys_secret(replace(OWNER, uid="uid-2"), MASTER, ["one"], {})
    assert again["data"] != first["data"], "deleted and made again: a new UID, new keys"
    other_master = keys_secret(OWNER, b"n" * 32, ["one"], {})
    assert other_master["data"] != first["data"]


def test_a_proof_binds_the_key_the_nonce_the_run_and_its_limits() -> None:
    key = agent_key(team_key(MASTER, OWNER), "one")
    limits = {"timeout_s": 1.5, "deny": ["socket"]}
    proof = run_proof(key, "n1", "r1", "print(1)", limits)
    assert proof == run_proof(key, "n1", "r1", "print(1)", dict(reversed(limits.items())))
    others = [
        run_proof(agent_key(team_key(MASTER, OWNER), "two"), "n1", "r1", "print(1)", limits),
        run_proof(key, "n2", "r1", "print(1)", limits),
        run_proof(key, "n1", "r2", "print(1)", limits),
        run_proof(key, "n1", "r1", "print(2)", limits),
        run_proof(key, "n1", "r1", "print(1)", {**limits, "timeout_s": 60}),
    ]
    assert proof not in others
    assert len(set(others)) == len(others)
