"""A ChaosExperiment's steady-state probes, judged from the team it observes, and the failures
it counts.

Every probe answers passed, failing, or waiting (no answer yet: not a failure, but no Pass
either; at the recovery deadline a waiting probe fails like a failing one):

- ``team-ready``: the team's Ready condition is True.
- ``agents-healthy`` / ``max-failed-agents``: no agent (at most ``threshold``) in phase Failed.
- ``run-succeeds``: the team's run that was going while the faults were in (``status.run``
  started before the faults ended and had not finished before they began) ends Succeeded.
  Still running, or no such run yet: waiting. Ended otherwise: failing, for good (a run that
  ended does not come back), so a later run replacing it keeps the first answer.
- ``step-latency``: every target agent that reports ``stepLatencyP95Ms`` is at most
  ``thresholdMs``; none reporting yet: waiting, naming the agents without a step.
- ``breaker-recovers``: no breaker of any agent of the team is open or half-open. While one is,
  the probe waits (an open breaker under faults is the breaker working); still open at the
  recovery deadline: the verdict fails on it.

A failure is an episode: a probe failing (not waiting), an agent Failed, a breaker open or
half-open. Each has a key; ``failuresDetected`` grows by the keys seen now that were not open
at the previous check, so one that lasts many checks counts once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hive.api.chaos import ChaosExperimentSpec, Probe, ProbeKind, ProbeResult

FINAL_FAILURES = (ProbeKind.RUN_SUCCEEDS,)  # a failing answer of these never turns


@dataclass(frozen=True)
class Window:
    """When the faults were in: from `start` to `end` (None while they still are)."""

    start: dt.datetime
    end: dt.datetime | None = None


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    try:
        parsed = dt.datetime.fromisoformat(str(value))
    except (TypeError, ValueError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _agents(team: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    status = (team or {}).get("status") or {}
    return [a for a in status.get("agents") or [] if isinstance(a, Mapping)]


def _run_succeeds(team: Mapping[str, Any] | None, window: Window) -> tuple[bool, bool, str]:
    run = ((team or {}).get("status") or {}).get("run")
    if not isinstance(run, Mapping):
        return False, True, "the team reports no run yet"
    outcome = str(run.get("outcome") or "Running")
    started, finished = _time(run.get("startedAt")), _time(run.get("finishedAt"))
    if finished is not None and finished < window.start:
        return False, True, "the team's last run ended before the faults; waiting for one"
    if window.end is not None and started is not None and started > window.end:
        return False, True, "the team's run started after the faults ended; it does not count"
    if outcome == "Running":
        return False, True, "the team's run is still running"
    if outcome == "Succeeded":
        return True, False, "the team's run ended Succeeded"
    why = f": {run['message']}" if run.get("message") else ""
    return False, False, f"the team's run ended {outcome}{why}"[:300]


def _step_latency(
    probe: Probe, team: Mapping[str, Any] | None, targets: list[str]
) -> tuple[bool, bool, str]:
    bound = probe.threshold_ms or 0
    entries = {str(a.get("name")): a for a in _agents(team)}
    agents = targets or sorted(entries)
    seen: dict[str, int] = {}
    for agent in agents:
        value = (entries.get(agent) or {}).get("stepLatencyP95Ms")
        if isinstance(value, int | float) and not isinstance(value, bool):
            seen[agent] = int(value)
    missing = [a for a in agents if a not in seen]
    if not seen:
        who = ", ".join(missing) or "no agent"
        return False, True, f"no step latency reported yet (no step taken by {who})"
    over = {a: v for a, v in seen.items() if v > bound}
    rest = f"; no step yet from {', '.join(missing)}" if missing else ""
    if over:
        worst = ", ".join(f"{a} {v} ms" for a, v in sorted(over.items()))
        return False, False, f"p95 step latency over {bound} ms: {worst}{rest}"
    return True, False, f"p95 step latency at most {max(seen.values())} ms <= {bound} ms{rest}"


def open_breakers(team: Mapping[str, Any] | None) -> list[str]:
    """The breakers of the team's agents that are open or half-open, as AGENT/DEPENDENCY."""
    out = []
    for entry in _agents(team):
        for breaker in entry.get("breakers") or []:
            if isinstance(breaker, Mapping) and breaker.get("state") in ("open", "half-open"):
                out.append(f"{entry.get('name')}/{breaker.get('dependency')}")
    return sorted(out)


