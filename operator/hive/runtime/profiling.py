"""Profiles of team runs: where the time, tokens and money of a run went, built from its events.

A `Profiler` subscribes to the team's bus and notes every event with the time it was published
(a monotonic clock from the run's start) and the team task it belongs to (`current_task`).
`Profiler.build` turns the notes into a profile (plain JSON data, kept in the run report):

- tasks: every task a member executed, its parent task (who delegated it), start, end and how
  long it waited for a free slot (`queued_ms`);
- per agent: busy time (its tasks' own time, less the time their delegated tasks ran, plus its
  model calls outside any task), model time, tool time, the rest (its own overhead), queueing,
  tokens and cost;
- per step: each model call (an agent-loop step, or a senior's planning, review, reasoning ...)
  with the tool calls that followed it, their times and tokens;
- the critical path: the chain of work the run's wall time waited on, found by walking back
  from the end (at each level, the child task or call that finished last), so its segments
  add up to the wall time exactly.

How parallel work counts: an agent's busy time is its own, so when subordinates work at once
the agents' busy times add up to more than the wall time (`parallelism` is their ratio); run
sequentially they add up to the wall time, less the team's own time (`team_ms`, outside any
task). The critical path always adds up to the wall time.

`speedscope` writes the profile in speedscope's file format (a sampled profile of busy time by
task stack, an evented profile of the critical path) and `flamegraph_svg` draws the busy time
as a flame graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hive.runtime.events import Event, EventKind, current_task

SPEEDSCOPE_SCHEMA = "https://www.speedscope.app/file-format-schema.json"
RUN_FRAME = "run"
OTHER = "own work"  # a task's time that is neither a model nor a tool call


@dataclass(frozen=True)
class Note:
    """One event as the profiler saw it."""

    at_ms: float
    kind: EventKind
    agent: str
    task_id: str | None
    data: dict[str, Any]


@dataclass
class Span:
    """A stretch of work: a task, or one model or tool call inside one."""

    name: str
    agent: str
    start_ms: float
    end_ms: float
    kind: str  # "task", "model" or "tool"
    task_id: str | None = None  # the task's own id (tasks) or the task it ran in (calls)
    parent: str | None = None  # tasks: the id of the task that delegated it
    queued_ms: float = 0.0
    children: list[Span] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return max(0.0, self.end_ms - self.start_ms)


def union_ms(spans: Iterable[tuple[float, float]]) -> float:
    """How long at least one of the intervals covers."""
    total, end = 0.0, float("-inf")
    for a, b in sorted(spans):
        if b <= end:
            continue
        total += b - max(a, end)
        end = b
    return total


def clipped(spans: Iterable[Span], start: float, end: float) -> list[tuple[float, float]]:
    return [(max(s.start_ms, start), min(s.end_ms, end)) for s in spans if s.end_ms > start]


def own_ms(task: Span) -> float:
    """A task's own time: its model and tool calls (even while work it delegated runs), and
    whatever else it did while neither they nor its delegated tasks were running."""
    calls = clipped([c for c in task.children if c.kind != "task"], task.start_ms, task.end_ms)
    return union_ms(calls) + task.ms - union_ms(clipped(task.children, task.start_ms, task.end_ms))


def short(text: str, width: int = 48) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class Profiler:
    """Notes a run's events as they are published; `build` makes the profile."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.notes: list[Note] = []

    def __call__(self, event: Event) -> None:
        self.notes.append(
            Note(
                (self.clock() - self.started) * 1000,
                event.kind,
                event.agent,
                current_task.get(),
                event.data,
            )
        )

    def elapsed_ms(self) -> float:
        return (self.clock() - self.started) * 1000

    # --- building -------------------------------------------------------------------------------

    def _spans(self, wall_ms: float) -> tuple[dict[str, Span], list[Span], list[dict[str, Any]]]:
        """Tasks by id, calls outside any task, and one row per step."""
        tasks: dict[str, Span] = {}
        loose: list[Span] = []
        steps: list[dict[str, Any]] = []
        last_tokens: dict[tuple[str, str | None], int] = {}
        open_step: dict[tuple[str, str | None], dict[str, Any]] = {}
        for note in self.notes:
            data = note.data
            if note.kind is EventKind.TASK_STARTED and data.get("task_id"):
                task_id = str(data["task_id"])
                tasks[task_id] = Span(
                    name=f"{note.agent}: {short(str(data.get('task', '')))}",
                    agent=note.agent,
                    start_ms=note.at_ms,
                    end_ms=wall_ms,  # until it finishes
                    kind="task",
                    task_id=task_id,
                    parent=data.get("parent_task"),
                    queued_ms=float(data.get("queued_ms") or 0.0),
                )
            elif note.kind is EventKind.TASK_FINISHED and data.get("task_id") in tasks:
                tasks[str(data["task_id"])].end_ms = note.at_ms
            elif note.kind is EventKind.STARTED:
                last_tokens[(note.agent, note.task_id)] = 0  # an agent loop counts from 0
            elif note.kind is EventKind.MODEL_CALLED:
                duration = float(data.get("duration_ms") or 0.0)
                key = (note.agent, note.task_id)
                purpose = str(data.get("purpose") or f"step {data.get('step', '?')}")
                tokens = int(data.get("tokens") or 0)
                used = max(0, tokens - last_tokens.get(key, 0))
                last_tokens[key] = tokens
                call = Span(
                    f"{note.agent}: model ({purpose})",
                    note.agent,
                    note.at_ms - duration,
                    note.at_ms,
                    "model",
                    task_id=note.task_id,
                )
                (tasks[note.task_id].children if note.task_id in tasks else loose).append(call)
                row: dict[str, Any] = {
                    "agent": note.agent,
                    "task_id": note.task_id,
                    "step": purpose,
                    "start_ms": round(call.start_ms, 3),
                    "model_ms": round(duration, 3),
                    "tool_ms": 0.0,
                    "tools": [],
                    "tokens": used,
                }
                steps.append(row)
                open_step[key] = row
            elif note.kind in (EventKind.TOOL_CALLED, EventKind.TOOL_FAILED):
                if "duration_ms" not in data:
                    continue  # not a timed call (e.g. a reply that did not validate)
                duration = float(data.get("duration_ms") or 0.0)
                tool = str(data.get("tool", "?"))
                call = Span(
                    f"{note.agent}: tool {tool}",
                    note.agent,
                    note.at_ms - duration,
                    note.at_ms,
                    "tool",
                    task_id=note.task_id,
                )
                (tasks[note.task_id].children if note.task_id in tasks else loose).append(call)
                step = open_step.get((note.agent, note.task_id))
                if step is not None:
                    step["tool_ms"] = round(step["tool_ms"] + duration, 3)
                    step["tools"].append(tool)
        for span in tasks.values():
            if span.parent in tasks:
                tasks[span.parent].children.append(span)
        return tasks, loose, steps

    def build(
        self,
        *,
        wall_ms: float | None = None,
        usage: dict[str, tuple[int, float]] | None = None,
    ) -> dict[str, Any]:
        """The profile as JSON data; `usage` gives each agent's (tokens, cost)."""
        wall = self.elapsed_ms() if wall_ms is None else wall_ms
        tasks, loose, steps = self._spans(wall)
        roots = [s for s in tasks.values() if s.parent not in tasks]
        agents: dict[str, dict[str, float]] = {}

        def row(agent: str) -> dict[str, float]:
            return agents.setdefault(
                agent,
                {"tasks": 0, "busy_ms": 0.0, "model_ms": 0.0, "tool_ms": 0.0, "queued_ms": 0.0},
            )

        for span in tasks.values():
            own = row(span.agent)
            own["tasks"] += 1
            own["busy_ms"] += own_ms(span)
            own["queued_ms"] += span.queued_ms
        for call in loose:  # model calls outside any task are their agent's busy time too
            row(call.agent)["busy_ms"] += call.ms
        for call in [*loose, *(c for s in tasks.values() for c in s.children if c.kind != "task")]:
            row(call.agent)[f"{call.kind}_ms"] += call.ms
        usage = usage or {}
        table: list[dict[str, Any]] = []
        for agent in sorted(set(agents) | set(usage)):
            own = row(agent)
            tokens, cost = usage.get(agent, (0, 0.0))
            other = max(0.0, own["busy_ms"] - own["model_ms"] - own["tool_ms"])
            table.append(
                {
                    "agent": agent,
                    "tasks": int(own["tasks"]),
                    "busy_ms": round(own["busy_ms"], 3),
                    "model_ms": round(own["model_ms"], 3),
                    "tool_ms": round(own["tool_ms"], 3),
                    "other_ms": round(other, 3),
                    "queued_ms": round(own["queued_ms"], 3),
                    "tokens": tokens,
                    "cost": round(cost, 6),
                }
            )
        for step in steps:  # cost of a step: its share of the agent's tokens
            tokens, cost = usage.get(step["agent"], (0, 0.0))
            step["cost"] = round(cost * step["tokens"] / tokens, 6) if tokens else 0.0
        covered = union_ms(clipped([*roots, *loose], 0.0, wall))
        busy = sum(float(r["busy_ms"]) for r in table)
        path = critical_path(roots + loose, 0.0, wall)
        return {
            "version": 1,
            "wall_ms": round(wall, 3),
            "team_ms": round(max(0.0, wall - covered), 3),
            "busy_ms": round(busy, 3),
            "parallelism": round(busy / wall, 3) if wall > 0 else 0.0,
            "agents": table,
            "steps": steps,
            "tasks": [
                {
                    "task_id": s.task_id,
                    "parent": s.parent if s.parent in tasks else None,
                    "agent": s.agent,
                    "name": s.name,
                    "start_ms": round(s.start_ms, 3),
                    "end_ms": round(s.end_ms, 3),
                    "queued_ms": round(s.queued_ms, 3),
                }
                for s in tasks.values()
            ],
            "critical_path": path,
            "samples": busy_samples(roots, loose, max(0.0, wall - covered)),
        }


