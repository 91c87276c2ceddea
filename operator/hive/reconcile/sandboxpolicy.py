"""SandboxPolicy: its consistency checks, its RuntimeClass and egress rules.

The checks are plain comparisons, said as such in ``status.verification``:

- no module is both allowed and denied (an allow entry under a deny entry, or a deny entry under
  an allow entry, is a contradiction the author should resolve);
- the CPU-time limit can be used up before the wall-clock timeout with the CPUs given;
- the memory limit leaves room for the interpreter (at least 32 MiB).

That a denied module (and every submodule of one) is refused whatever the allow list says is not
a check on the policy: it is how the sandbox's import hook decides (deny first).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from hive.api.common import describe_validation_error
from hive.api.sandboxpolicy import NetworkMode, SandboxPolicySpec, SandboxPolicyStatus
from hive.reconcile.conditions import condition, merge_conditions, previous_conditions
from hive.reconcile.meta import POLICY_LABEL, Owner, child_name, metadata

JSON = dict[str, Any]
MIN_INTERPRETER_BYTES = 32 * 1024 * 1024
_UNITS = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(text: str) -> float:
    """A Kubernetes quantity ('250m', '1.5', '256Mi') as a number."""
    if text.endswith("m") and not text.endswith("Mi"):
        return float(text[:-1]) / 1000
    for suffix in sorted(_UNITS, key=len, reverse=True):
        if suffix and text.endswith(suffix):
            return float(text[: -len(suffix)]) * _UNITS[suffix]
    return float(text)


@dataclass(frozen=True)
class Proof:
    """The outcome of the policy's checks; `message` says in plain words what was checked."""

    holds: bool
    message: str


def _covers(entry: str, module: str) -> bool:
    """`module` is `entry` or a submodule of it."""
    return module == entry or module.startswith(entry + ".")


def _both_allowed_and_denied(allow: Sequence[str], deny: Sequence[str]) -> str | None:
    """The first module name that an allow entry and a deny entry both cover, if any."""
    for allowed in allow:
        for denied in deny:
            if _covers(denied, allowed):
                return allowed
            if _covers(allowed, denied):
                return denied
    return None


def _mebibytes(n: float) -> str:
    return f"{n / 2**20:g}Mi"


def verify(policy: SandboxPolicySpec) -> Proof:
    """Run the checks in this module's docstring; the first that fails says why."""
    modules, limits = policy.modules, policy.limits
    both = _both_allowed_and_denied(modules.allow, modules.deny)
    if both is not None:
        return Proof(False, f"spec.modules: '{both}' is both allowed and denied")
    cpus = quantity(limits.cpu)
    if limits.cpu_seconds > limits.timeout_seconds * cpus:
        return Proof(
            False,
            f"spec.limits.cpuSeconds: {limits.cpu_seconds:g}s of CPU cannot be used within "
            f"timeoutSeconds {limits.timeout_seconds:g}s on {cpus:g} CPU(s)",
        )
    memory = quantity(limits.memory)
    if memory < MIN_INTERPRETER_BYTES:
        return Proof(
            False, f"spec.limits.memory: {limits.memory} is below the 32Mi an interpreter needs"
        )
    listed = (
        f"{len(modules.allow)} allowed and {len(modules.deny)} denied module entries"
        if modules.allow
        else f"{len(modules.deny)} denied module entries (everything else allowed)"
    )
    return Proof(
        True,
        f"checked: no module is both allowed and denied ({listed}); "
        f"{limits.cpu_seconds:g}s of CPU fits in the {limits.timeout_seconds:g}s timeout on "
        f"{cpus:g} CPU(s); {_mebibytes(memory)} of memory leaves the interpreter its 32Mi",
    )


def runtime_class(policy: SandboxPolicySpec) -> JSON:
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {
            "name": policy.runtime_class_name,
            "labels": {"app.kubernetes.io/managed-by": "hive-operator"},
        },
        "handler": "runsc",
    }


def egress_policy(owner: Owner, policy: SandboxPolicySpec) -> JSON | None:
    """Extra egress for bound agents when the policy has an allowlist (NetworkPolicies add up).

    IP addresses and CIDRs become ipBlocks; DNS names can only be limited to their ports here,
    and are held to their names by the sandbox's own egress check.
    """
    if policy.network.mode != NetworkMode.ALLOWLIST:
        return None
    rules = []
    for rule in policy.network.egress:
        ports = [{"protocol": "TCP", "port": p} for p in rule.ports]
        if rule.host[0].isdigit():
            cidr = rule.host if "/" in rule.host else f"{rule.host}/32"
            rules.append({"to": [{"ipBlock": {"cidr": cidr}}], "ports": ports})
        else:
            rules.append({"ports": ports})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(child_name("sandbox", owner.name), owner, {POLICY_LABEL: owner.name}),
        "spec": {
            "podSelector": {"matchLabels": {POLICY_LABEL: owner.name}},
            "policyTypes": ["Egress"],
            "egress": rules,
        },
    }


def bound_agents(policy: str, teams: Sequence[Mapping[str, Any]]) -> list[str]:
    bound = []
    for team in teams:
        for agent in (team.get("spec") or {}).get("agents") or []:
            ref = agent.get("sandboxPolicyRef") or {}
            if ref.get("name") == policy:
                bound.append(f"{team['metadata']['name']}/{agent.get('name')}")
    return sorted(bound)


@dataclass(frozen=True)
class PolicyPlan:
    runtime_class: JSON | None
    children: list[JSON]
    status: SandboxPolicyStatus


def plan_policy(
    owner: Owner,
    spec: Mapping[str, Any],
    previous_status: Mapping[str, Any] | None,
    teams: Sequence[Mapping[str, Any]],
    now: dt.datetime,
) -> PolicyPlan:
    previous = previous_conditions(previous_status)
    bound = bound_agents(owner.name, teams)
    try:
        policy = SandboxPolicySpec.model_validate(dict(spec))
    except ValidationError as exc:
        ready = condition(
            "Ready",
            False,
            "InvalidSpec",
            describe_validation_error(exc),
            generation=owner.generation,
            now=now,
        )
        return PolicyPlan(
            None,
            [],
            SandboxPolicyStatus(
                observed_generation=owner.generation,
                bound_agents=bound,
                bound_agent_count=len(bound),
                conditions=merge_conditions(previous, [ready]),
            ),
        )
    proof = verify(policy)
    ready = condition(
        "Ready",
        proof.holds,
        "Verified" if proof.holds else "CannotHold",
        proof.message,
        generation=owner.generation,
        now=now,
    )
    egress = egress_policy(owner, policy)
    return PolicyPlan(
        runtime_class(policy),
        [egress] if egress else [],
        SandboxPolicyStatus(
            observed_generation=owner.generation,
            bound_agents=bound,
            bound_agent_count=len(bound),
            verified=proof.holds,
            verification=proof.message,
            conditions=merge_conditions(previous, [ready]),
        ),
    )
