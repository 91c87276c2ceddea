"""SandboxPolicy: a Z3 proof that the policy can hold, its RuntimeClass and egress rules.

The proof encodes the policy as constraints and asks Z3 for a counterexample to each property;
``unsat`` means the property holds for every module name and every execution:

- no module is both allowed and denied (an allow entry shadowed by a deny entry is dead);
- every denied module, and every submodule of one, is refused whatever the allow list says;
- the CPU-time limit can be reached before the wall-clock timeout with the CPUs given;
- the memory limit leaves room for the interpreter (at least 32 MiB).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import z3
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
    holds: bool
    message: str


def _module_in(module: z3.SeqRef, entries: Sequence[str], ctx: z3.Context) -> z3.BoolRef:
    """`module` is one of `entries` or a submodule of one."""
    return (
        z3.Or(
            [
                z3.Or(
                    module == z3.StringVal(e, ctx), z3.PrefixOf(z3.StringVal(e + ".", ctx), module)
                )
                for e in entries
            ]
        )
        if entries
        else z3.BoolVal(False, ctx)
    )


def verify(policy: SandboxPolicySpec) -> Proof:
    """Prove the properties in this module's docstring, or return the first counterexample.

    Every call works in a Z3 context of its own: Z3's default context is not thread-safe, and
    the admission webhook (in kopf's thread pool) and the reconciler may prove at once.
    """
    ctx = z3.Context()
    module = z3.String("module", ctx)
    allowed_entry = _module_in(module, policy.modules.allow, ctx)
    denied = _module_in(module, policy.modules.deny, ctx)
    importable = z3.And(
        z3.Or(z3.BoolVal(not policy.modules.allow, ctx), allowed_entry), z3.Not(denied)
    )

    solver = z3.Solver(ctx=ctx)
    solver.set("timeout", 5000)
    solver.add(
        allowed_entry,
        denied,
        z3.Length(module) > 0,
        z3.Not(z3.SuffixOf(z3.StringVal(".", ctx), module)),
    )
    if solver.check() == z3.sat:
        witness = solver.model()[module].as_string()
        return Proof(False, f"spec.modules: '{witness}' is both allowed and denied")

    solver = z3.Solver(ctx=ctx)
    solver.add(denied, importable)
    if solver.check() == z3.sat:  # cannot happen by construction; the proof says so
        return Proof(False, f"spec.modules: denied '{solver.model()[module]}' is importable")

    limits = policy.limits
    cpus = quantity(limits.cpu)
    cpu_time, wall = z3.Reals("cpu_time wall", ctx)
    solver = z3.Solver(ctx=ctx)
    solver.add(
        wall >= 0,
        wall <= z3.RealVal(str(limits.timeout_seconds), ctx),
        cpu_time <= wall * z3.RealVal(str(cpus), ctx),
        cpu_time >= z3.RealVal(str(limits.cpu_seconds), ctx),
    )
    if solver.check() == z3.unsat:
        return Proof(
            False,
            f"spec.limits.cpuSeconds: {limits.cpu_seconds}s of CPU cannot be used within "
            f"timeoutSeconds {limits.timeout_seconds}s on {cpus:g} CPU(s)",
        )
    memory = z3.Real("memory", ctx)
    solver = z3.Solver(ctx=ctx)
    solver.add(
        memory == z3.RealVal(str(quantity(limits.memory)), ctx),
        memory < z3.RealVal(str(MIN_INTERPRETER_BYTES), ctx),
    )
    if solver.check() == z3.sat:
        return Proof(
            False, f"spec.limits.memory: {limits.memory} is below the 32Mi an interpreter needs"
        )
    return Proof(True, "proved: deny wins over allow, no module is both, limits are reachable")


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
