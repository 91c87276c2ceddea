"""SandboxPolicy: its consistency checks, its RuntimeClass and egress rules.

The checks are plain comparisons, said as such in ``status.verification``:

- no module is both allowed and denied (an allow entry under a deny entry, or a deny entry under
  an allow entry, is a contradiction the author should resolve);
- the CPU-time limit can be used up before the wall-clock timeout with the CPUs given;
- the memory limit leaves room for the interpreter (at least 32 MiB).

That a denied module (and every submodule of one) is refused whatever the allow list says is not
a check on the policy: it is how the sandbox's import hook decides (deny first).

Egress is enforced by the NetworkPolicy alone: the local gVisor executor refuses an allowlist
(it runs with no network), and nothing in the sandbox checks names. So an allowlist entry that
is an IP address or CIDR becomes an ipBlock, and one that is a DNS name becomes an ipBlock per
address the name resolves to (``/32`` or ``/128``), looked up by the operator
(``hive.operator.egress``) and given to this module as `Answer`s:

- A name that does not resolve (no such name, no A or AAAA records, no answer in time) opens
  nothing, at once, and ``EgressResolved`` is False (reason ``NameNotResolved``) naming it. Ready
  does not follow it: Ready says the policy holds, and it does, closed for that name; the name
  is looked up again after the TTL floor and opened when it resolves, with nobody acting.
- An answer holds for its TTL (the operator clamps it, 5 s to 300 s by default); the policy is
  reconciled again when the earliest one runs out (`recheck_after_s`), which looks the name up
  again.
- An address that an earlier answer gave and a newer one does not stays open for one more TTL
  (the newer answer's) after it dropped out, listed as retiring in ``status.egress``, so that
  DNS rotation does not cut connections made to it. A name that fails to resolve keeps nothing:
  the grace is for rotation, not for a name that is gone.
- The NetworkPolicy matches addresses, not names: anything else served at a listed name's
  address (a shared load balancer, a CDN) is reachable too, on the listed ports.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from hive.api.common import Condition, describe_validation_error
from hive.api.sandboxpolicy import (
    NetworkMode,
    ResolvedEgress,
    RetiringAddress,
    SandboxPolicySpec,
    SandboxPolicyStatus,
)
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


def literal_network(host: str) -> str | None:
    """The CIDR an allowlist entry that is an IP address or CIDR stands for; None for a name."""
    try:
        return str(ipaddress.ip_network(host, strict=False))
    except ValueError:
        return None


def egress_names(policy: SandboxPolicySpec) -> list[str]:
    """The DNS names of the policy's allowlist (each once, in order); none unless allowlist."""
    if policy.network.mode != NetworkMode.ALLOWLIST:
        return []
    names = [r.host for r in policy.network.egress if literal_network(r.host) is None]
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Answer:
    """One lookup of a name (A and AAAA): the addresses and how long they hold, or why none."""

    host: str
    addresses: tuple[str, ...]
    resolved_at: dt.datetime
    ttl_s: int
    error: str | None = None

    @property
    def expires_at(self) -> dt.datetime:
        return self.resolved_at + dt.timedelta(seconds=self.ttl_s)


def previous_egress(status: Mapping[str, Any] | None) -> dict[str, ResolvedEgress]:
    """status.egress of the last reconcile, by host; an entry that does not parse is dropped."""
    found = {}
    for entry in (status or {}).get("egress") or []:
        try:
            parsed = ResolvedEgress.model_validate(entry)
        except ValidationError:
            continue
        found[parsed.host] = parsed
    return found


def resolve_egress(
    previous: ResolvedEgress | None, answer: Answer, now: dt.datetime
) -> ResolvedEgress:
    """The name's status entry after `answer`: its addresses, and those of earlier answers
    still in their grace (one TTL of the answer that dropped them; none after a failure)."""
    current = sorted(set(answer.addresses))
    retiring: dict[str, dt.datetime] = {}
    if previous is not None and answer.error is None:
        for old in previous.retiring:
            if old.until > now:
                retiring[old.address] = old.until
        for address in previous.addresses:
            retiring.setdefault(address, answer.expires_at)
    return ResolvedEgress(
        host=answer.host,
        addresses=current,
        resolved_at=answer.resolved_at,
        ttl_seconds=answer.ttl_s,
        retiring=[
            RetiringAddress(address=a, until=u)
            for a, u in sorted(retiring.items())
            if a not in current
        ],
        error=answer.error,
    )


def open_addresses(entry: ResolvedEgress, now: dt.datetime) -> list[str]:
    """The addresses a name opens now: its answer's and the retiring ones not yet due."""
    retiring = [r.address for r in entry.retiring if r.until > now]
    return sorted(set(entry.addresses) | set(retiring))


def _host_network(address: str) -> str:
    ip = ipaddress.ip_address(address)
    return f"{ip}/{ip.max_prefixlen}"