def critical_path(spans: Sequence[Span], start: float, end: float) -> list[dict[str, Any]]:
    """Segments, in time order, of the work the interval [start, end] waited on.

    Walking back from `end`: the span that finished last (not after the current time) is on
    the path, and within it the same again; time no span covers belongs to the owner.
    """
    return _walk([RUN_FRAME], "", spans, start, end)


EPSILON_MS = 1e-6


def _walk(
    stack: list[str], agent: str, children: Sequence[Span], a: float, b: float
) -> list[dict[str, Any]]:
    t = b
    backwards: list[dict[str, Any]] = []
    by_end = sorted(children, key=lambda s: s.end_ms)
    for child in reversed(by_end):  # latest end first; one pass
        if child.end_ms <= a:
            break
        if child.end_ms > t + EPSILON_MS:
            continue  # overlaps what is already on the path
        if t - child.end_ms > EPSILON_MS:
            backwards.append(_segment(stack, agent, child.end_ms, t))
        begin = max(child.start_ms, a)
        inner = _walk([*stack, child.name], child.agent, child.children, begin, child.end_ms)
        backwards.extend(reversed(inner))
        t = begin
    if t - a > EPSILON_MS:
        backwards.append(_segment(stack, agent, a, t))
    return backwards[::-1]


def _segment(stack: list[str], agent: str, a: float, b: float) -> dict[str, Any]:
    return {
        "stack": list(stack),
        "agent": agent,
        "start_ms": round(a, 3),
        "end_ms": round(b, 3),
        "ms": round(b - a, 3),
    }


