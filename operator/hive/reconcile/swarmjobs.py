"""The Job a swarm's coordinator makes for each level of its parts (``spec.swarm.jobs``), and
the NetworkPolicy of those parts' pods.

The operator decides the pods (image, security, resources, placement, the team's Redis and
model key) and hands the Job, less its name, completions and parallelism, to the coordinator in
its config (``swarmJob``); the coordinator (hive.kube.swarmjobs) fills those in per level. The
Job is owned by the team (gone with it, or an hour after it finished); its pods may reach only
DNS, the team's model endpoint and its Redis. Pure: the caller applies.
"""

from __future__ import annotations

from typing import Any

from hive.api.agentteam import AgentTeamSpec
from hive.reconcile.meta import TEAM_LABEL, Owner, child_name, metadata

JSON = dict[str, Any]
PART_COMPONENT = "swarm-part"
FINISHED_TTL_S = 3600


def part_labels(owner: Owner) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "hive-swarm-part",
        "app.kubernetes.io/instance": owner.name,
        "app.kubernetes.io/component": PART_COMPONENT,
        TEAM_LABEL: owner.name,
    }


def swarm_job_template(
    owner: Owner,
    team: AgentTeamSpec,
    *,
    image: str,
    image_pull_policy: str,
    run_as_user: int,
    model_endpoint: str,
    env: list[JSON],
) -> JSON | None:
    """The coordinator's Job template, or None without spec.swarm.jobs. `env`: the team's
    Redis (its URL, and password where it has one) as the agents get it."""
    jobs = team.swarm.jobs
    if jobs is None:
        return None
    labels = part_labels(owner)
    meta = metadata("", owner, labels)
    meta.pop("name")  # the coordinator names each Job
    for reference in meta["ownerReferences"]:
        # the coordinator may not set finalizers on the team (OwnerReferencesPermission...)
        reference.pop("blockOwnerDeletion", None)
    part_env = [dict(e) for e in env]
    if team.model.secret_ref is not None:
        ref = {"name": team.model.secret_ref.name, "key": team.model.secret_ref.key}
        part_env.append({"name": "HIVE_MODEL_API_KEY", "valueFrom": {"secretKeyRef": ref}})
    resources = {"cpu": jobs.cpu, "memory": jobs.memory}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": meta,
        "spec": {
            "completionMode": "Indexed",
            "backoffLimit": 2,
            "activeDeadlineSeconds": jobs.active_deadline_seconds,
            "ttlSecondsAfterFinished": FINISHED_TTL_S,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": run_as_user,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [
                        {
                            "name": "part",
                            "image": image,
                            "imagePullPolicy": image_pull_policy,
                            "args": [
                                "swarm",
                                "part",
                                "--namespace",
                                owner.namespace,
                                "--team",
                                owner.name,
                                "--endpoint",
                                model_endpoint,
                                "--model",
                                team.model.name,
                            ],  # the coordinator adds --job <name>
                            "env": part_env,
                            "resources": {"requests": resources, "limits": resources},
                            "securityContext": {
                                "allowPrivilegeEscalation": False,
                                "readOnlyRootFilesystem": True,
                                "capabilities": {"drop": ["ALL"]},
                            },
                        }
                    ],
                },
            },
        },
    }


def swarm_part_policy(owner: Owner, ports: list[int]) -> JSON:
    """The parts' pods take no connection and reach only DNS and `ports` (model, Redis)."""
    selector = {TEAM_LABEL: owner.name, "app.kubernetes.io/component": PART_COMPONENT}
    dns = {
        "to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(child_name(owner.name, PART_COMPONENT), owner, part_labels(owner)),
        "spec": {
            "podSelector": {"matchLabels": selector},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                dns,
                {"ports": [{"protocol": "TCP", "port": p} for p in sorted(set(ports))]},
            ],
        },
    }


def job_rules() -> list[JSON]:
    """What the coordinator's Role adds: make Jobs and read how they went (none listed)."""
    return [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]}]
