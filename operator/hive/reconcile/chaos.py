"""ChaosExperiment: a state machine from Pending to Completed, with rollback always possible.

::

    Pending --inject--> Running --duration over: roll back--> Running (recovering)
       ^                   |                                        |
       |                 pause                        probes hold / deadline passes
       |                   v                                        v
       +--- schedule --- Paused                         Completed (Pass | Fail)

Probes (see hive.reconcile.probes) are checked at every step of a run; ``failuresDetected``
counts failure episodes (a probe failing, an agent Failed, a breaker open), not checks. The run
passes when every probe holds after rollback, with ``recoveryTimeSeconds`` from rollback to
then; it fails when the recovery timeout passes first, or at once when the team's run ended
other than Succeeded; the Ready condition names the probes that did not hold and what they saw.
Every decision takes the time as an argument, so the machine is tested with explicit times.

An experiment that has finished (Completed or Failed, with no schedule to start it again) has
nothing left to do on its own: ``needs_polling`` says so, and only a change to it wakes it.

Faults are recorded in ``status.injected`` *before* they are put in place, so a crash between
the two still leaves a record to roll back from. Every fault is idempotent to apply and to
remove: the team's fault ConfigMap holds one key per experiment, written with server-side apply
under the experiment's own field manager (so removing it leaves other experiments' keys alone);
a partition is a NetworkPolicy named after the experiment; a pod kill happens once, at
injection.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from croniter import croniter
from pydantic import ValidationError

from hive.api.chaos import (
    AgentFaults,
    ChaosExperimentSpec,
    ChaosExperimentStatus,
    ChaosPhase,
    Fault,
    FaultType,
    InjectedFault,
    ProbeResult,
    SelectorMode,
    Verdict,
)
from hive.api.common import Condition, describe_validation_error
from hive.reconcile.agentteam import fault_configmap_name
from hive.reconcile.conditions import condition, merge_conditions
from hive.reconcile.meta import AGENT_LABEL, CHAOS_LABEL, TEAM_LABEL, Owner, child_name, metadata
from hive.reconcile.probes import (
    Window,
    count_new,
    evaluate_probes,
    failing_for_good,
    failures_now,
)

JSON = dict[str, Any]
FAULTS_LABEL = "hive.dev/faults-for"
OPERATOR_FAULTS = (FaultType.POD_KILL,)  # every other type is injected by the agents


def field_manager(experiment: str) -> str:
    return child_name("hive-chaos", experiment, limit=128)


def seconds(duration: str) -> float:
    """'90s', '5m', '1h30m', '250ms' in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(float(n) * units[u] for n, u in re.findall(r"([0-9.]+)(ms|s|m|h|d)", duration))


@dataclass(frozen=True)
class ChaosActions:
    """What to do in the cluster, besides writing the status."""

    fault_config: JSON | None = None  # apply under the experiment's field manager
    partition: JSON | None = None  # apply
    remove_partition: bool = False
    kill_agents: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChaosPlan:
    status: ChaosExperimentStatus
    actions: ChaosActions
    status_first: bool = False  # write-ahead: record the faults before putting them in


def choose_targets(spec: ChaosExperimentSpec, members: list[str], seed: str) -> list[str]:
    """The agents the selector picks, the same ones for the same seed."""
    candidates = [a for a in (spec.selector.agents or members) if a in members]
    if not candidates:
        return []
    rng = random.Random(int(hashlib.sha256(seed.encode()).hexdigest()[:16], 16))  # noqa: S311
    mode, value = spec.selector.mode, spec.selector.value or 1
    if mode == SelectorMode.ALL:
        count = len(candidates)
    elif mode == SelectorMode.FIXED:
        count = min(value, len(candidates))
    elif mode == SelectorMode.FIXED_PERCENT:
        count = max(1, math.ceil(len(candidates) * value / 100))
    else:
        count = 1
    return sorted(rng.sample(candidates, count))


