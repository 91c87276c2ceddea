"""The live view of a team run in the terminal, and the report at its end (rich).

The view subscribes to the team's event bus: a table of agents (role, what each is doing, its
steps and tokens, tasks done) above the latest delegations, reviews, rounds and votes. Without
a terminal it prints one line per event instead. The report shows how the run ended and why,
the answer, and every delegation, vote or plan step that led there.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from hive.api.agentteam import AgentTeamSpec
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.teams.team import TeamResult

NOTEWORTHY = {
    EventKind.DELEGATED: "delegates to {to}: {task}",
    EventKind.REVIEWED: "reviews {of}: score {score} {feedback}",
    EventKind.REVISION_REQUESTED: "asks {of} for revision {revision}: {feedback}",
    EventKind.APPROVED: "approves {of} {reason}",
    EventKind.REJECTED: "rejects {of}: {reason}",
    EventKind.DECOMPOSED: "splits the task into {count} parts",
    EventKind.ROUND: "round {round}",
    EventKind.SYNTHESIZED: "writes the answer",
    EventKind.CONVERGED: "converged in round {round} (similarity {similarity:.2f})",
    EventKind.PROPOSED: "proposes: {proposal}",
    EventKind.VOTED: "votes {summary}",
    EventKind.AGREED: "agreement on {author}'s proposal ({support:.0%})",
    EventKind.DEADLOCKED: "{message}",
    EventKind.TOOL_CALLED: "calls tool {tool}",
    EventKind.TOOL_FAILED: "{tool}: {error}",
    EventKind.FAILED: "failed: {error}",
    EventKind.CAPABILITY_CHANGED: "works at {level} capability (was {from}) {reason}",
    EventKind.DEGRADED_ANSWER: "answered by {how} {model}",
    EventKind.CONTEXT_OPTIMIZED: "fits its context: {tokens_before} -> {tokens} tokens "
    "(budget {budget}; {cut} cut, {summarised} summarised)",
    EventKind.TEAM_FINISHED: "ends the run: {outcome}",
}

PHASE_STYLE = {"working": "yellow", "done": "green", "failed": "red", "idle": "dim"}


def shorten(text: object, width: int = 70) -> str:
    one_line = " ".join(str(text).split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def describe(event: Event) -> str | None:
    template = NOTEWORTHY.get(event.kind)
    if template is None:
        return None
    data = dict(event.data)
    data.setdefault("count", len(data.get("subtasks") or []))
    if event.kind is EventKind.VOTED:
        data["summary"] = ", ".join(f"#{v['proposal']} {v['vote']}" for v in data["votes"])
    if event.kind is EventKind.REVIEWED and data.get("score") is None:
        data["score"] = "none"
    try:
        return shorten(template.format_map(_Blank(data)), 110)
    except (ValueError, TypeError):
        return template.split(":")[0].split("{")[0].strip()


class _Blank(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass
class AgentRow:
    role: str
    phase: str = "idle"
    task: str = ""
    steps: int = 0
    tokens: int = 0
    done: int = 0


@dataclass
class LiveView:
    """Keeps the picture of a run up to date from its events."""

    spec: AgentTeamSpec
    task: str
    rows: dict[str, AgentRow] = field(default_factory=dict)
    log: deque[str] = field(default_factory=lambda: deque(maxlen=12))
    capability: str = "full"  # the run's capability level now, and why

    def __post_init__(self) -> None:
        self.rows = {a.name: AgentRow(str(a.role)) for a in self.spec.agents}

    def on_event(self, event: Event) -> None:
        row = self.rows.get(event.agent)
        if row is not None:
            if event.kind is EventKind.STARTED:
                row.phase, row.task = "working", shorten(event.data.get("task", ""), 48)
            elif event.kind is EventKind.MODEL_CALLED:
                row.steps += 1
                row.tokens = max(row.tokens, int(event.data.get("tokens", 0)))
            elif event.kind is EventKind.FINISHED:
                row.phase, row.done = "done", row.done + 1
            elif event.kind is EventKind.FAILED:
                row.phase = "failed"
            elif event.kind is EventKind.DELEGATED:
                target = self.rows.get(str(event.data.get("to")))
                if target is not None:
                    target.phase = "working"
                    target.task = shorten(event.data.get("task", ""), 48)
        if event.kind is EventKind.CAPABILITY_CHANGED:
            level, reason = event.data.get("level", ""), event.data.get("reason", "")
            self.capability = f"{level} since {event.at:%H:%M:%S}: {reason}" if reason else level
        line = describe(event)
        if line:
            self.log.append(f"[bold]{event.agent}[/] {line}")

    def render(self) -> RenderableType:
        table = Table(
            title=f"{self.spec.pattern} team: {shorten(self.task, 80)}",
            caption=f"capability: {escape(self.capability)}",
            expand=True,
        )
        for column in ("agent", "role", "phase", "working on", "steps", "done"):
            table.add_column(column, justify="right" if column in ("steps", "done") else "left")
        for name, row in self.rows.items():
            style = PHASE_STYLE.get(row.phase, "")
            table.add_row(
                name,
                row.role,
                Text(row.phase, style=style),
                row.task,
                str(row.steps),
                str(row.done),
            )
        events = Text.from_markup("\n".join(self.log) or "[dim]waiting for the first event[/]")
        return Group(table, Panel(events, title="what happens", border_style="dim"))


class LineLog:
    """One line per noteworthy event, for logs and pipes."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_event(self, event: Event) -> None:
        line = describe(event)
        if line:
            self.console.print(f"[bold]{event.agent}[/] {line}", highlight=False)


