"""A team's declared isolation (`spec.isolation`) proved with Z3 over the objects the operator's
builders make for it — the refusal at admission, with the counterexample, when they would not
hold it.

The objects are the team's children from `plan_team` (its agents' and sandboxes' NetworkPolicies,
with the declared peers applied) and the NetworkPolicy each referenced SandboxPolicy's
allowlist adds (`egress_policy`; a DNS name stands for the addresses it will resolve to). A
connection is a source pod, a destination (a symbolic pod: namespace, labels and namespace
labels, or any address for an ipBlock), a protocol and a port; a NetworkPolicy rule is a
formula over them. Four claims, each for every destination and port at once:

- peers: an agent listed in `isolation.peers` opens connections to no agent of its team but its
  peers (and their ingress would have to allow it too);
- inbound `team`: no pod outside the team (not labelled as the team's in its namespace) can
  open a connection to an agent, on any port;
- outboundPorts: the only ports an agent opens outside its team are the declared ones (DNS to
  kube-dns aside);
- sandboxNetwork: a sandbox reaches nothing (`none`), or only what its own SandboxPolicy's
  allowlist opens (`allowlist`).

A refuted claim names the agent, what it reaches (or who reaches it, on which port) and the
NetworkPolicy rule that lets it. Every solver call has a timeout (`timeout_ms`); an unknown is
reported as unknown, and admission refuses it: declared isolation must be proved.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import z3
from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec, InboundIsolation, SandboxNetworkIsolation
from hive.api.sandboxpolicy import ResolvedEgress, SandboxPolicySpec
from hive.reconcile.agentteam import (
    SANDBOX_COMPONENT,
    AgentPodSettings,
    TeamObserved,
    plan_team,
)
from hive.reconcile.meta import Owner
from hive.reconcile.sandboxpolicy import egress_policy, literal_network
from hive.verify.certproof import TIMEOUT_MS, Proof
from hive.verify.reachability import AGENT_LABEL, TEAM_LABEL, Pod, matches
from hive.verify.solver import serialised

COMPONENT_LABEL = "app.kubernetes.io/component"
RESOLVES_TO = "192.0.2.1"  # what a DNS name of an allowlist stands for (TEST-NET-1)


@dataclass(frozen=True)
class Rule:
    """One ingress or egress rule of a NetworkPolicy, named for counterexamples."""

    where: str  # NetworkPolicy <name> egress[k]
    selector: Mapping[str, Any]  # the policy's podSelector
    peers: Sequence[Mapping[str, Any]]  # `to` / `from`; empty: every peer
    ports: Sequence[Mapping[str, Any]]  # empty: every port
    from_sandbox_policy: bool = False


@dataclass(frozen=True)
class Connection:
    """A symbolic destination (or source) and the port and protocol of the connection."""

    pod: Pod
    port: z3.ArithRef
    protocol: z3.SeqRef

    @classmethod
    def symbolic(cls, name: str) -> Connection:
        return cls(Pod.symbolic(name), z3.Int(f"{name}.port"), z3.String(f"{name}.protocol"))

    def real(self) -> z3.BoolRef:
        """A connection that can exist: a named namespace, a TCP/UDP/SCTP port in range."""
        return z3.And(
            z3.Length(self.pod.namespace) > 0,
            self.port >= 1,
            self.port <= 65535,
            z3.Or(*[self.protocol == z3.StringVal(p) for p in ("TCP", "UDP", "SCTP")]),
        )


def ports_allow(ports: Sequence[Mapping[str, Any]], conn: Connection) -> z3.BoolRef:
    if not ports:
        return z3.BoolVal(True)
    options = []
    for entry in ports:
        protocol = conn.protocol == z3.StringVal(str(entry.get("protocol", "TCP")))
        port = entry.get("port")
        options.append(
            z3.And(protocol, conn.port == port) if isinstance(port, int) else protocol
        )  # a named port: any number (its container says which)
    return z3.Or(*options)


def peer_allows(peer: Mapping[str, Any], pod: Pod, namespace: str) -> z3.BoolRef:
    if "ipBlock" in peer:
        return z3.BoolVal(True)  # an address block: any destination
    in_namespace = (
        matches(peer["namespaceSelector"], pod.namespace_labels)
        if "namespaceSelector" in peer
        else pod.namespace == z3.StringVal(namespace)
    )
    return z3.And(in_namespace, matches(peer.get("podSelector"), pod.labels))


def rule_allows(rule: Rule, conn: Connection, namespace: str) -> z3.BoolRef:
    peers = (
        z3.Or(*[peer_allows(p, conn.pod, namespace) for p in rule.peers])
        if rule.peers
        else z3.BoolVal(True)
    )
    return z3.And(peers, ports_allow(rule.ports, conn))


def rules_of(
    policies: Sequence[Mapping[str, Any]], direction: str, sandbox_policy_names: set[str]
) -> list[Rule]:
    """Every `direction` (Ingress or Egress) rule of `policies`, in order."""
    key, side = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    rules = []
    for policy in policies:
        spec = policy["spec"]
        if direction not in spec.get("policyTypes", ["Ingress"]):
            continue
        name = policy["metadata"]["name"]
        for k, rule in enumerate(spec.get(key) or []):
            rules.append(
                Rule(
                    f"NetworkPolicy {name} {key}[{k}]",
                    spec.get("podSelector") or {},
                    rule.get(side) or [],
                    rule.get("ports") or [],
                    name in sandbox_policy_names,
                )
            )
    return rules


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A label selector on a pod's concrete labels (as `matches` says it over symbolic ones)."""
    wanted = (selector or {}).get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        return False
    for expression in (selector or {}).get("matchExpressions") or []:
        value, values = labels.get(expression["key"]), expression.get("values") or []
        holds = {
            "Exists": value is not None,
            "DoesNotExist": value is None,
            "In": value in values,
            "NotIn": value not in values,
        }[expression["operator"]]
        if not holds:
            return False
    return True