FINISHED = (ChaosPhase.COMPLETED, ChaosPhase.FAILED)


def needs_polling(spec: Mapping[str, Any], status: Mapping[str, Any] | None) -> bool:
    """Whether the experiment has steps left to take on its own, so a timer must look at it.

    A finished one (Completed or Failed) has none unless a schedule starts it again; a change
    to its spec is seen by the operator without polling.
    """
    phase = (status or {}).get("phase")
    return phase not in FINISHED or bool(spec.get("schedule"))


def fault_file(
    experiment: str,
    agents: list[str],
    faults: list[Fault],
    start: dt.datetime,
    until: dt.datetime,
    seed: int | None,
) -> str:
    """The text of an experiment's fault file, as the agents read it (see
    hive.runtime.resilience.faultspec): its agents, faults, time window and seed."""
    payload: JSON = {
        "experiment": experiment,
        "agents": agents,
        "faults": [f.wire() for f in faults if f.type not in OPERATOR_FAULTS],
        "start": start.isoformat(),
        "until": until.isoformat(),
    }
    if seed is not None:
        payload["seed"] = seed
    return json.dumps(payload, sort_keys=True)


def agents_report(
    experiment: str, team: Mapping[str, Any] | None, previous: list[AgentFaults]
) -> tuple[list[AgentFaults], list[str]]:
    """What the team's agents say they injected for `experiment` (merged with what was seen
    before, so a restarted agent's lower count does not take injections back), and the faults
    they skipped, each as "agent: problem"."""
    merged = {(a.agent, str(a.type)): a for a in previous}
    problems: list[str] = []
    for entry in ((team or {}).get("status") or {}).get("agents") or []:
        agent = str(entry.get("name") or "")
        for raw in entry.get("faults") or []:
            if raw.get("experiment") != experiment:
                continue
            try:
                fields = {k: v for k, v in raw.items() if k != "experiment"}
                seen = AgentFaults.model_validate({"agent": agent, **fields})
            except ValidationError:
                continue
            before = merged.get((agent, str(seen.type)))
            if before is not None:
                seen = seen.model_copy(
                    update={
                        "count": max(seen.count, before.count),
                        "first_time": min(seen.first_time, before.first_time),
                        "last_time": max(seen.last_time, before.last_time),
                    }
                )
            merged[(agent, str(seen.type))] = seen
        for raw in entry.get("faultProblems") or []:
            if raw.get("experiment") == experiment and raw.get("message"):
                problems.append(f"{agent}: {raw['message']}")
    return [merged[k] for k in sorted(merged)], sorted(set(problems))[:50]


def _fault_config(owner: Owner, team_uid: str, team: str, data: dict[str, str]) -> JSON:
    """The experiment's share of the team's fault ConfigMap; no data gives its key back."""
    config: JSON = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": fault_configmap_name(team),
            "namespace": owner.namespace,
            # Not TEAM_LABEL: the team's reconcile must not prune what experiments write.
            "labels": {FAULTS_LABEL: team, "app.kubernetes.io/managed-by": "hive-operator"},
            "ownerReferences": [
                {
                    "apiVersion": "hive.dev/v1alpha1",
                    "kind": "AgentTeam",
                    "name": team,
                    "uid": team_uid,
                }
            ],
        },
    }
    if data:
        config["data"] = data
    return config


def _partition(owner: Owner, team: str, agents: list[str]) -> JSON:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(child_name("chaos", owner.name), owner, {CHAOS_LABEL: owner.name}),
        "spec": {
            "podSelector": {
                "matchLabels": {TEAM_LABEL: team},
                "matchExpressions": [{"key": AGENT_LABEL, "operator": "In", "values": agents}],
            },
            "policyTypes": ["Ingress", "Egress"],
        },
    }


def rollback_actions(owner: Owner, team: str, team_uid: str | None) -> ChaosActions:
    """Undo every recorded fault (safe to repeat, safe when nothing was injected)."""
    config = _fault_config(owner, team_uid, team, {}) if team_uid else None
    return ChaosActions(fault_config=config, remove_partition=True)