def _breaker_recovers(team: Mapping[str, Any] | None, window: Window) -> tuple[bool, bool, str]:
    still = open_breakers(team)
    if not still:
        return True, False, "every circuit breaker is closed"
    when = "while the faults are in" if window.end is None else "after the faults ended"
    shown = ", ".join(still[:10]) + (f" and {len(still) - 10} more" if len(still) > 10 else "")
    return False, True, f"{len(still)} breaker(s) open {when}: {shown}"


def _judge(
    probe: Probe, team: Mapping[str, Any] | None, targets: list[str], window: Window
) -> tuple[bool, bool, str]:
    """(passed, waiting, what was seen) for one probe."""
    status = (team or {}).get("status") or {}
    failed = [str(a.get("name")) for a in _agents(team) if a.get("phase") == "Failed"]
    if probe.kind == ProbeKind.TEAM_READY:
        conds = status.get("conditions") or []
        ready = next((c for c in conds if c.get("type") == "Ready"), None)
        if ready is None:
            return False, False, "team has no Ready condition"
        seen = f"team Ready={ready.get('status')} ({ready.get('reason')})"
        return ready.get("status") == "True", False, seen
    if probe.kind == ProbeKind.AGENTS_HEALTHY:
        seen = f"failed agents: {', '.join(failed)}" if failed else "no agent failed"
        return not failed, False, seen
    if probe.kind == ProbeKind.MAX_FAILED_AGENTS:
        seen = f"{len(failed)} failed agent(s), at most {probe.threshold} allowed"
        return len(failed) <= probe.threshold, False, seen
    if probe.kind == ProbeKind.RUN_SUCCEEDS:
        return _run_succeeds(team, window)
    if probe.kind == ProbeKind.STEP_LATENCY:
        return _step_latency(probe, team, targets)
    return _breaker_recovers(team, window)


def evaluate_probes(
    spec: ChaosExperimentSpec,
    team: Mapping[str, Any] | None,
    now: dt.datetime,
    targets: list[str],
    window: Window,
    previous: list[ProbeResult] | None = None,
) -> list[ProbeResult]:
    """Each probe's answer now; a final answer from `previous` (a run that ended) is kept."""
    before = {p.name: p for p in previous or []}
    results = []
    for probe in spec.probes:
        last = before.get(probe.name)
        if probe.kind in FINAL_FAILURES and last is not None and not last.waiting:
            results.append(last)
            continue
        passed, waiting, seen = _judge(probe, team, targets, window)
        results.append(
            ProbeResult(name=probe.name, passed=passed, waiting=waiting, message=seen, time=now)
        )
    return results


def failing_for_good(spec: ChaosExperimentSpec, probes: list[ProbeResult]) -> list[ProbeResult]:
    """Probes whose failing answer cannot turn (the run ended other than Succeeded)."""
    final = {p.name for p in spec.probes if p.kind in FINAL_FAILURES}
    return [p for p in probes if p.name in final and not p.passed and not p.waiting]


def failures_now(team: Mapping[str, Any] | None, probes: list[ProbeResult]) -> list[str]:
    """The failure episodes going on now, each by its key."""
    keys = {f"probe:{p.name}" for p in probes if not p.passed and not p.waiting}
    keys |= {f"agent:{a.get('name')}" for a in _agents(team) if a.get("phase") == "Failed"}
    keys |= {f"breaker:{b}" for b in open_breakers(team)}
    return sorted(keys)[:500]


def count_new(open_before: list[str], open_now: list[str]) -> int:
    """Failures open now that were not open at the previous check: the new ones."""
    return len(set(open_now) - set(open_before))
