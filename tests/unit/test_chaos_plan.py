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


def test_a_duration_shortened_while_running_ends_the_faults_at_once() -> None:
    running = step(None, T0, s=spec(duration="10m")).status.wire()
    during = step(running, T0 + dt.timedelta(seconds=40), s=spec(duration="10m"))
    until = json.loads(during.actions.fault_config["data"]["exp.json"])["until"]
    assert until.startswith("2026-01-01T12:10:00"), until

    shortened = step(during.status.wire(), T0 + dt.timedelta(seconds=41), s=spec(duration="1s"))
    assert shortened.status.injected == [], "the faults are rolled back on the next step"
    assert shortened.actions.remove_partition
    assert "data" not in shortened.actions.fault_config
    assert shortened.status.end_time == T0 + dt.timedelta(seconds=41)


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
    assert status["failuresDetected"] == 3, "ready once, healthy once, coder Failed once"


def test_failures_after_rollback_count_the_same_way() -> None:
    s = spec(probes=TWO_PROBES)
    both_down, ready_up = team(ready=False, failed=("coder",)), team(failed=("coder",))
    status = step(None, T0, s=s).status.wire()
    for at, t in ((10, both_down), (31, both_down), (33, ready_up), (35, both_down)):
        plan = step(status, T0 + dt.timedelta(seconds=at), t, s)
        status = plan.status.wire()
    assert plan.status.injected == [], "rolled back at 31s"
    assert plan.status.phase == "Running", "recovering"
    assert plan.status.failures_detected == 4, "ready twice, healthy once, coder Failed once"
    late = step(status, T0 + dt.timedelta(seconds=31 + 61), both_down, s)
    assert (late.status.verdict, late.status.failures_detected) == ("Fail", 4)


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


def probed(kind: str, **extra: Any) -> dict[str, Any]:
    """The experiment with one probe of `kind`, named after it."""
    return spec(probes=[{"name": kind, "kind": kind, **extra}])


def with_status(base: dict[str, Any] | None = None, **status: Any) -> dict[str, Any]:
    t = base or team()
    t["status"].update(status)
    return t


def run(outcome: str, started: dt.datetime = T0, finished: dt.datetime | None = None) -> Any:
    out: dict[str, Any] = {"outcome": outcome, "coordinator": "lead", "startedAt": started}
    if finished is not None:
        out["finishedAt"] = finished.isoformat()
    out["startedAt"] = started.isoformat()
    return out


def at(seconds_after: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds_after)


def through(s: dict[str, Any], moments: list[tuple[float, dict[str, Any]]]) -> Any:
    """Plan at each (seconds after T0, team seen) in turn, from the injection at T0."""
    plan = step(None, T0, moments[0][1], s)
    for when, t in moments:
        plan = step(plan.status.wire(), at(when), t, s)
    return plan


def test_run_succeeds_waits_for_a_running_run_then_passes() -> None:
    s = probed("run-succeeds")
    going = with_status(run=run("Running", started=at(-5)))
    done = with_status(run=run("Succeeded", started=at(-5), finished=at(40)))
    plan = through(s, [(10, going), (31, going), (35, going)])
    assert (plan.status.phase, plan.status.verdict) == ("Running", None), "waits for the run"
    assert plan.status.probe_results[0].waiting
    assert plan.status.failures_detected == 0, "a running run is no failure"
    plan = step(plan.status.wire(), at(41), done, s)
    assert (plan.status.verdict, plan.status.recovery_time_seconds) == ("Pass", 10.0)


def test_run_succeeds_fails_at_once_naming_the_probe_when_the_run_fails() -> None:
    s = probed("run-succeeds")
    failed = with_status(run=run("Failed", started=at(1), finished=at(20)) | {"message": "boom"})
    plan = through(s, [(10, with_status(run=run("Running", at(1)))), (20, failed), (31, failed)])
    assert plan.status.verdict is None, "the faults are rolled back first"
    plan = step(plan.status.wire(), at(33), failed, s)
    assert (plan.status.phase, plan.status.verdict) == ("Completed", "Fail")
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert "run-succeeds (run-succeeds): the team's run ended Failed: boom" in ready.message
    assert plan.status.failures_detected == 1