def selected(
    policies: Sequence[Mapping[str, Any]], direction: str, labels: Mapping[str, str]
) -> bool:
    """Whether some policy of `direction` selects the pod (none: all traffic allowed)."""
    return any(
        direction in p["spec"].get("policyTypes", ["Ingress"])
        and selects(p["spec"].get("podSelector"), labels)
        for p in policies
    )


@dataclass(frozen=True)
class TeamObjects:
    """What the proofs read: the team's pods (deployment -> labels) and NetworkPolicies."""

    name: str
    namespace: str
    pods: dict[str, dict[str, str]]
    policies: list[dict[str, Any]]
    sandbox_policy_names: set[str]  # NetworkPolicies a SandboxPolicy's allowlist made
    served: dict[str, list[tuple[str, int]]]  # deployment -> the (protocol, port)s it listens on

    def rules(self, direction: str) -> list[Rule]:
        return rules_of(self.policies, direction, self.sandbox_policy_names)


def team_objects(
    spec: Mapping[str, Any],
    name: str,
    namespace: str,
    sandbox_policies: Mapping[str, Mapping[str, Any]],
) -> TeamObjects:
    """The team's NetworkPolicies and pods as the operator would make them, with the ones the
    referenced SandboxPolicies' allowlists add."""
    now = dt.datetime.now(dt.UTC)
    owner = Owner("AgentTeam", name, namespace, "verify", 1)
    pods_settings = AgentPodSettings(image="hive", sandbox_image="hive-sandbox")
    observed = TeamObserved(sandbox_policies=sandbox_policies)
    children = plan_team(owner, spec, None, observed, pods_settings, now).children
    pods = {
        c["metadata"]["name"]: dict(c["spec"]["template"]["metadata"]["labels"])
        for c in children
        if c["kind"] == "Deployment"
    }
    served = {
        c["metadata"]["name"]: [
            (str(port.get("protocol", "TCP")), int(port["containerPort"]))
            for container in c["spec"]["template"]["spec"]["containers"]
            for port in container.get("ports") or []
        ]
        for c in children
        if c["kind"] == "Deployment"
    }
    policies = [dict(c) for c in children if c["kind"] == "NetworkPolicy"]
    from_sandbox_policies = set()
    for policy_name, raw in sorted(sandbox_policies.items()):
        policy = SandboxPolicySpec.model_validate(dict(raw))
        resolved = {
            rule.host: ResolvedEgress(
                host=rule.host, addresses=[RESOLVES_TO], resolved_at=now, ttl_seconds=60
            )
            for rule in policy.network.egress
            if literal_network(rule.host) is None
        }
        policy_owner = Owner("SandboxPolicy", policy_name, namespace, "verify", 1)
        extra = egress_policy(policy_owner, policy, resolved, now)
        if extra is not None:
            policies.append(extra)
            from_sandbox_policies.add(extra["metadata"]["name"])
    return TeamObjects(name, namespace, pods, policies, from_sandbox_policies, served)