def watch(
    bus: EventBus, spec: AgentTeamSpec, task: str, console: Console, live: bool
) -> Live | None:
    """Start showing the run; returns the Live display to stop, when there is one."""
    if not live:
        bus.subscribe(LineLog(console).on_event)
        return None
    view = LiveView(spec, task)
    display = Live(view.render(), console=console, refresh_per_second=8, transient=False)

    def update(event: Event) -> None:
        view.on_event(event)
        display.update(view.render())

    bus.subscribe(update)
    display.start()
    return display


def report(result: TeamResult, console: Console) -> None:
    """The run's end: outcome, answer, and what led there."""
    style = {"Succeeded": "green", "Failed": "red", "Deadlocked": "yellow"}.get(
        str(result.outcome), "white"
    )
    heading = (
        f"[{style}]{result.outcome}[/] · {result.pattern} · coordinator {result.coordinator} · "
        f"{result.duration_s:.1f}s · {result.tokens} tokens"
    )
    if result.rounds:
        heading += f" · {result.rounds} rounds"
    parts: list[RenderableType] = [Text.from_markup(heading)]
    if result.message:
        parts.append(Text(result.message, style=style))
    if result.output:
        parts.append(Panel(Markdown(result.output), title="answer"))
    if result.delegations:
        table = Table(title="delegations")
        for column in ("from", "to", "task", "score", "review", "revisions", "approved"):
            table.add_column(column)
        for d in result.delegations:
            table.add_row(
                d.senior,
                d.subordinate,
                shorten(d.task, 50),
                f"{d.score:.2f}",
                "-" if d.review is None else f"{d.review:.2f}",
                str(d.revisions),
                "-" if d.approved is None else ("yes" if d.approved else "no"),
            )
        parts.append(table)
    if result.tallies:
        table = Table(title="last round's proposals")
        for column in ("author", "proposal", "accept", "reject", "abstain", "support"):
            table.add_column(column)
        for t in result.tallies:
            table.add_row(
                t.author,
                shorten(t.proposal.proposal, 50),
                str(t.accepts),
                str(t.rejects),
                str(t.abstains),
                f"{t.support:.0%}",
            )
        parts.append(table)
    if result.plan:
        table = Table(title="plan")
        for column in ("subgoal", "phase", "depends on"):
            table.add_column(column)
        for step in result.plan:
            table.add_row(step["name"], step["phase"], ", ".join(step.get("dependsOn", [])))
        parts.append(table)
    if result.capability:
        table = Table(title="capability")
        for column in ("since", "level", "why"):
            table.add_column(column)
        for change in result.capability:
            table.add_row(change["since"], change["level"], change["reason"])
        parts.append(table)
    if result.context.optimisations:
        c = result.context
        parts.append(
            Text(
                f"context: {c.optimisations} requests made smaller to fit the agents' budgets · "
                f"{c.dropped} segments dropped · {c.cut} cut · {c.summarised} summarised · "
                f"{c.tokens_saved} tokens saved"
            )
        )
    for record in result.reasoning:
        if record["kind"] == "mcts":
            search = record["search"]
            line = (
                f"{record['agent']} planned with MCTS: {search['iterations']} iterations, "
                f"{search['treeSize']} states, stopped by {search['stoppedBy']}"
            )
        else:
            line = (
                f"{record['agent']} reasoned: {record['steps']} steps, "
                f"{record['corrections']} corrections, {record['outcome']}"
            )
        parts.append(Text(line, style="magenta"))
    busy = {row["agent"]: row for row in result.profile.get("agents", [])}
    agents = Table(title="agents (hive profile REPORT: where the time went)")
    for column in ("agent", "role", "tasks done", "tokens", "busy s", "model s", "tool s"):
        agents.add_column(column)
    for a in result.agents:
        times = busy.get(a.name, {})
        agents.add_row(
            a.name,
            a.role,
            str(a.tasks_completed),
            str(a.tokens),
            *(f"{times.get(k, 0.0) / 1000:.2f}" for k in ("busy_ms", "model_ms", "tool_ms")),
        )
    parts.append(agents)
    if result.usage.get("rows"):
        parts.append(usage_table(result.usage))
    console.print(Panel(Group(*parts), title="hive run: report"))


def usage_table(usage: dict[str, Any]) -> Table:
    """Spend through the team's model routes, by agent, model and route (status.usage)."""
    limit = usage.get("limit")
    title = f"model usage by route: spent {usage['spent']:.6g}"
    if limit is not None:
        title += f" of {limit:.6g}, {usage['refused']} calls refused"
    table = Table(title=title)
    for column in ("agent", "model", "route", "requests", "prompt", "completion", "cost"):
        table.add_column(column)
    for row in usage["rows"]:
        table.add_row(
            row["agent"] or "-",
            row["model"],
            row["route"],
            str(row["requests"]),
            str(row["promptTokens"]),
            str(row["completionTokens"]),
            f"{row['cost']:.6g}",
        )
    return table
