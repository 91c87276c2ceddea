"""A team run under a debugger: its hooks first in the chain and on the bus, its clock as the
run's budget clock (so the report's `duration_s` and the profile's `wall_ms` leave out the time
held paused, which the profile gives as `paused_ms`), its report kept with the session."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hive.api.agentteam import RunOutcome
from hive.runtime.debug.clock import paused_clock
from hive.runtime.debug.debugger import Debugger
from hive.runtime.debug.hooks import DebugHooks
from hive.runtime.events import EventBus
from hive.runtime.resilience.calls import Chain

if TYPE_CHECKING:
    from hive.runtime.teams.team import Team, TeamResult

# what differs between two runs that did the same: times and durations
TIMED = ("duration_s", "profile", "capability")


def debugged_chain(chain: Chain, hooks: DebugHooks) -> Chain:
    """`chain` with the debugger outermost, so a pause is not counted as a call's time."""
    return Chain((hooks, *chain.middlewares), chain.agent)


def hooked(debugger: Debugger, bus: EventBus) -> DebugHooks:
    hooks = DebugHooks(debugger)
    hooks.attach(bus)
    return hooks


def comparable(report: dict[str, Any]) -> dict[str, Any]:
    """A run's report without its times, as JSON reads it back (to compare a replay with the
    recorded run)."""
    kept = {k: v for k, v in report.items() if k not in TIMED}
    loaded: dict[str, Any] = json.loads(json.dumps(kept, default=str))
    return loaded


async def run_debugged(team: Team, debugger: Debugger, task: str | None = None) -> TeamResult:
    """Run `team` paused by `debugger` where it stops (its hooks must be in the team's chains
    and on its bus)."""
    debugger.team = team
    entered = paused_clock.set(debugger.clock)
    try:
        result = await team.run(task)
    finally:
        paused_clock.reset(entered)
    # the report's durations are run time; the time held paused is reported beside them
    result.profile["paused_ms"] = round(debugger.clock.paused_s * 1000, 3)
    if debugger.aborted:  # the calls after the abort failed: the report names the abort
        result.outcome = RunOutcome.FAILED
        result.message = debugger.abort_reason
    debugger.close(result.wire())
    return result