def _concrete(labels: Mapping[str, str], namespace: str) -> Pod:
    return Pod.concrete(namespace, labels)


def _team_pod(pod: Pod, team: str, namespace: str) -> z3.BoolRef:
    return z3.And(
        pod.namespace == z3.StringVal(namespace),
        pod.labels[z3.StringVal(TEAM_LABEL)] == z3.StringVal(team),
    )


def _dns(conn: Connection) -> z3.BoolRef:
    return z3.And(
        conn.pod.labels[z3.StringVal("k8s-app")] == z3.StringVal("kube-dns"),
        conn.port == 53,
    )


@dataclass(frozen=True)
class Claim:
    """What one proof asserts: no connection `allowed` by some rule is `bad`."""

    name: str
    statement: str
    bad: z3.BoolRef
    options: list[tuple[str, z3.BoolRef]]  # (which rule, the connections it allows)
    others: tuple[str, ...] = ()  # peers: the agents it must not reach, by `which`


def decide(claim: Claim, describe: Any, timeout_ms: int = TIMEOUT_MS) -> Proof:
    """Prove `claim`; refuted with the first rule that allows a bad connection, as `describe`
    words the model. An unknown (the time limit) is reported as such."""
    unknown = ""
    for where, allowed in claim.options:
        solver = z3.Solver()
        solver.set("timeout", timeout_ms)
        solver.add(allowed, claim.bad)
        answer = solver.check()
        if answer == z3.sat:
            return Proof(claim.name, claim.statement, "refuted", describe(solver.model(), where))
        if answer == z3.unknown:
            unknown = f"{where}: {solver.reason_unknown()}"
    if unknown:
        return Proof(claim.name, claim.statement, "unknown", unknown)
    return Proof(claim.name, claim.statement, "proved")


def _value(model: z3.ModelRef, term: z3.ExprRef) -> str:
    value = model.eval(term, model_completion=True)
    return value.as_string() if isinstance(value, z3.SeqRef) else str(value)


def _egress_options(
    objects: TeamObjects,
    me: Mapping[str, str],
    conn: Connection,
    *,
    own_policy_only: bool = False,
) -> list[tuple[str, z3.BoolRef]]:
    """Each egress rule selecting the pod labelled `me` and the connections it allows (none
    selecting: all)."""
    if not selected(objects.policies, "Egress", me):
        return [("no NetworkPolicy limits its egress", z3.BoolVal(True))]
    return [
        (rule.where, rule_allows(rule, conn, objects.namespace))
        for rule in objects.rules("Egress")
        if selects(rule.selector, me) and not (own_policy_only and rule.from_sandbox_policy)
    ]


def _ingress(objects: TeamObjects, target: Mapping[str, str], source: Connection) -> z3.BoolRef:
    if not selected(objects.policies, "Ingress", target):
        return z3.BoolVal(True)
    return z3.Or(
        *[
            rule_allows(rule, source, objects.namespace)
            for rule in objects.rules("Ingress")
            if selects(rule.selector, target)
        ],
        z3.BoolVal(False),
    )


def peer_claims(team: AgentTeamSpec, objects: TeamObjects) -> list[Claim]:
    """Each agent of `isolation.peers` reaches no agent of the team but its peers."""
    assert team.isolation is not None
    deployments = {
        labels[AGENT_LABEL]: deployment
        for deployment, labels in objects.pods.items()
        if AGENT_LABEL in labels
    }
    agents = {agent: objects.pods[deployment] for agent, deployment in deployments.items()}
    claims = []
    for entry in team.isolation.peers:
        me_labels = agents.get(entry.agent)
        if me_labels is None:
            continue  # not deployed (its SandboxPolicy missing): nothing to reach from
        me = _concrete(me_labels, objects.namespace)
        conn = Connection.symbolic("peer")
        others = [a for a in sorted(agents) if a != entry.agent and a not in entry.peers]
        if not others:
            continue
        # the destination is one of the other agents' pods, on a port it serves; their ingress
        # must let `me` in
        which = z3.Int("which")
        bad = z3.And(
            conn.real(),
            z3.Or(
                *[
                    z3.And(
                        which == k,
                        conn.pod.namespace == z3.StringVal(objects.namespace),
                        conn.pod.labels == _concrete(agents[other], objects.namespace).labels,
                        z3.Or(
                            *[
                                z3.And(conn.protocol == z3.StringVal(protocol), conn.port == port)
                                for protocol, port in objects.served[deployments[other]]
                            ],
                            z3.BoolVal(False),
                        ),
                        _ingress(
                            objects,
                            agents[other],
                            Connection(me, conn.port, conn.protocol),
                        ),
                    )
                    for k, other in enumerate(others)
                ]
            ),
        )
        peers = ", ".join(entry.peers) or "none"
        claims.append(
            Claim(
                f"{entry.agent}-peers",
                f"{entry.agent} reaches no agent of the team but its peers ({peers})",
                bad,
                _egress_options(objects, me_labels, conn),
                tuple(others),
            )
        )
    return claims


