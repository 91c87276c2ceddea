"""The run report adds up what working memory took out of the agents' requests."""

from __future__ import annotations

from rich.console import Console

from hive.api.agentteam import RunOutcome
from hive.cli.live import report
from hive.runtime.events import Event, EventKind
from hive.runtime.teams.team import ContextTotals, TeamResult


def optimised(**data: object) -> Event:
    return Event(EventKind.CONTEXT_OPTIMIZED, "dev", dict(data))


def test_context_events_add_up_and_the_report_shows_them_only_when_there_are_some() -> None:
    totals = ContextTotals()
    totals.add(optimised(tokens_before=2000, tokens=1500, dropped={"recalled": 2}, cut=1))
    totals.add(optimised(tokens_before=1800, tokens=1600, summarised=4))
    assert totals == ContextTotals(
        optimisations=2, dropped=2, cut=1, summarised=4, tokens_saved=700
    )
    result = TeamResult(RunOutcome.SUCCEEDED, "ok", "hierarchical", "t", "dev", context=totals)
    assert result.wire()["context"]["tokens_saved"] == 700
    console = Console(record=True, width=200)
    report(result, console)
    shown = console.export_text()
    assert "2 requests made smaller" in shown
    assert "700 tokens saved" in shown

    quiet = Console(record=True, width=200)
    report(TeamResult(RunOutcome.SUCCEEDED, "ok", "hierarchical", "t", "dev"), quiet)
    assert "context:" not in quiet.export_text()