def test_run_succeeds_ignores_a_run_that_ended_before_the_faults() -> None:
    s = probed("run-succeeds")
    old = with_status(run=run("Succeeded", started=at(-60), finished=at(-30)))
    plan = through(s, [(31, old), (40, old)])
    assert plan.status.probe_results[0].waiting
    assert "ended before the faults" in plan.status.probe_results[0].message
    late = step(plan.status.wire(), at(31 + 61), old, s)
    assert late.status.verdict == "Fail"


def latencies(**p95: int | None) -> dict[str, Any]:
    agents = [{"name": a, "stepLatencyP95Ms": v} for a, v in p95.items() if v is not None]
    return with_status(agents=agents)


def test_step_latency_passes_under_the_bound_and_fails_over_it() -> None:
    s = probed("step-latency", thresholdMs=1000)
    fast = latencies(coder=300, researcher=900, lead=5000)  # lead is no target
    plan = through(s, [(10, fast), (31, fast), (33, fast)])
    assert plan.status.verdict == "Pass"
    slow = latencies(coder=1500, researcher=900)
    plan = through(s, [(10, slow), (20, slow), (31, slow)])
    assert plan.status.failures_detected == 1, "failing across ticks counts once"
    assert "coder 1500 ms" in plan.status.probe_results[0].message
    late = step(plan.status.wire(), at(31 + 61), slow, s)
    assert late.status.verdict == "Fail"


def test_step_latency_without_any_step_says_what_is_missing() -> None:
    s = probed("step-latency", thresholdMs=1000)
    plan = through(s, [(10, team()), (31, team())])
    result = plan.status.probe_results[0]
    assert (result.passed, result.waiting) == (False, True)
    assert result.message == "no step latency reported yet (no step taken by coder, researcher)"
    assert plan.status.failures_detected == 0
    late = step(plan.status.wire(), at(31 + 61), team(), s)
    assert late.status.verdict == "Fail"
    assert "no step taken" in next(c for c in late.status.conditions if c.type == "Ready").message


def breakers(state: str, agent: str = "coder") -> dict[str, Any]:
    entry = {"dependency": "model:m", "state": state, "failures": 3, "since": T0.isoformat()}
    return with_status(agents=[{"name": agent, "phase": "Working", "breakers": [entry]}])


def test_breaker_recovers_passes_once_closed_after_the_faults() -> None:
    s = probed("breaker-recovers")
    plan = through(s, [(5, breakers("open")), (10, breakers("half-open")), (31, breakers("open"))])
    assert plan.status.failures_detected == 1, "one breaker episode, open or half-open"
    assert plan.status.open_failures == ["breaker:coder/model:m"]
    assert plan.status.probe_results[0].waiting
    plan = step(plan.status.wire(), at(37), breakers("closed"), s)
    assert (plan.status.verdict, plan.status.recovery_time_seconds) == ("Pass", 6.0)


def test_breaker_still_open_at_the_deadline_fails_naming_the_probe() -> None:
    s = probed("breaker-recovers")
    plan = through(s, [(5, breakers("open")), (31, breakers("open"))])
    late = step(plan.status.wire(), at(31 + 60), breakers("open"), s)
    assert late.status.verdict == "Fail"
    ready = next(c for c in late.status.conditions if c.type == "Ready")
    assert "breaker-recovers did not hold within 60s" in ready.message
    assert "coder/model:m" in ready.message


def test_distinct_failures_over_many_ticks() -> None:
    """Breakers and agents count once per episode: open, close, open again is two."""
    s = probed("agents-healthy")
    failed = with_status(agents=[{"name": "coder", "phase": "Failed"}])
    seen = [breakers("open")] * 5 + [breakers("closed")] * 3 + [breakers("open")] * 5
    seen += [failed] * 4 + [team()] * 2
    plan = step(None, T0, team(), s)
    for i, t in enumerate(seen, start=1):
        plan = step(plan.status.wire(), at(i * 0.5), t, s)
    # breaker twice; coder Failed once and agents-healthy failing once
    assert plan.status.failures_detected == 4
    assert plan.status.open_failures == []


def test_step_latency_needs_its_threshold() -> None:
    plan = plan_chaos(OWNER, probed("step-latency"), None, team(), T0)
    assert plan.status.phase == "Failed"
    ready = next(c for c in plan.status.conditions if c.type == "Ready")
    assert "thresholdMs" in ready.message
