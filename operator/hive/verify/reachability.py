"""Who reaches what: a team's NetworkPolicies and Roles, as the operator's builders make them,
read as Z3 formulas.

The children come from `plan_team` (the same pure builder the operator applies). A pod is a
namespace, its labels and its namespace's labels (Z3 arrays from label key to value); a
NetworkPolicy's podSelector/namespaceSelector matchLabels become equalities over them. For each
agent it says which of the team's pods it reaches (its egress and their ingress both allow it),
which endpoints outside the team its egress opens, and proves that no pod outside the team (not
labelled as the team's in its namespace) can open a connection to it — or gives the pod that
can. For each agent's ServiceAccount it proves, over every API group, resource, name and verb,
that the only object it can change is its team's status, or gives the write its Role allows.
Every solver call has a timeout; unknown is reported as such.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import z3

from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner
from hive.verify.certproof import TIMEOUT_MS, Proof, prove
from hive.verify.solver import serialised

TEAM_LABEL, AGENT_LABEL = "hive.dev/team", "hive.dev/agent"
WRITES = ("create", "update", "patch", "delete", "deletecollection", "escalate", "bind")
Labels = z3.ArraySort(z3.StringSort(), z3.StringSort())


@dataclass(frozen=True)
class Pod:
    namespace: z3.SeqRef
    labels: z3.ArrayRef
    namespace_labels: z3.ArrayRef

    @classmethod
    def symbolic(cls, name: str) -> Pod:
        return cls(
            z3.String(f"{name}.namespace"),
            z3.Array(f"{name}.labels", z3.StringSort(), z3.StringSort()),
            z3.Array(f"{name}.namespaceLabels", z3.StringSort(), z3.StringSort()),
        )

    @classmethod
    def concrete(cls, namespace: str, labels: Mapping[str, str]) -> Pod:
        array = z3.K(z3.StringSort(), z3.StringVal(""))
        for key, value in labels.items():
            array = z3.Store(array, z3.StringVal(key), z3.StringVal(value))
        ns_array = z3.Store(
            z3.K(z3.StringSort(), z3.StringVal("")),
            z3.StringVal("kubernetes.io/metadata.name"),
            z3.StringVal(namespace),
        )
        return cls(z3.StringVal(namespace), array, ns_array)


def matches(selector: Mapping[str, Any] | None, labels: z3.ArrayRef) -> z3.BoolRef:
    """A label selector (matchLabels and matchExpressions) over `labels` ("": no such label)."""
    wanted = (selector or {}).get("matchLabels") or {}
    terms = [labels[z3.StringVal(k)] == z3.StringVal(v) for k, v in wanted.items()]
    for expression in (selector or {}).get("matchExpressions") or []:
        value = labels[z3.StringVal(expression["key"])]
        among = z3.Or(
            *[value == z3.StringVal(v) for v in expression.get("values") or []], z3.BoolVal(False)
        )
        terms.append(
            {
                "Exists": value != z3.StringVal(""),
                "DoesNotExist": value == z3.StringVal(""),
                "In": among,
                "NotIn": z3.Not(among),
            }[expression["operator"]]
        )
    return z3.And(*terms, z3.BoolVal(True))


def peer_allows(peer: Mapping[str, Any], pod: Pod, namespace: str) -> z3.BoolRef:
    """One `from`/`to` entry of a rule: does it take in `pod`? (ipBlocks: any address.)"""
    if "ipBlock" in peer:
        return z3.BoolVal(True)
    in_namespace = (
        matches(peer["namespaceSelector"], pod.namespace_labels)
        if "namespaceSelector" in peer
        else pod.namespace == z3.StringVal(namespace)
    )
    return z3.And(in_namespace, matches(peer.get("podSelector"), pod.labels))


def rules_allow(
    rules: Sequence[Mapping[str, Any]], key: str, pod: Pod, namespace: str
) -> z3.BoolRef:
    options = []
    for rule in rules:
        peers = rule.get(key)
        if not peers:  # no from/to: every peer (on the rule's ports)
            options.append(z3.BoolVal(True))
        else:
            options.extend(peer_allows(p, pod, namespace) for p in peers)
    return z3.Or(*options, z3.BoolVal(False))


@dataclass
class AgentReach:
    agent: str
    peers: list[str] = field(default_factory=list)
    endpoints: list[str] = field(default_factory=list)
    proofs: list[Proof] = field(default_factory=list)


def team_children(spec: Mapping[str, Any], name: str, namespace: str) -> list[dict[str, Any]]:
    owner = Owner("AgentTeam", name, namespace, "verify", 1)
    plan = plan_team(
        owner, spec, None, TeamObserved(), AgentPodSettings(image="hive"), dt.datetime.now(dt.UTC)
    )
    return [dict(c) for c in plan.children]


def _pods(children: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        c["metadata"]["name"]: dict(c["spec"]["template"]["metadata"]["labels"])
        for c in children
        if c["kind"] == "Deployment"
    }


def _policies(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c["spec"] for c in children if c["kind"] == "NetworkPolicy"]


def _holds(formula: z3.BoolRef) -> bool:
    solver = z3.Solver()
    solver.set("timeout", TIMEOUT_MS)
    solver.add(formula)
    return bool(solver.check() == z3.sat)


def _direction(
    policies: list[dict[str, Any]],
    target: Pod,
    kind: str,
    key: str,
    rules: str,
    other: Pod,
    ns: str,
) -> z3.BoolRef:
    """`other` may connect per the `kind` policies selecting `target` (none: all allowed)."""
    selecting = [
        p
        for p in policies
        if kind in p.get("policyTypes", ["Ingress"])
        and _holds(matches(p.get("podSelector"), target.labels))
    ]
    if not selecting:
        return z3.BoolVal(True)
    return z3.Or(*[rules_allow(p.get(rules) or [], key, other, ns) for p in selecting])


@serialised
def reachability(spec: Mapping[str, Any], name: str, namespace: str) -> list[AgentReach]:
    """What each agent of the team reaches and who reaches it, with the Z3 proofs."""
    children = team_children(spec, name, namespace)
    pods = _pods(children)
    policies = _policies(children)
    concrete = {d: Pod.concrete(namespace, labels) for d, labels in pods.items()}
    roles = {c["metadata"]["name"]: c.get("rules") or [] for c in children if c["kind"] == "Role"}
    reports = []
    for deployment, labels in pods.items():
        agent = labels.get(AGENT_LABEL)
        if agent is None:
            continue
        me = concrete[deployment]
        report = AgentReach(agent)
        for other, pod in concrete.items():
            if other == deployment:
                continue
            out = _direction(policies, me, "Egress", "to", "egress", pod, namespace)
            inbound = _direction(policies, pod, "Ingress", "from", "ingress", me, namespace)
            if _holds(z3.And(out, inbound)):
                report.peers.append(pods[other].get(AGENT_LABEL) or other)
        for policy in policies:
            if "Egress" not in policy.get("policyTypes", []) or not _holds(
                matches(policy.get("podSelector"), me.labels)
            ):
                continue
            for rule in policy.get("egress") or []:
                ports = ", ".join(
                    f"{p.get('protocol', 'TCP')}/{p.get('port')}" for p in rule.get("ports") or []
                )
                for peer in rule.get("to") or [{"ipBlock": {"cidr": "0.0.0.0/0"}}]:
                    selector = (peer.get("podSelector") or {}).get("matchLabels")
                    if selector == {TEAM_LABEL: name} and "namespaceSelector" not in peer:
                        continue  # the team's own pods, listed above
                    where = (
                        f"any address ({peer['ipBlock'].get('cidr')})"
                        if "ipBlock" in peer
                        else f"pods {selector or 'any'} in "
                        + ("any namespace" if "namespaceSelector" in peer else namespace)
                    )
                    report.endpoints.append(f"{where} on {ports or 'every port'}")
        report.proofs.append(isolation_proof(agent, policies, me, name, namespace))
        report.proofs.append(role_proof(agent, roles.get(deployment, []), name))
        reports.append(report)
    return reports


@serialised
def isolation_proof(
    agent: str, policies: list[dict[str, Any]], me: Pod, team: str, namespace: str
) -> Proof:
    """No pod outside the team (not labelled as the team's in its namespace) connects to `me`."""
    outsider = Pod.symbolic("outsider")
    team_pod = z3.And(
        outsider.namespace == z3.StringVal(namespace),
        outsider.labels[z3.StringVal(TEAM_LABEL)] == z3.StringVal(team),
    )
    ingress = _direction(policies, me, "Ingress", "from", "ingress", outsider, namespace)
    return prove(
        f"{agent}-isolated",
        f"no pod outside team {team} (not labelled {TEAM_LABEL}={team} in {namespace}) "
        f"can connect to {agent}",
        z3.Implies(ingress, team_pod),
    )


@serialised
def role_proof(agent: str, rules: Sequence[Mapping[str, Any]], team: str) -> Proof:
    """The agent's Role lets it change nothing but its team's status."""
    group, resource, object_name, verb = (
        z3.String(n) for n in ("group", "resource", "name", "verb")
    )

    def any_of(var: z3.SeqRef, values: Sequence[str]) -> z3.BoolRef:
        if "*" in values:
            return z3.BoolVal(True)
        return z3.Or(*[var == z3.StringVal(v) for v in values], z3.BoolVal(False))

    allowed = z3.Or(
        *[
            z3.And(
                any_of(group, r.get("apiGroups") or []),
                any_of(resource, r.get("resources") or []),
                any_of(verb, r.get("verbs") or []),
                any_of(object_name, r["resourceNames"])
                if r.get("resourceNames")
                else z3.BoolVal(True),
            )
            for r in rules
        ],
        z3.BoolVal(False),
    )
    write = any_of(verb, WRITES)
    own_status = z3.And(
        group == z3.StringVal("hive.dev"),
        resource == z3.StringVal("agentteams/status"),
        object_name == z3.StringVal(team),
    )
    return prove(
        f"{agent}-writes",
        f"{agent}'s ServiceAccount can change no API object but {team}'s status",
        z3.Implies(z3.And(allowed, write), own_status),
    )
