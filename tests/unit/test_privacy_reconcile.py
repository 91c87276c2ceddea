"""A team's privacy key reaches its agent pods from the Secret it names, and only then."""

from __future__ import annotations

from tests.unit.test_agentteam_reconcile import child, plan, spec


def env_of(team: dict) -> dict[str, dict]:
    pod = child(plan(team), "Deployment", "research-lead")["spec"]["template"]["spec"]
    return {e["name"]: e for e in pod["containers"][0]["env"]}


def test_the_pseudonym_key_comes_from_the_named_secret() -> None:
    privacy = {"mode": "fast", "keySecretRef": {"name": "privacy", "key": "pseudonyms"}}
    env = env_of(spec(privacy=privacy))
    assert env["HIVE_PRIVACY__KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "privacy", "key": "pseudonyms"}
    }


def test_no_key_without_a_secret_or_a_policy() -> None:
    assert "HIVE_PRIVACY__KEY" not in env_of(spec(privacy={"mode": "fast"}))
    assert "HIVE_PRIVACY__KEY" not in env_of(spec())