def inbound_claims(team: AgentTeamSpec, objects: TeamObjects) -> list[Claim]:
    """No pod outside the team can open a connection to one of its agents."""
    claims = []
    for labels in objects.pods.values():
        agent = labels.get(AGENT_LABEL)
        if agent is None:
            continue
        outsider = Connection.symbolic("outsider")
        if not selected(objects.policies, "Ingress", labels):
            options = [("no NetworkPolicy limits its ingress", z3.BoolVal(True))]
        else:
            options = [
                (rule.where, rule_allows(rule, outsider, objects.namespace))
                for rule in objects.rules("Ingress")
                if selects(rule.selector, labels)
            ]
        claims.append(
            Claim(
                f"{agent}-inbound",
                f"no pod outside team {team_name(objects)} can connect to {agent}",
                z3.And(
                    outsider.real(),
                    z3.Not(_team_pod(outsider.pod, objects.name, objects.namespace)),
                ),
                options,
            )
        )
    return claims


def team_name(objects: TeamObjects) -> str:
    return f"{objects.name} (pods labelled {TEAM_LABEL}={objects.name} in {objects.namespace})"


def outbound_claims(team: AgentTeamSpec, objects: TeamObjects, ports: Sequence[int]) -> list[Claim]:
    """An agent opens no port outside its team but the declared ones (DNS aside)."""
    claims = []
    for labels in objects.pods.values():
        agent = labels.get(AGENT_LABEL)
        if agent is None:
            continue
        conn = Connection.symbolic("outside")
        bad = z3.And(
            conn.real(),
            z3.Not(_team_pod(conn.pod, objects.name, objects.namespace)),
            z3.Not(_dns(conn)),
            *[conn.port != p for p in ports],
        )
        claims.append(
            Claim(
                f"{agent}-outbound",
                f"{agent} opens no port outside the team but {', '.join(map(str, ports)) or 'none'}"
                " (and DNS)",
                bad,
                _egress_options(objects, labels, conn),
            )
        )
    return claims


def sandbox_claims(team: AgentTeamSpec, objects: TeamObjects) -> list[Claim]:
    """A sandbox reaches nothing (none), or only what its SandboxPolicy's allowlist opens."""
    assert team.isolation is not None
    mode = team.isolation.sandbox_network
    claims = []
    for deployment, labels in objects.pods.items():
        if labels.get(COMPONENT_LABEL) != SANDBOX_COMPONENT:
            continue
        conn = Connection.symbolic("sandboxed")
        own = mode == SandboxNetworkIsolation.ALLOWLIST
        claims.append(
            Claim(
                f"{deployment}-network",
                f"sandbox {deployment} reaches "
                + ("only its SandboxPolicy's allowlist" if own else "no network"),
                conn.real(),
                _egress_options(objects, labels, conn, own_policy_only=own),
            )
        )
    return claims


def _describe(objects: TeamObjects, claim: Claim, prefix: str) -> Any:
    def describe(model: z3.ModelRef, where: str) -> str:
        conn = Connection.symbolic(prefix)
        port = _value(model, conn.port)
        protocol = _value(model, conn.protocol) or "TCP"
        namespace = _value(model, conn.pod.namespace)
        subject = claim.name.rsplit("-", 1)[0]
        if prefix == "peer":
            others = claim.others
            index = model.eval(z3.Int("which"), model_completion=True).as_long()
            whom = others[index] if 0 <= index < len(others) else "another agent"
            return f"{subject} reaches agent {whom} on {protocol}/{port} through {where}"
        if prefix == "outsider":
            return (
                f"a pod in namespace {namespace!r} not labelled {TEAM_LABEL}={objects.name} "
                f"connects to {subject} on {protocol}/{port} through {where}"
            )
        if prefix == "outside":
            return f"{subject} reaches {protocol}/{port} outside the team through {where}"
        return f"{subject} reaches {protocol}/{port} through {where}"

    return describe


