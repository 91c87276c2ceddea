"""The ChaosExperiment state machine: write-ahead injection, rollback, verdicts, schedules."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from hive.reconcile.chaos import needs_polling, plan_chaos, seconds
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


def ticks(status: dict[str, Any], teams: list[dict[str, Any]], every_s: float = 2.0) -> Any:
    """Run the plan once per tick, `every_s` apart from 2 s after T0, seeing teams[i] at tick i."""
    plan = None
    for i, t in enumerate(teams, start=1):
        plan = step(status, T0 + dt.timedelta(seconds=every_s * i), t)
        status = plan.status.wire()
    return plan


def test_a_probe_failing_across_many_ticks_counts_once() -> None:
    running = step(None, T0).status.wire()
    plan = ticks(running, [team(ready=False)] * 10)
    assert plan.status.phase == "Running", "still within the 30s of faults"
    assert plan.status.failures_detected == 1


def test_failing_recovering_and_failing_again_counts_twice() -> None:
    running = step(None, T0).status.wire()
    down, up = team(ready=False), team()
    plan = ticks(running, [down, down, down, up, up, down, down])
    assert plan.status.failures_detected == 2


TWO_PROBES = [
    {"name": "ready", "kind": "team-ready"},
    {"name": "healthy", "kind": "agents-healthy"},
]


def test_each_probe_counts_its_own_failures() -> None:
    s = spec(probes=TWO_PROBES)
    status = step(None, T0, s=s).status.wire()
    seen = [
        team(ready=False),
        team(ready=False, failed=("coder",)),
        team(failed=("coder",)),
        team(),
    ]
    for i, t in enumerate(seen, start=1):
        status = step(status, T0 + dt.timedelta(seconds=2 * i), t, s).status.wire()
    assert status["failuresDetected"] == 2


def test_failures_after_rollback_count_the_same_way() -> None:
    s = spec(probes=TWO_PROBES)
    both_down, ready_up = team(ready=False, failed=("coder",)), team(failed=("coder",))
    status = step(None, T0, s=s).status.wire()
    for at, t in ((10, both_down), (31, both_down), (33, ready_up), (35, both_down)):
        plan = step(status, T0 + dt.timedelta(seconds=at), t, s)
        status = plan.status.wire()
    assert plan.status.injected == [], "rolled back at 31s"
    assert plan.status.phase == "Running", "recovering"
    assert plan.status.failures_detected == 3, "ready failed twice, healthy once"
    late = step(status, T0 + dt.timedelta(seconds=31 + 61), both_down, s)
    assert (late.status.verdict, late.status.failures_detected) == ("Fail", 3)


def test_a_probe_failing_when_the_faults_go_in_counts_at_once() -> None:
    plan = step(None, T0, team(ready=False))
    assert plan.status.failures_detected == 1
    assert ticks(plan.status.wire(), [team(ready=False)] * 3).status.failures_detected == 1


def test_a_new_run_counts_from_zero() -> None:
    status = step(None, T0, team(ready=False)).status.wire()
    paused = step(status, T0 + dt.timedelta(seconds=2), s=spec(pause=True)).status.wire()
    again = step(paused, T0 + dt.timedelta(seconds=4))
    assert (again.status.runs, again.status.failures_detected) == (2, 0)


def test_only_experiments_with_steps_left_are_polled() -> None:
    scheduled = spec(schedule={"cron": "*/5 * * * *"})
    for phase in (None, "Pending", "Running", "Paused"):
        assert needs_polling(spec(), None if phase is None else {"phase": phase}), phase
    for phase in ("Completed", "Failed"):
        assert not needs_polling(spec(), {"phase": phase}), phase
        assert needs_polling(scheduled, {"phase": phase}), "a schedule starts it again"
    s = step(None, T0).status.wire()
    s = step(s, T0 + dt.timedelta(seconds=31)).status.wire()
    assert needs_polling(spec(), s), "recovering"
    done = step(s, T0 + dt.timedelta(seconds=33)).status
    assert done.phase == "Completed"
    assert not needs_polling(spec(), done.wire())


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
