"""A debug session as data: the run's stop points, its model answers and the user's actions,
exported to a JSON file and read back to replay the run (hive.runtime.debug.replay).

A *stop point* is every place the debugger can stop: each team event, each model call (after
it answered) and each tool call (before it runs). Each has an index in the run (1, 2, ...) and
a key that names it the same way in every replay, ``kind:agent:n`` (the agent's n-th stop
point of that kind), since parallel agents interleave differently from run to run.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hive.errors import InvalidInput
from hive.runtime.models import Message, Reply, ToolCall

FORMAT = "hive.debug/v1"


def fingerprint(messages: list[Message]) -> str:
    """What a model request asked, as a short digest (a replay finds its answer by it)."""
    text = json.dumps(messages, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def reply_wire(reply: Reply) -> dict[str, Any]:
    return {
        "content": reply.content,
        "tool_calls": [
            {"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls
        ],
        "finish_reason": reply.finish_reason,
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
    }


def reply_from_wire(data: dict[str, Any]) -> Reply:
    return Reply(
        content=data.get("content"),
        tool_calls=[
            ToolCall(str(c["id"]), str(c["name"]), dict(c.get("arguments") or {}))
            for c in data.get("tool_calls") or []
        ],
        finish_reason=data.get("finish_reason"),
        prompt_tokens=int(data.get("prompt_tokens") or 0),
        completion_tokens=int(data.get("completion_tokens") or 0),
    )


@dataclass
class Answer:
    """One model answer of the run: whose, to what request, and the reply."""

    agent: str
    request: str  # fingerprint of the request's messages
    reply: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        return {"agent": self.agent, "request": self.request, "reply": self.reply}


@dataclass
class Action:
    """What the user did, at which stop point: inspect, edit, score, skip, step, continue,
    abort, break, unbreak. `value` is the action's argument (the new text, the score, ...)."""

    action: str
    step: int  # the stop point's index; 0 when the run was not paused
    stop: str = ""  # the stop point's key
    value: Any = None
    at: str = field(default_factory=lambda: f"{dt.datetime.now(dt.UTC):%FT%T.%fZ}")

    def wire(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "step": self.step,
            "stop": self.stop,
            "value": self.value,
            "at": self.at,
        }


CHANGES = ("edit", "score", "skip", "abort")  # the actions that change the run
# what can be changed at a stop point of each kind (abort: at any)
CHANGES_AT = {
    "delegated": ("edit",),  # the task the subordinate gets
    "model-call": ("edit",),  # the answer the agent reads
    "reviewed": ("score",),
    "tool-call": ("skip",),
}


# One stop point as the run records it, with as few new objects as can be (each one the
# garbage collector keeps track of costs the run): (kind, agent, n: the agent's n-th stop point
# of that kind, what it is about: an event's data, a tool's name or a model's Reply, and the
# request's messages for a model call, else None).
Trail = tuple[str, str, int, Any, "list[Message] | None"]


def step_data(kind: str, about: Any) -> dict[str, Any]:
    """A stop point's data as the user sees it (an event's data is the event's own dict)."""
    if isinstance(about, Reply):
        names = [c.name for c in about.tool_calls]
        return {"content": about.content, "tool_calls": names}
    if kind == "tool-call":
        return {"tool": about}
    return about if isinstance(about, dict) else {}


@dataclass
class Session:
    """Everything a debugger recorded of one run."""

    breakpoints: list[str] = field(default_factory=list)
    trail: list[Trail] = field(default_factory=list)  # the stop points in order
    recorded: list[Answer] = field(default_factory=list)  # a loaded session's answers
    actions: list[Action] = field(default_factory=list)
    report: dict[str, Any] | None = None  # the run's report, once it ended

    @property
    def steps(self) -> list[dict[str, Any]]:
        """The stop points: {index, key, kind, agent, data}."""
        return [
            {
                "index": i,
                "key": f"{kind}:{agent}:{n}",
                "kind": kind,
                "agent": agent,
                "data": step_data(kind, about),
            }
            for i, (kind, agent, n, about, _) in enumerate(self.trail, 1)
        ]

    @property
    def answers(self) -> list[Answer]:
        """The model answers in order: a loaded session's, and those this run recorded."""
        return self.recorded + [
            Answer(agent, fingerprint(messages), reply_wire(about))
            for _, agent, _, about, messages in self.trail
            if messages is not None
        ]

    def wire(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "breakpoints": self.breakpoints,
            "steps": self.steps,
            "answers": [a.wire() for a in self.answers],
            "actions": [a.wire() for a in self.actions],
            "report": self.report,
        }

    def export(self, path: Path) -> None:
        path.write_text(json.dumps(self.wire(), indent=2, default=str) + "\n")

    @classmethod
    def load(cls, path: Path) -> Session:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InvalidInput(str(path), "no such debug session file") from None
        except json.JSONDecodeError as exc:
            raise InvalidInput(str(path), f"not JSON ({exc.msg})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise InvalidInput(f"{path}: format", f"not a debug session ({FORMAT})")
        return cls(
            breakpoints=list(data.get("breakpoints") or []),
            trail=[
                (s["kind"], s["agent"], int(s["key"].rsplit(":", 1)[1]), s.get("data") or {}, None)
                for s in data.get("steps") or []
            ],
            recorded=[Answer(a["agent"], a["request"], a["reply"]) for a in data["answers"]],
            actions=[
                Action(a["action"], int(a["step"]), a.get("stop", ""), a.get("value"), a["at"])
                for a in data.get("actions") or []
            ],
            report=data.get("report"),
        )

    def changes(self) -> list[Action]:
        """The actions that changed the run, in order."""
        return [a for a in self.actions if a.action in CHANGES]

    def rewound(self, step: int, change: Action | None = None) -> Session:
        """The session as it was before stop point `step`, with `change` made there instead of
        what the user did (time travel): the answers are all kept, the changes made at or
        after `step` are dropped."""
        if not 1 <= step <= len(self.trail):
            raise InvalidInput("step", f"{step} is not a recorded stop point (1-{len(self.trail)})")
        key, kind = self.steps[step - 1]["key"], self.trail[step - 1][0]
        if change is not None and change.action not in (*CHANGES_AT.get(kind, ()), "abort"):
            allowed = ", ".join(CHANGES_AT.get(kind, ())) or "only abort"
            raise InvalidInput(
                "step",
                f"{step} is a {kind} stop point: {change.action} is not a change there "
                f"(here: {allowed})",
            )
        kept = [a for a in self.changes() if a.step < step]
        if change is not None:
            kept.append(Action(change.action, step, key, change.value))
        steps: list[Trail] = [(k, a, n, step_data(k, x), None) for k, a, n, x, _ in self.trail]
        # the report stays the recorded run's, to tell how the new run differs from it
        return Session(list(self.breakpoints), steps, self.answers, kept, self.report)