def plan_chaos(
    owner: Owner,
    spec_data: Mapping[str, Any],
    status_data: Mapping[str, Any] | None,
    team: Mapping[str, Any] | None,
    now: dt.datetime,
) -> ChaosPlan:
    previous = ChaosExperimentStatus.model_validate(dict(status_data or {}))
    old_conditions: list[Condition] = list(previous.conditions)
    gen = owner.generation

    def finish(
        status: ChaosExperimentStatus,
        ready: tuple[bool, str, str],
        actions: ChaosActions,
        *,
        status_first: bool = False,
    ) -> ChaosPlan:
        cond = condition("Ready", *ready, generation=gen, now=now)
        by_agent, problems = agents_report(owner.name, team, status.faults_injected_by_agent)
        status = status.model_copy(
            update={
                "observed_generation": gen,
                "conditions": merge_conditions(old_conditions, [cond]),
                "faults_injected_by_agent": by_agent,
                "fault_problems": problems,
            }
        )
        return ChaosPlan(status, actions, status_first)

    try:
        spec = ChaosExperimentSpec.model_validate(dict(spec_data))
    except ValidationError as exc:
        return finish(
            previous.model_copy(update={"phase": ChaosPhase.FAILED}),
            (False, "InvalidSpec", describe_validation_error(exc)),
            ChaosActions(),
        )

    team_name = spec.selector.team
    team_uid = (team or {}).get("metadata", {}).get("uid")
    rollback = rollback_actions(owner, team_name, team_uid)
    status = previous

    if spec.pause:
        if status.phase in (ChaosPhase.COMPLETED, ChaosPhase.FAILED):
            return finish(status, (True, "Completed", f"verdict {status.verdict}"), ChaosActions())
        paused = status.model_copy(update={"phase": ChaosPhase.PAUSED, "injected": []})
        return finish(paused, (False, "Paused", "paused: every fault is rolled back"), rollback)

    if status.phase == ChaosPhase.PAUSED:
        status = status.model_copy(update={"phase": ChaosPhase.PENDING})

    if status.phase in (ChaosPhase.COMPLETED, ChaosPhase.FAILED):
        if spec.schedule is None:
            ok = status.verdict == Verdict.PASS
            return finish(status, (ok, "Completed", f"verdict {status.verdict}"), ChaosActions())
        base = status.end_time or now
        due = croniter(spec.schedule.cron, base).get_next(dt.datetime)
        if now < due:
            waiting = status.model_copy(update={"next_run": due})
            ok = status.verdict == Verdict.PASS
            return finish(
                waiting,
                (ok, "Scheduled", f"last verdict {status.verdict}; next run at {due.isoformat()}"),
                ChaosActions(),
            )
        status = status.model_copy(update={"phase": ChaosPhase.PENDING, "next_run": None})

    if status.phase == ChaosPhase.PENDING:
        if team is None:
            return finish(
                status,
                (False, "TeamNotFound", f"spec.selector.team: AgentTeam '{team_name}' not found"),
                ChaosActions(),
            )
        members = [a.get("name") for a in (team.get("spec") or {}).get("agents") or []]
        targets = choose_targets(spec, members, f"{owner.uid}/{status.runs}")
        if not targets:
            return finish(
                status.model_copy(update={"phase": ChaosPhase.FAILED}),
                (False, "NoTargets", "spec.selector matches no agent of the team"),
                ChaosActions(),
            )
        injected = [InjectedFault(type=f.type, target=",".join(targets)) for f in spec.faults]
        probes = evaluate_probes(spec, team, now, targets, Window(now.replace(microsecond=0)))
        episodes = failures_now(team, probes)
        running = status.model_copy(
            update={
                "phase": ChaosPhase.RUNNING,
                "verdict": None,
                "runs": status.runs + 1,
                "start_time": now.replace(microsecond=0),
                "end_time": None,
                "targets": targets,
                "faults_injected": len(injected),
                "failures_detected": len(episodes),
                "open_failures": episodes,
                "recovery_time_seconds": None,
                "injected": injected,
                "probe_results": probes,
            }
        )
        return finish(
            running,
            (False, "Running", f"faults injected into {', '.join(targets)}"),
            _inject(owner, spec, running, team_name, str(team_uid), kill=True),
            status_first=True,
        )

    # Running: faults in place until the duration is over, then recovering until probes hold.
    start = status.start_time or now
    window = Window(start, None if status.injected else status.end_time or now)
    probes = evaluate_probes(spec, team, now, status.targets, window, status.probe_results)
    failing = [p for p in probes if not p.passed]
    episodes = failures_now(team, probes)
    failures = status.failures_detected + count_new(status.open_failures, episodes)
    counted = {"probe_results": probes, "failures_detected": failures, "open_failures": episodes}
    if status.injected:
        if now < start + dt.timedelta(seconds=seconds(spec.duration)):
            running = status.model_copy(update=counted)
            return finish(
                running,
                (False, "Running", f"faults in place on {', '.join(status.targets)}"),
                _inject(owner, spec, running, team_name, str(team_uid), kill=False),
            )
        recovering = status.model_copy(
            update={
                "injected": [],
                "end_time": now.replace(microsecond=0),
                **counted,
            }
        )
        return finish(
            recovering,
            (False, "Recovering", "faults rolled back; waiting for the probes to hold"),
            rollback,
        )
    ended = status.end_time or now
    if not failing:
        done = status.model_copy(
            update={
                "phase": ChaosPhase.COMPLETED,
                "verdict": Verdict.PASS,
                **counted,
                "recovery_time_seconds": round((now - ended).total_seconds(), 3),
            }
        )
        return finish(
            done, (True, "Completed", "verdict Pass: the steady state came back"), rollback
        )
    final = failing_for_good(spec, probes)
    if final or now >= ended + dt.timedelta(seconds=seconds(spec.recovery_timeout)):
        done = status.model_copy(
            update={"phase": ChaosPhase.COMPLETED, "verdict": Verdict.FAIL, **counted}
        )
        return finish(done, (False, "Completed", fail_message(spec, final or failing)), rollback)
    return finish(
        status.model_copy(update=counted),
        (False, "Recovering", "faults rolled back; waiting for the probes to hold"),
        rollback,
    )


