"""The ChaosExperiment state machine: write-ahead injection, rollback, verdicts, schedules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hive.reconcile.chaos import plan_chaos, seconds
from hive.reconcile.meta import Owner

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)
OWNER = Owner("ChaosExperiment", "exp", "default", "uid-exp", generation=1)


def team(ready: bool = True, failed: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "metadata": {"name": "research", "uid": "uid-team"},
        "spec": {"agents": [{"name": n} for n in ("lead", "researcher", "coder")]},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "X"}
            ],
            "agents": [{"name": n, "phase": "Failed"} for n in failed],
        },
    }


def spec(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "selector": {"team": "research", "agents": ["researcher", "coder"], "mode": "all"},
        "faults": [
            {"type": "latency", "latencyMs": 500},
            {"type": "network-partition"},
            {"type": "pod-kill"},
        ],
        "duration": "30s",
        "recoveryTimeout": "60s",
        "probes": [{"name": "ready", "kind": "team-ready"}],
    }
    base.update(overrides)
    return base


def step(
    status: dict[str, Any] | None,
    now: dt.datetime,
    t: dict[str, Any] | None = None,
    s: dict[str, Any] | None = None,
) -> Any:
    return plan_chaos(OWNER, s or spec(), status, team() if t is None else t, now)


def test_pending_injects_after_recording_the_faults() -> None:
    plan = step(None, T0)
    assert plan.status_first, "faults are recorded before they are put in place"
    assert plan.status.phase == "Running"
    assert plan.status.targets == ["coder", "researcher"]
    assert [f.type for f in plan.status.injected] == ["latency", "network-partition", "pod-kill"]
    actions = plan.actions
    payload = json.loads(actions.fault_config["data"]["exp.json"])
    assert payload["agents"] == ["coder", "researcher"]
    assert payload["faults"][0]["latencyMs"] == 500
    selector = actions.partition["spec"]["podSelector"]
    assert selector["matchExpressions"][0]["values"] == ["coder", "researcher"]
    assert actions.kill_agents == ["coder", "researcher"]


def test_running_keeps_faults_without_killing_again_then_rolls_back() -> None:
    running = step(None, T0).status.wire()
    during = step(running, T0 + dt.timedelta(seconds=10), team(ready=False))
    assert during.actions.kill_agents == []
    assert during.actions.partition is not None
    assert during.status.failures_detected == 1

    after = step(during.status.wire(), T0 + dt.timedelta(seconds=31), team(ready=False))
    assert after.status.injected == []
    assert after.actions.remove_partition
    assert "data" not in after.actions.fault_config, "the experiment gives its key back"
    assert after.status.phase == "Running"

    recovered = step(after.status.wire(), T0 + dt.timedelta(seconds=36))
    assert recovered.status.phase == "Completed"
    assert recovered.status.verdict == "Pass"
    assert recovered.status.recovery_time_seconds == 5.0
    ready = next(c for c in recovered.status.conditions if c.type == "Ready")
    assert ready.status == "True"


def test_no_recovery_within_the_timeout_fails() -> None:
    s = step(None, T0).status.wire()
    s = step(s, T0 + dt.timedelta(seconds=31), team(ready=False)).status.wire()
    late = step(s, T0 + dt.timedelta(seconds=31 + 61), team(ready=False))
    assert (late.status.phase, late.status.verdict) == ("Completed", "Fail")
    ready = next(c for c in late.status.conditions if c.type == "Ready")
    assert "ready did not hold within 60s" in ready.message


def test_pause_rolls_back_and_unpause_starts_again() -> None:
    s = step(None, T0).status.wire()
    paused = step(s, T0 + dt.timedelta(seconds=5), s=spec(pause=True))
    assert paused.status.phase == "Paused"
    assert paused.status.injected == []
    assert paused.actions.remove_partition
    resumed = step(paused.status.wire(), T0 + dt.timedelta(seconds=9))
    assert resumed.status.phase == "Running"
    assert resumed.status.runs == 2


def test_missing_team_waits_with_the_field_named() -> None:
    plan = plan_chaos(OWNER, spec(), None, None, T0)
    assert plan.status.phase == "Pending"
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert ready.message == "spec.selector.team: AgentTeam 'research' not found"
    assert plan.actions.fault_config is None


def test_selection_is_stable_for_a_seed_and_respects_the_mode() -> None:
    one = spec(selector={"team": "research", "mode": "one"})
    picks = {tuple(step(None, T0, s=one).status.targets) for _ in range(5)}
    assert len(picks) == 1
    half = spec(selector={"team": "research", "mode": "fixed-percent", "value": 50})
    assert len(step(None, T0, s=half).status.targets) == 2


def test_a_schedule_starts_the_next_run_when_due() -> None:
    scheduled = spec(schedule={"cron": "*/5 * * * *"}, duration="10s")
    s = step(None, T0, s=scheduled).status.wire()
    s = step(s, T0 + dt.timedelta(seconds=11), s=scheduled).status.wire()
    done = step(s, T0 + dt.timedelta(seconds=12), s=scheduled)
    assert done.status.phase == "Completed"
    waiting = step(done.status.wire(), T0 + dt.timedelta(seconds=13), s=scheduled)
    assert waiting.status.next_run == T0 + dt.timedelta(minutes=5)
    again = step(waiting.status.wire(), T0 + dt.timedelta(minutes=5), s=scheduled)
    assert (again.status.phase, again.status.runs) == ("Running", 2)


def test_durations() -> None:
    assert seconds("1h30m") == 5400
    assert seconds("250ms") == 0.25
