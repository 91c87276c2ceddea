"""The AgentTeam builder: children per agent, least privilege, and conditions by the conventions."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.reconcile.agentteam import (
    AgentPodSettings,
    PodVault,
    TeamObserved,
    TeamPlan,
    plan_team,
)
from hive.reconcile.meta import Owner, child_name
from hive.reconcile.pods import (
    PodObserved,
    needs_sandbox_event,
    node_not_ready,
    observe_pod,
    recheck_after,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = Owner("AgentTeam", "research", "default", "uid-1", generation=3)
PODS = AgentPodSettings(image="hive:test")
POLICY = {"runtimeClassName": "gvisor", "network": {"mode": "none"}}


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "goal": "answer",
        "model": {"name": "m", "endpoint": "http://vllm:8000/v1", "secretRef": {"name": "key"}},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["dev"]},
            {"name": "dev", "role": "junior", "sandboxPolicyRef": {"name": "strict"}},
        ],
    }
    base.update(overrides)
    return base


def plan(
    s: dict[str, Any] | None = None,
    *,
    deployments: dict[str, Any] | None = None,
    policies: dict[str, Any] | None = None,
    previous: dict[str, Any] | None = None,
    now: dt.datetime = T0,
    pods: dict[str, list[PodObserved]] | None = None,
    nodes_not_ready: dict[str, str] | None = None,
) -> TeamPlan:
    observed = TeamObserved(
        deployments=deployments or {},
        sandbox_policies={"strict": POLICY} if policies is None else policies,
        pods=pods or {},
        nodes_not_ready=nodes_not_ready or {},
    )
    return plan_team(OWNER, s or spec(), previous, observed, PODS, now)


def cond(p: TeamPlan, type_: str) -> Any:
    return next(c for c in p.status.conditions if c.type == type_)


def child(p: TeamPlan, kind: str, name: str) -> dict[str, Any]:
    return next(c for c in p.children if c["kind"] == kind and c["metadata"]["name"] == name)


def available(name: str, replicas: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "generation": 2},
        "status": {
            "observedGeneration": 2,
            "availableReplicas": replicas,
            "updatedReplicas": replicas,
        },
    }


def test_every_agent_gets_seven_owned_children() -> None:
    p = plan()
    kinds = sorted((c["kind"], c["metadata"]["name"]) for c in p.children)
    for agent in ("lead", "dev"):
        for kind in (
            "ServiceAccount",
            "Role",
            "RoleBinding",
            "Deployment",
            "Service",
            "NetworkPolicy",
        ):
            assert (kind, f"research-{agent}") in kinds
        assert ("ConfigMap", f"research-{agent}-config") in kinds
    assert len(kinds) == 14, "no embedded model: the team names its own endpoint"
    for c in p.children:
        (ref,) = c["metadata"]["ownerReferences"]
        assert ref == {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "name": "research",
            "uid": "uid-1",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    assert p.prune


def test_role_lets_an_agent_read_its_team_and_patch_only_its_status() -> None:
    rules = child(plan(), "Role", "research-dev")["rules"]
    assert rules == [
        {
            "apiGroups": ["hive.dev"],
            "resources": ["agentteams"],
            "resourceNames": ["research"],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["hive.dev"],
            "resources": ["agentteams/status"],
            "resourceNames": ["research"],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": ["hive.dev"],
            "resources": ["toolversions"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    binding = child(plan(), "RoleBinding", "research-dev")
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "research-dev", "namespace": "default"}
    ]


def test_deployment_is_hardened_and_uses_the_policys_runtime_class() -> None:
    dep = child(plan(), "Deployment", "research-dev")
    pod = dep["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = pod["containers"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert container["args"][:5] == ["agent", "--team", "research", "--agent", "dev"]
    token = next(v for v in pod["volumes"] if v["name"] == "token")
    sources = token["projected"]["sources"]
    assert sources[0]["serviceAccountToken"]["expirationSeconds"] == 3600
    key_env = next(e for e in container["env"] if e["name"] == "HIVE_MODEL_API_KEY")
    assert key_env["valueFrom"]["secretKeyRef"] == {"name": "key", "key": "api-key"}
    lead = child(plan(), "Deployment", "research-lead")["spec"]["template"]["spec"]
    assert "runtimeClassName" not in lead


def test_network_policy_allows_the_team_dns_and_the_model_port() -> None:
    np = child(plan(), "NetworkPolicy", "research-dev")["spec"]
    assert np["policyTypes"] == ["Ingress", "Egress"]
    ports = {p["port"] for rule in np["egress"] for p in rule.get("ports", [])}
    assert {53, 443, 6443, 8000} <= ports


def test_config_change_rolls_the_pods() -> None:
    def digest(p: TeamPlan) -> str:
        dep = child(p, "Deployment", "research-lead")
        return str(dep["spec"]["template"]["metadata"]["annotations"]["hive.dev/config-checksum"])

    assert digest(plan()) == digest(plan())
    assert digest(plan()) != digest(plan(spec(goal="another")))


def test_status_waits_for_agents_then_is_ready() -> None:
    waiting = plan(deployments={"research-lead": available("research-lead")})
    ready = cond(waiting, "Ready")
    assert (ready.status, ready.reason) == ("False", "AgentsUnavailable")
    assert ready.message == "1/2 agents available; waiting for dev"
    assert cond(waiting, "Progressing").status == "True"
    assert waiting.status.agents_ready == 1

    both = {n: available(n) for n in ("research-lead", "research-dev")}
    done = plan(deployments=both)
    assert (cond(done, "Ready").status, cond(done, "Ready").reason) == (
        "True",
        "AllAgentsAvailable",
    )
    assert done.status.phase == "Running"
    assert cond(done, "Ready").observed_generation == 3


def test_a_failing_deployment_degrades_the_team() -> None:
    broken = available("research-dev", 0)
    broken["status"]["conditions"] = [
        {"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"}
    ]
    p = plan(deployments={"research-lead": available("research-lead"), "research-dev": broken})
    assert cond(p, "Degraded").status == "True"
    assert cond(p, "Ready").message == "dev: quota exceeded"


def test_missing_policy_names_the_field_and_keeps_what_exists() -> None:
    p = plan(policies={})
    ready = cond(p, "Ready")
    assert (ready.status, ready.reason) == ("False", "SandboxPolicyNotFound")
    assert ready.message == "spec.agents[1].sandboxPolicyRef: SandboxPolicy 'strict' not found"
    assert not p.prune
    assert all(
        not (c["kind"] == "Deployment" and c["metadata"]["name"] == "research-dev")
        for c in p.children
    )


def test_an_invalid_spec_changes_nothing_and_says_why() -> None:
    p = plan(spec(agents=[{"name": "lead", "role": "boss"}]))
    assert p.children == []
    assert not p.prune
    ready = cond(p, "Ready")
    assert (ready.status, ready.reason) == ("False", "InvalidSpec")
    assert ready.message.startswith("spec.agents[0].role:")
    assert p.status.phase == "Failed"


def test_a_delegation_cycle_is_an_invalid_spec() -> None:
    agents = [
        {"name": "a", "role": "senior", "subordinates": ["b"]},
        {"name": "b", "role": "junior", "subordinates": ["a"]},
    ]
    assert "delegation cycle a -> b -> a" in cond(plan(spec(agents=agents)), "Ready").message


def test_suspend_scales_to_zero() -> None:
    p = plan(spec(suspend=True))
    assert {c["spec"]["replicas"] for c in p.children if c["kind"] == "Deployment"} == {0}
    assert p.status.phase == "Suspended"
    assert cond(p, "Ready").reason == "Suspended"


def test_transition_time_is_kept_while_status_does_not_change() -> None:
    first = plan()
    later = plan(previous=first.status.wire(), now=T0 + dt.timedelta(hours=1))
    assert cond(later, "Ready").last_transition_time == T0
    both = {n: available(n) for n in ("research-lead", "research-dev")}
    flipped = plan(deployments=both, previous=later.status.wire(), now=T0 + dt.timedelta(hours=2))
    assert cond(flipped, "Ready").last_transition_time == T0 + dt.timedelta(hours=2)


def test_long_names_are_shortened_stably() -> None:
    name = child_name("t" * 60, "agent-with-a-long-name")
    assert len(name) <= 63
    assert name == child_name("t" * 60, "agent-with-a-long-name")
    assert name != child_name("t" * 60, "agent-with-a-long-namf")


names = st.lists(
    st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True), min_size=1, max_size=8, unique=True
)


@settings(max_examples=60, deadline=None)
@given(names, st.booleans())
def test_plans_are_deterministic_and_names_unique(agent_names: list[str], suspend: bool) -> None:
    agents = [{"name": n, "role": "junior"} for n in agent_names]
    s = spec(agents=agents, suspend=suspend)
    first, second = plan(s), plan(s)
    assert first.children == second.children
    keys = [(c["kind"], c["metadata"]["name"]) for c in first.children]
    assert len(keys) == len(set(keys)) == 7 * len(agent_names)


def test_agents_find_their_peers_through_services() -> None:
    p = plan()
    services = {c["metadata"]["name"]: c for c in p.children if c["kind"] == "Service"}
    assert services["research-dev"]["spec"]["selector"] == {
        "hive.dev/team": "research",
        "hive.dev/agent": "dev",
    }
    config = next(
        yaml.safe_load(c["data"]["agent.yaml"])
        for c in p.children
        if c["metadata"]["name"] == "research-lead-config"
    )
    assert config["peerUrls"] == {"dev": "http://research-dev.default.svc:8080"}
    assert [a["name"] for a in config["agents"]] == ["lead", "dev"]


def test_an_embedded_model_team_gets_its_own_model_server() -> None:
    p = plan(spec(model={"provider": "embedded", "name": "smollm2"}))
    names = {(c["kind"], c["metadata"]["name"]) for c in p.children}
    assert {("Deployment", "research-model"), ("Service", "research-model")} <= names
    model = next(
        c
        for c in p.children
        if c["kind"] == "Deployment" and c["metadata"]["name"] == "research-model"
    )
    (container,) = model["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["model", "serve"]
    config = next(
        yaml.safe_load(c["data"]["agent.yaml"])
        for c in p.children
        if c["metadata"]["name"] == "research-lead-config"
    )
    assert config["model"]["endpoint"] == "http://research-model.default.svc:8080/v1"


def test_the_runs_outcome_becomes_the_teams_phase() -> None:
    ready = {"research-lead": available("research-lead"), "research-dev": available("research-dev")}

    def phase_and_degraded(run: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        p = plan(deployments=ready, previous={"run": run} if run else None)
        degraded = next(c for c in p.status.wire()["conditions"] if c["type"] == "Degraded")
        return p.status.phase, degraded

    assert phase_and_degraded(None)[0] == "Running"
    done = {"outcome": "Succeeded", "coordinator": "lead", "generation": 3}
    assert phase_and_degraded(done)[0] == "Succeeded"
    assert phase_and_degraded({**done, "generation": 2})[0] == "Running", "an older spec's run"
    phase, degraded = phase_and_degraded(
        {**done, "outcome": "Failed", "message": "model 'm' at http://x: unreachable"}
    )
    assert phase == "Failed"
    assert degraded["status"] == "True"
    assert degraded["reason"] == "RunFailed"
    assert degraded["message"] == "model 'm' at http://x: unreachable"
    assert phase_and_degraded({**done, "outcome": "Deadlocked"})[1]["reason"] == "RunDeadlocked"


def test_an_agent_that_runs_code_gets_a_sandbox_pod_for_its_policy() -> None:
    agents = [
        {"name": "lead", "role": "senior", "subordinates": ["dev"]},
        {
            "name": "dev",
            "role": "junior",
            "sandboxPolicyRef": {"name": "strict"},
            "tools": [{"name": "python", "version": "^1"}],
        },
    ]
    p = plan(spec(agents=agents))
    by_key = {(c["kind"], c["metadata"]["name"]): c for c in p.children}
    deployment = by_key[("Deployment", "research-sandbox-strict")]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    assert container["image"] == PODS.sandbox_image
    assert container["args"][:4] == ["temp", "--listen", "0.0.0.0:7000", "--policy"]
    policy = json.loads(container["args"][4])  # the policy's limits, which runs may only tighten
    assert policy["timeout_s"] > 0
    assert policy["memory_bytes"] > 0
    assert set(policy) >= {"cpu_seconds", "pids", "output_bytes", "deny", "allow", "filesystem"}
    network = by_key[("NetworkPolicy", "research-sandbox-strict")]["spec"]
    assert network["egress"] == []
    assert network["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 7000}]
    assert ("Service", "research-sandbox-strict") in by_key
    config = yaml.safe_load(by_key[("ConfigMap", "research-dev-config")]["data"]["agent.yaml"])
    assert config["sandboxUrl"] == "tcp://research-sandbox-strict.default.svc:7000"
    lead = yaml.safe_load(by_key[("ConfigMap", "research-lead-config")]["data"]["agent.yaml"])
    assert lead["sandboxUrl"] is None


def test_no_sandbox_pod_without_a_code_tool() -> None:
    kinds = {(c["kind"], c["metadata"]["name"]) for c in plan().children}
    assert ("Deployment", "research-sandbox-strict") not in kinds


def test_every_pod_of_the_team_goes_where_the_operator_and_the_team_say() -> None:
    agents = [
        {"name": "lead", "role": "senior", "subordinates": ["dev"]},
        {
            "name": "dev",
            "role": "junior",
            "sandboxPolicyRef": {"name": "strict"},
            "tools": [{"name": "python", "version": "^1"}],
        },
    ]
    scheduling = {
        "nodeSelector": {"pool": "agents", "zone": "b"},
        "tolerations": [
            {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "flaky", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        ],
    }
    s = spec(agents=agents, scheduling=scheduling)
    s["model"] = {"provider": "embedded", "name": "smollm2-135m-instruct"}
    operator_pods = AgentPodSettings(
        image="hive:test",
        node_selector={"zone": "a", "os": "linux"},
        tolerations=({"key": "hive", "operator": "Equal", "value": "yes"},),
    )
    observed = TeamObserved(sandbox_policies={"strict": POLICY})
    p = plan_team(OWNER, s, None, observed, operator_pods, T0)
    pods = [c["spec"]["template"]["spec"] for c in p.children if c["kind"] == "Deployment"]
    assert len(pods) == 4  # two agents, the embedded model, one sandbox
    for pod in pods:
        assert pod["nodeSelector"] == {"zone": "b", "os": "linux", "pool": "agents"}
        assert pod["tolerations"] == [
            {"key": "hive", "operator": "Equal", "value": "yes"},
            {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"},
            {"key": "flaky", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30},
        ]


def test_a_toleration_that_cannot_match_is_an_invalid_spec() -> None:
    bad = {"tolerations": [{"operator": "Equal", "value": "x"}]}
    p = plan(spec(scheduling=bad))
    ready = cond(p, "Ready")
    assert ready.status == "False"
    assert ready.reason == "InvalidSpec"
    assert "spec.scheduling.tolerations[0]" in ready.message
    assert "operator must be Exists when key is empty" in ready.message
    assert p.children == []


# --- Why pods cannot run ---------------------------------------------------------------------
BOTH = ("research-lead", "research-dev")


def pod(
    name: str = "research-lead-7d9f-abcde",
    *,
    node: str | None = "node-1",
    phase: str = "Pending",
    waiting: tuple[str, str] | None = None,
    last: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    deleting: bool = False,
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "agent", "ready": False, "restartCount": 0}
    if waiting:
        container["state"] = {"waiting": {"reason": waiting[0], "message": waiting[1]}}
    else:
        container["state"] = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}
    if last:
        container["lastState"] = {"terminated": last}
    meta: dict[str, Any] = {"name": name, "labels": {"hive.dev/agent": "lead"}}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return {
        "metadata": meta,
        "spec": {"nodeName": node} if node else {},
        "status": {
            "phase": phase,
            "conditions": conditions or [],
            "containerStatuses": [container],
        },
    }


def observed(*pods: dict[str, Any]) -> list[PodObserved]:
    return [p for p in (observe_pod(x) for x in pods) if p is not None]


NEVER_PULL = (
    "ErrImageNeverPull",
    'Container image "hive:test" is not present with pull policy of Never',
)


def test_an_image_the_node_lacks_says_so_in_ready_and_recovers() -> None:
    deployments = {"research-lead": available("research-lead", 0)}
    deployments["research-dev"] = available("research-dev")
    stuck = plan(deployments=deployments, pods={"lead": observed(pod(waiting=NEVER_PULL))})
    ready = cond(stuck, "Ready")
    assert (ready.status, ready.reason) == ("False", "PodsFailing")
    assert ready.message == (
        'agent lead: container agent: ErrImageNeverPull: Container image "hive:test" is not '
        "present with pull policy of Never"
    )
    assert (cond(stuck, "Degraded").status, cond(stuck, "Degraded").reason) == (
        "True",
        "PodsFailing",
    )
    assert cond(stuck, "Progressing").status == "False"
    assert stuck.status.phase == "Pending"
    assert stuck.prune

    # the image arrives: the pod runs, the Deployment is available, the team is Ready again
    later = T0 + dt.timedelta(minutes=5)
    healthy = {n: available(n) for n in BOTH}
    recovered = plan(
        deployments=healthy,
        pods={"lead": observed(pod(phase="Running"))},
        previous=stuck.status.wire(),
        now=later,
    )
    ready = cond(recovered, "Ready")
    assert (ready.status, ready.reason) == ("True", "AllAgentsAvailable")
    assert ready.last_transition_time == later
    assert (cond(recovered, "Degraded").status, cond(recovered, "Degraded").reason) == (
        "False",
        "AsExpected",
    )
    assert recovered.status.phase == "Running"


def test_every_failing_waiting_reason_is_reported_and_creating_is_not() -> None:
    healthy = {n: available(n) for n in BOTH}
    for reason in (
        "ErrImageNeverPull",
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    ):
        p = plan(deployments=healthy, pods={"lead": observed(pod(waiting=(reason, "why")))})
        assert cond(p, "Ready").reason == "PodsFailing", reason
        assert cond(p, "Ready").message == f"agent lead: container agent: {reason}: why"
    creating = plan(
        deployments=healthy, pods={"lead": observed(pod(waiting=("ContainerCreating", "")))}
    )
    assert cond(creating, "Ready").reason == "AllAgentsAvailable"


def test_a_crash_loop_quotes_the_last_exit() -> None:
    crashing = pod(
        phase="Running",
        waiting=("CrashLoopBackOff", "back-off 40s restarting failed container=agent"),
        last={"exitCode": 2, "reason": "Error", "message": "config: no such\nfile"},
    )
    p = plan(pods={"lead": observed(crashing)})
    assert cond(p, "Ready").message == (
        "agent lead: container agent: CrashLoopBackOff: back-off 40s restarting failed "
        "container=agent; last exit code 2 (Error): config: no such file"
    )


def test_a_pod_no_node_fits_quotes_the_scheduler() -> None:
    unschedulable = pod(
        node=None,
        conditions=[
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/1 nodes are available: 1 node(s) didn't match node selector.",
            }
        ],
    )
    p = plan(pods={"lead": observed(unschedulable)})
    ready = cond(p, "Ready")
    assert (ready.status, ready.reason) == ("False", "PodsFailing")
    assert ready.message == (
        "agent lead: Unschedulable: 0/1 nodes are available: 1 node(s) didn't match node selector."
    )


def test_a_pod_without_a_sandbox_is_reported_after_a_grace() -> None:
    creating = pod(
        waiting=("ContainerCreating", ""),
        conditions=[
            {
                "type": "PodReadyToStartContainers",
                "status": "False",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    )
    pods = {"lead": observed(creating)}
    soon = plan(pods=pods, now=T0 + dt.timedelta(seconds=30))
    assert cond(soon, "Ready").reason == "AgentsUnavailable"
    late = plan(pods=pods, now=T0 + dt.timedelta(minutes=3))
    ready = cond(late, "Ready")
    assert (ready.status, ready.reason) == ("False", "PodsFailing")
    assert ready.message == (
        "agent lead: pod research-lead-7d9f-abcde has no sandbox after 90s "
        "(PodReadyToStartContainers=False; the pod's events say why)"
    )


def test_the_runtimes_words_are_quoted_once_its_event_is_read() -> None:
    creating = pod(
        waiting=("ContainerCreating", ""),
        conditions=[
            {
                "type": "PodReadyToStartContainers",
                "status": "False",
                "lastTransitionTime": "2026-01-01T00:00:00Z",
            }
        ],
    )
    (seen,) = observed(creating)
    now = T0 + dt.timedelta(seconds=12)
    assert not needs_sandbox_event(seen, T0 + dt.timedelta(seconds=5))
    assert needs_sandbox_event(seen, now)
    said = replace(
        seen,
        sandbox_failure='FailedCreatePodSandBox: no runtime for "nosuch" is configured',
    )
    ready = cond(plan(pods={"lead": [said]}, now=now), "Ready")
    assert (ready.status, ready.reason) == ("False", "PodsFailing")
    assert ready.message == (
        "agent lead: pod research-lead-7d9f-abcde cannot start: FailedCreatePodSandBox: "
        'no runtime for "nosuch" is configured'
    )


def test_a_waiting_pod_asks_for_a_reconcile_when_a_grace_ends() -> None:
    creating = observed(
        pod(
            waiting=("ContainerCreating", ""),
            conditions=[
                {
                    "type": "PodReadyToStartContainers",
                    "status": "False",
                    "lastTransitionTime": "2026-01-01T00:00:00Z",
                }
            ],
        )
    )
    assert recheck_after(creating, T0 + dt.timedelta(seconds=4)) == 7.0  # 10 s grace, +1
    assert recheck_after(creating, T0 + dt.timedelta(seconds=30)) == 61.0  # then 90 s
    assert recheck_after(creating, T0 + dt.timedelta(minutes=5)) is None
    assert recheck_after(observed(pod(phase="Running")), T0) is None


def test_a_node_gone_not_ready_is_named_and_recovers() -> None:
    healthy = {n: available(n) for n in BOTH}
    pods = {"lead": observed(pod(phase="Running"))}
    down = plan(
        deployments=healthy,
        pods=pods,
        nodes_not_ready={"node-1": "NodeStatusUnknown: Kubelet stopped posting node status."},
    )
    ready = cond(down, "Ready")
    assert (ready.status, ready.reason) == ("False", "NodeNotReady")
    assert ready.message == (
        "agent lead: node node-1 is NotReady "
        "(NodeStatusUnknown: Kubelet stopped posting node status.)"
    )
    assert cond(down, "Degraded").status == "True"
    back = plan(deployments=healthy, pods=pods, previous=down.status.wire())
    assert cond(back, "Ready").reason == "AllAgentsAvailable"
    assert down.status.phase == "Pending"
    assert back.status.phase == "Running"


def test_the_node_comes_first_then_pods_then_deployments() -> None:
    broken = available("research-dev", 0)
    broken["status"]["conditions"] = [
        {"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"}
    ]
    deployments = {"research-lead": available("research-lead"), "research-dev": broken}
    dev_pod = pod("research-dev-1", node="node-2", waiting=("ErrImagePull", "not found"))
    pods = {"lead": observed(pod(phase="Running")), "dev": observed(dev_pod)}
    p = plan(deployments=deployments, pods=pods, nodes_not_ready={"node-1": ""})
    ready = cond(p, "Ready")
    assert ready.reason == "NodeNotReady"
    assert ready.message == (
        "agent lead: node node-1 is NotReady; agent dev: container agent: ErrImagePull: "
        "not found; dev: quota exceeded"
    )
    assert cond(plan(deployments=deployments, pods=pods), "Ready").reason == "PodsFailing"


def test_replicas_with_one_problem_are_counted_once() -> None:
    one = pod("research-lead-a", waiting=NEVER_PULL)
    two = pod("research-lead-b", waiting=NEVER_PULL)
    message = cond(plan(pods={"lead": observed(one, two)}), "Ready").message
    assert message.endswith("pull policy of Never (2 pods)")
    assert message.count("agent lead") == 1


def test_pods_on_their_way_out_or_of_other_agents_do_not_count() -> None:
    healthy = {n: available(n) for n in BOTH}
    assert observe_pod(pod(waiting=NEVER_PULL, deleting=True)) is None
    assert observe_pod(pod(phase="Failed", waiting=NEVER_PULL)) is None
    stray = {"gone": observed(pod(waiting=NEVER_PULL))}
    assert cond(plan(deployments=healthy, pods=stray), "Ready").reason == "AllAgentsAvailable"


def test_a_suspended_team_ignores_its_pods() -> None:
    p = plan(spec(suspend=True), pods={"lead": observed(pod(waiting=NEVER_PULL))})
    assert cond(p, "Ready").reason == "Suspended"


def test_node_readiness_reads_the_ready_condition() -> None:
    def node(*conditions: dict[str, Any]) -> dict[str, Any]:
        return {"metadata": {"name": "n"}, "status": {"conditions": list(conditions)}}

    assert node_not_ready(node({"type": "Ready", "status": "True"})) is None
    assert (
        node_not_ready(
            node(
                {"type": "MemoryPressure", "status": "False"},
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                },
            )
        )
        == "NodeStatusUnknown: Kubelet stopped posting node status."
    )
    assert node_not_ready({}) == "it reports no Ready condition"


def test_a_long_message_is_clipped() -> None:
    long = pod(waiting=("ErrImagePull", "x" * 5000))
    message = cond(plan(pods={"lead": observed(long)}), "Ready").message
    assert len(message) == len("agent lead: ") + 300
    assert message.endswith("...")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["metadata", "spec", "status", "kind"]),
        json_values
        | st.fixed_dictionaries(
            {
                "phase": json_values,
                "conditions": json_values,
                "containerStatuses": json_values,
                "nodeName": json_values,
            }
        ),
    )
)
def test_any_pod_shape_is_observed_without_an_error(body: dict[str, Any]) -> None:
    seen = observe_pod(body)
    if seen is not None:
        plan(pods={"lead": [seen]}, nodes_not_ready={"n": "x"})
    node_not_ready(body)


def test_with_vault_the_agents_get_its_address_ca_and_port_and_no_key_from_a_secret() -> None:
    vault = PodVault(address="https://10.88.0.1:8200", ca_pem="-----BEGIN CERTIFICATE-----x")
    s = spec()
    s["model"] = {"name": "m", "endpoint": "http://vllm:8000/v1", "vaultRef": {"path": "hive/m"}}
    pods = AgentPodSettings(image="hive:test", vault=vault)
    p = plan_team(OWNER, s, None, TeamObserved(sandbox_policies={"strict": POLICY}), pods, T0)
    deployment = child(p, "Deployment", "research-lead")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HIVE_VAULT__ADDRESS"] == "https://10.88.0.1:8200"
    assert env["HIVE_VAULT__CA_FILE"] == "/etc/hive/vault-ca.crt"
    assert "HIVE_MODEL_API_KEY" not in env
    config = child(p, "ConfigMap", "research-lead-config")
    assert config["data"]["vault-ca.crt"] == vault.ca_pem
    egress = child(p, "NetworkPolicy", "research-lead")["spec"]["egress"]
    open_ports = {port["port"] for rule in egress if "to" not in rule for port in rule["ports"]}
    assert 8200 in open_ports