def busy_samples(roots: Sequence[Span], loose: Sequence[Span], team_ms: float) -> list[Any]:
    """(stack, ms) pairs: each task's own time and each call, under the tasks that led to it."""
    samples: list[Any] = []
    if team_ms > 0:
        samples.append([[RUN_FRAME], round(team_ms, 3)])

    def visit(span: Span, stack: list[str]) -> None:
        here = [*stack, span.name]
        delegated = [c for c in span.children if c.kind == "task"]
        calls = [c for c in span.children if c.kind != "task"]
        own = span.ms - union_ms(clipped(span.children, span.start_ms, span.end_ms))
        if own > 0:
            samples.append([[*here, OTHER], round(own, 3)])
        for call in calls:
            samples.append([[*here, call.name], round(call.ms, 3)])
        for child in delegated:
            visit(child, here)

    for span in loose:
        samples.append([[RUN_FRAME, span.name], round(span.ms, 3)])
    for root in roots:
        visit(root, [RUN_FRAME])
    return samples


# --- output formats -------------------------------------------------------------------------------


def speedscope(profile: dict[str, Any], name: str = "hive run") -> dict[str, Any]:
    """The profile in speedscope's file format: busy time by stack (sampled) and the critical
    path (evented), both in milliseconds."""
    frames: list[dict[str, str]] = []
    index: dict[str, int] = {}

    def frame(label: str) -> int:
        if label not in index:
            index[label] = len(frames)
            frames.append({"name": label})
        return index[label]

    samples = [[frame(f) for f in stack] for stack, _ in profile["samples"]]
    weights = [float(ms) for _, ms in profile["samples"]]
    events: list[dict[str, Any]] = []
    open_stack: list[int] = []
    for segment in profile["critical_path"]:
        stack = [frame(f) for f in segment["stack"]]
        common = 0
        while common < min(len(stack), len(open_stack)) and stack[common] == open_stack[common]:
            common += 1
        for closing in reversed(open_stack[common:]):
            events.append({"type": "C", "frame": closing, "at": segment["start_ms"]})
        for opening in stack[common:]:
            events.append({"type": "O", "frame": opening, "at": segment["start_ms"]})
        open_stack = stack
    end = profile["critical_path"][-1]["end_ms"] if profile["critical_path"] else 0.0
    for closing in reversed(open_stack):
        events.append({"type": "C", "frame": closing, "at": end})
    return {
        "$schema": SPEEDSCOPE_SCHEMA,
        "name": name,
        "exporter": "hive profile",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": f"{name}: busy time by task",
                "unit": "milliseconds",
                "startValue": 0,
                "endValue": sum(weights),
                "samples": samples,
                "weights": weights,
            },
            {
                "type": "evented",
                "name": f"{name}: critical path",
                "unit": "milliseconds",
                "startValue": 0,
                "endValue": max(end, profile["wall_ms"]),
                "events": events,
            },
        ],
    }