def egress_policy(
    owner: Owner,
    policy: SandboxPolicySpec,
    resolved: Mapping[str, ResolvedEgress],
    now: dt.datetime,
) -> JSON | None:
    """Extra egress for bound agents when the policy has an allowlist (NetworkPolicies add up).

    IP addresses and CIDRs become ipBlocks; a DNS name becomes one rule with an ipBlock per
    address it opens (`open_addresses` of its entry in `resolved`), and no rule at all when it
    opens none: a rule without ``to`` would let its ports out to every address.
    """
    if policy.network.mode != NetworkMode.ALLOWLIST:
        return None
    rules = []
    for rule in policy.network.egress:
        ports = [{"protocol": "TCP", "port": p} for p in rule.ports]
        cidr = literal_network(rule.host)
        if cidr is not None:
            rules.append({"to": [{"ipBlock": {"cidr": cidr}}], "ports": ports})
            continue
        entry = resolved.get(rule.host)
        addresses = open_addresses(entry, now) if entry is not None else []
        if addresses:
            blocks = [{"ipBlock": {"cidr": _host_network(a)}} for a in addresses]
            rules.append({"to": blocks, "ports": ports})
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


def egress_condition(
    resolved: Sequence[ResolvedEgress], generation: int, now: dt.datetime
) -> Condition:
    """EgressResolved: True when every name resolved, else False naming those that did not."""
    failed = [e for e in resolved if e.error is not None]
    if not failed:
        opened = sum(len(e.addresses) for e in resolved)
        return condition(
            "EgressResolved",
            True,
            "Resolved",
            f"{len(resolved)} egress name(s) resolved to {opened} address(es)",
            generation=generation,
            now=now,
        )
    named = "; ".join(f"{e.host}: {e.error}" for e in failed)
    return condition(
        "EgressResolved",
        False,
        "NameNotResolved",
        f"did not resolve, so nothing is opened for it: {named}",
        generation=generation,
        now=now,
    )


def recheck_after(resolved: Sequence[ResolvedEgress], now: dt.datetime) -> float | None:
    """Seconds until the first answer runs out or a retiring address is due to close."""
    due = [e.resolved_at + dt.timedelta(seconds=e.ttl_seconds) for e in resolved]
    due += [r.until for e in resolved for r in e.retiring]
    if not due:
        return None
    return max(0.5, (min(due) - now).total_seconds())


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
    recheck_after_s: float | None = None  # when an egress name's answer runs out


def plan_timed_out(
    owner: Owner, previous_status: Mapping[str, Any] | None, timeout_s: float, now: dt.datetime
) -> SandboxPolicyStatus:
    """The status of a policy whose plan took longer than `timeout_s`: its NetworkPolicy is left
    as it is and Ready is False with the reason PlanTimedOut."""
    try:
        status = SandboxPolicyStatus.model_validate(dict(previous_status or {}))
    except ValidationError:
        status = SandboxPolicyStatus()
    message = (
        f"planning the policy took longer than {timeout_s:g}s (HIVE_OPERATOR__PLAN_TIMEOUT_S); "
        "its NetworkPolicy is left as it was"
    )
    ready = condition("Ready", False, "PlanTimedOut", message, generation=owner.generation, now=now)
    kept = [c for c in status.conditions if c.type != "Ready"]
    return status.model_copy(
        update={
            "observed_generation": owner.generation,
            "conditions": merge_conditions(status.conditions, [ready, *kept]),
        }
    )


def plan_policy(
    owner: Owner,
    spec: Mapping[str, Any],
    previous_status: Mapping[str, Any] | None,
    teams: Sequence[Mapping[str, Any]],
    now: dt.datetime,
    answers: Mapping[str, Answer] | None = None,
) -> PolicyPlan:
    """The policy's RuntimeClass, NetworkPolicy and status; `answers` holds the lookup of each
    name in `egress_names` (a name without one opens nothing)."""
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
    names = egress_names(policy)
    before = previous_egress(previous_status)
    missing = "not looked up"
    resolved = [
        resolve_egress(
            before.get(name),
            (answers or {}).get(name) or Answer(name, (), now.replace(microsecond=0), 0, missing),
            now,
        )
        for name in names
    ]
    egress = egress_policy(owner, policy, {e.host: e for e in resolved}, now)
    conditions = [ready]
    if names:
        conditions.append(egress_condition(resolved, owner.generation, now))
    return PolicyPlan(
        runtime_class(policy),
        [egress] if egress else [],
        SandboxPolicyStatus(
            observed_generation=owner.generation,
            bound_agents=bound,
            bound_agent_count=len(bound),
            verified=proof.holds,
            verification=proof.message,
            egress=resolved,
            conditions=merge_conditions(previous, conditions),
        ),
        recheck_after(resolved, now),
    )