@serialised
def isolation_proofs(
    spec: Mapping[str, Any],
    name: str,
    namespace: str,
    sandbox_policies: Mapping[str, Mapping[str, Any]],
    *,
    timeout_ms: int = TIMEOUT_MS,
) -> list[Proof]:
    """The proofs of the team's declared isolation (none declared: none)."""
    team = AgentTeamSpec.model_validate(dict(spec))
    if team.isolation is None:
        return []
    objects = team_objects(spec, name, namespace, sandbox_policies)
    claims: list[tuple[Claim, str]] = [(c, "peer") for c in peer_claims(team, objects)]
    if team.isolation.inbound == InboundIsolation.TEAM:
        claims += [(c, "outsider") for c in inbound_claims(team, objects)]
    if team.isolation.outbound_ports is not None:
        ports = team.isolation.outbound_ports
        claims += [(c, "outside") for c in outbound_claims(team, objects, ports)]
    claims += [(c, "sandboxed") for c in sandbox_claims(team, objects)]
    return [
        decide(claim, _describe(objects, claim, prefix), timeout_ms) for claim, prefix in claims
    ]


def declaration_problem(spec: Mapping[str, Any]) -> str | None:
    """A declared isolation that names no agent of the team, or cuts a delegation."""
    try:
        team = AgentTeamSpec.model_validate(dict(spec))
    except ValidationError:
        return None  # the API's own validation words it
    if team.isolation is None:
        return None
    agents = {a.name: a for a in team.agents}
    seen: set[str] = set()
    for i, entry in enumerate(team.isolation.peers):
        where = f"spec.isolation.peers[{i}]"
        if entry.agent not in agents:
            return f"{where}.agent: '{entry.agent}' is not an agent of this team"
        if entry.agent in seen:
            return f"{where}.agent: '{entry.agent}' is listed twice"
        seen.add(entry.agent)
        for peer in entry.peers:
            if peer not in agents:
                return f"{where}.peers: '{peer}' is not an agent of this team"
        cut = [s for s in agents[entry.agent].subordinates if s not in entry.peers]
        if cut:
            return (
                f"{where}.peers: {entry.agent} delegates to {', '.join(cut)}, "
                "which its peers must include"
            )
    return None


@serialised
def isolation_problem(
    spec: Mapping[str, Any],
    name: str,
    namespace: str,
    sandbox_policies: Mapping[str, Mapping[str, Any]],
    timeout_ms: int = TIMEOUT_MS,
) -> str | None:
    """Why admission refuses the team's declared isolation, if it does: the claims the
    generated objects break, each with its counterexample, or those Z3 could not decide."""
    declared = declaration_problem(spec)
    if declared is not None:
        return declared
    try:
        proofs = isolation_proofs(spec, name, namespace, sandbox_policies, timeout_ms=timeout_ms)
    except ValidationError:
        return None  # the API's own validation words it
    refuted = [p for p in proofs if p.outcome == "refuted"]
    unknown = [p for p in proofs if p.outcome == "unknown"]
    if refuted:
        return "spec.isolation does not hold: " + "; ".join(
            f"{p.statement} is false: {p.counterexample}" for p in refuted[:3]
        )
    if unknown:
        return "spec.isolation could not be proved (Z3 answered unknown): " + "; ".join(
            f"{p.statement}: {p.counterexample}" for p in unknown[:3]
        )
    return None


def sandbox_policy_names(spec: Mapping[str, Any]) -> list[str]:
    """The SandboxPolicies the team's agents refer to (admission reads them)."""
    names = set()
    for agent in spec.get("agents") or []:
        ref = agent.get("sandboxPolicyRef") if isinstance(agent, Mapping) else None
        if isinstance(ref, Mapping) and isinstance(ref.get("name"), str):
            names.add(ref["name"])
    return sorted(names)