@dataclass
class _Node:
    name: str
    ms: float = 0.0
    children: dict[str, _Node] = field(default_factory=dict)


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _colour(name: str) -> str:
    agent = name.split(":", 1)[0]
    seed = sum(ord(c) * (i + 1) for i, c in enumerate(agent))
    return f"hsl({seed % 360},70%,{60 + seed % 15}%)"


def flamegraph_svg(profile: dict[str, Any], *, width: int = 1200, title: str = "hive run") -> str:
    """Busy time as a flame graph (stacks merged by name, widths by time, root at the bottom);
    hover a box for its name and time."""
    root = _Node(RUN_FRAME)
    for stack, ms in profile["samples"]:
        node = root
        node.ms += ms
        for name in stack[1:]:
            node = node.children.setdefault(name, _Node(name))
            node.ms += ms

    def depth(node: _Node) -> int:
        return 1 + max((depth(c) for c in node.children.values()), default=0)

    row, top = 18, 30
    levels = depth(root)
    height = top + levels * row + 10
    scale = (width - 20) / root.ms if root.ms > 0 else 0.0
    boxes: list[str] = []

    def draw(node: _Node, x: float, level: int, owner: str = RUN_FRAME) -> None:
        w = node.ms * scale
        if w < 0.5:
            return
        y = height - 10 - (level + 1) * row
        label = f"{node.name} ({node.ms:.1f} ms)"
        text = _escape(node.name if len(node.name) * 7 < w else node.name[: max(0, int(w / 7) - 1)])
        fill = _colour(owner if node.name == OTHER else node.name)  # own work: its task's
        boxes.append(
            f'<g><title>{_escape(label)}</title><rect x="{x:.2f}" y="{y}" width="{w:.2f}" '
            f'height="{row - 1}" fill="{fill}" rx="2"/>'
            f'<text x="{x + 3:.2f}" y="{y + 13}">{text}</text></g>'
        )
        for child in node.children.values():
            draw(child, x, level + 1, node.name)
            x += child.ms * scale

    draw(root, 10.0, 0)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="monospace" font-size="11">'
        f'<rect width="100%" height="100%" fill="#fdfdf8"/>'
        f'<text x="10" y="20" font-size="14">{_escape(title)}: busy time '
        f"{root.ms:.1f} ms, wall {profile['wall_ms']:.1f} ms</text>" + "".join(boxes) + "</svg>\n"
    )