def fail_message(spec: ChaosExperimentSpec, failing: list[ProbeResult]) -> str:
    """The Fail verdict's message: each probe that did not hold, and what it saw."""
    kinds = {p.name: str(p.kind) for p in spec.probes}
    names = ", ".join(p.name for p in failing)
    seen = "; ".join(f"{p.name} ({kinds.get(p.name, '?')}): {p.message}" for p in failing)
    return (
        f"verdict Fail: {names} did not hold within {spec.recovery_timeout} of rollback: {seen}"
    )[:1024]


def _inject(
    owner: Owner,
    spec: ChaosExperimentSpec,
    status: ChaosExperimentStatus,
    team: str,
    team_uid: str,
    *,
    kill: bool,
) -> ChaosActions:
    config = None
    if any(f.type not in OPERATOR_FAULTS for f in spec.faults) and status.start_time:
        start = status.start_time
        until = start + dt.timedelta(seconds=seconds(spec.duration))
        text = fault_file(owner.name, status.targets, spec.faults, start, until, spec.seed)
        config = _fault_config(owner, team_uid, team, {f"{owner.name}.json": text})
    types = {f.type for f in spec.faults}
    return ChaosActions(
        fault_config=config,
        partition=_partition(owner, team, status.targets)
        if FaultType.NETWORK_PARTITION in types
        else None,
        kill_agents=status.targets if kill and FaultType.POD_KILL in types else [],
    )
