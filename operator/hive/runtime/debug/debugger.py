"""The debugger of one run: its breakpoints, the paused stop point, and the user's actions.

The run reaches stop points (hive.runtime.debug.hooks reports each); where a breakpoint hits,
the user stepped, or a replayed change is due, the run pauses there: the coroutine that reached
it waits, the run's budget clock stops, and listeners (a terminal UI, the debug endpoint) are
told. The user then inspects, changes what the stop point allows (the next message, the review
score, the tool call), steps to the next stop point, continues, or aborts; every action goes
into the session. One stop point is paused at a time: agents working in parallel that reach
another wait their turn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from hive.errors import HiveError, InvalidInput
from hive.runtime.debug.breakpoints import Breakpoint, Where
from hive.runtime.debug.clock import PausableClock
from hive.runtime.debug.session import Action, Session
from hive.runtime.models import Message

if TYPE_CHECKING:
    from hive.runtime.teams.team import Team


class DebugAborted(HiveError):
    """The user aborted the run at the debugger."""


@dataclass
class Stop:
    """A stop point the run paused at."""

    index: int
    key: str
    kind: str  # an event kind, model-call or tool-call
    agent: str
    data: dict[str, Any]
    reason: str  # the breakpoint that hit, "step", or "replay"
    changes: tuple[str, ...] = ()  # what may be changed here: edit, score, skip

    def wire(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "key": self.key,
            "kind": self.kind,
            "agent": self.agent,
            "data": self.data,
            "reason": self.reason,
            "changes": list(self.changes),
        }


@dataclass
class Pause:
    """The run paused at `stop`, and what the user changed there."""

    stop: Stop
    resumed: asyncio.Future[None]
    edit: str | None = None
    score: float | None = None
    skip: bool = False
    abort: bool = False


Listener = Callable[["Debugger"], None]


@dataclass
class Debugger:
    breakpoints: list[Breakpoint] = field(default_factory=list)
    # changes to make at stop points without pausing (a replayed session's), by stop key
    scheduled: dict[str, list[Action]] = field(default_factory=dict)
    clock: PausableClock = field(default_factory=PausableClock)
    session: Session = field(default_factory=Session)
    listeners: list[Listener] = field(default_factory=list)
    team: Team | None = None  # what inspection reads (delegations, plan, budgets)
    stepping: bool = False
    aborted: bool = False
    paused: Pause | None = None
    finished: bool = False
    abort_reason: str = ""
    last_model: dict[str, tuple[list[Any], Any]] = field(default_factory=dict)  # by agent
    pending_edits: dict[str, str] = field(default_factory=dict)  # next request's, by agent
    _turn: asyncio.Lock = field(default_factory=asyncio.Lock)
    _counts: dict[tuple[str, str], int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.session.breakpoints = [str(b) for b in self.breakpoints]
        self.armed = bool(self.breakpoints or self.scheduled)

    @classmethod
    def replaying(cls, session: Session, breakpoints: Iterable[Breakpoint] = ()) -> Debugger:
        """A debugger that makes the session's changes again where they were made."""
        scheduled: dict[str, list[Action]] = {}
        for action in session.changes():
            scheduled.setdefault(action.stop, []).append(action)
        return cls(list(breakpoints), scheduled)

    # the stop points (called by the hooks)

    def reached(
        self, kind: str, agent: str, about: Any, messages: list[Message] | None = None
    ) -> tuple[int, int]:
        """Record a stop point (see session.Trail); its index, and n: it is the agent's n-th
        of its kind (its key is ``kind:agent:n``)."""
        counted = (kind, agent)
        n = self._counts[counted] = self._counts.get(counted, 0) + 1
        trail = self.session.trail
        trail.append((kind, agent, n, about, messages))
        return len(trail), n

    def hit(self, where: Where, name: str, score: float | None = None) -> str | None:
        """The breakpoint that stops here, if any."""
        for point in self.breakpoints:
            if point.hits(where, name, score):
                return str(point)
        return None

    async def stop(self, stop: Stop) -> Pause:
        """Pause at `stop` until the user steps, continues or aborts (a replayed change is made
        without pausing). After an abort every call the run makes fails (the hooks raise
        DebugAborted), so the run ends at once; its report says where it was aborted."""
        resumed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        pause = Pause(stop, resumed)
        due = self.scheduled.pop(stop.key, [])
        for action in due:
            self._apply(pause, action.action, action.value)
            self.session.actions.append(Action(action.action, stop.index, stop.key, action.value))
        if due and stop.reason == "replay":
            if pause.abort:
                self._aborted_at(stop)
            return pause
        async with self._turn:
            if self.aborted:
                pause.abort = True
                return pause
            self.stepping = False
            self.paused = pause
            self.clock.pause()
            self._tell()
            try:
                await resumed
            finally:
                self.clock.resume()
                self.paused = None
                self._tell()
        if pause.abort:
            self._aborted_at(stop)
        return pause

    def _aborted_at(self, stop: Stop | None) -> None:
        self.aborted = self.armed = True
        if not self.abort_reason:
            where = f" at step {stop.index} ({stop.key})" if stop else ""
            self.abort_reason = f"aborted at the debugger{where}"

    def _tell(self) -> None:
        for listener in list(self.listeners):
            listener(self)

    # the user's actions

    def _record(self, action: str, value: Any = None) -> None:
        stop = self.paused.stop if self.paused else None
        self.session.actions.append(
            Action(action, stop.index if stop else 0, stop.key if stop else "", value)
        )

    def _paused(self, action: str) -> Pause:
        if self.paused is None:
            raise InvalidInput(action, "the run is not paused")
        return self.paused

    def _apply(self, pause: Pause, action: str, value: Any) -> None:
        stop = pause.stop
        if action == "abort":
            pause.abort = True
            return
        if action not in stop.changes:
            allowed = ", ".join(stop.changes) or "nothing"
            raise InvalidInput(action, f"cannot be changed at a {stop.kind} stop (here: {allowed})")
        if action == "edit":
            pause.edit = str(value)
            if stop.kind != "model-call":  # the next request of the agent concerned
                self.pending_edits[stop.data.get("to") or stop.agent] = pause.edit
        elif action == "score":
            pause.score = float(value)
            stop.data["score"] = pause.score  # the team reads the score back from the event
        elif action == "skip":
            pause.skip = True

    def edit(self, text: str) -> None:
        """Change the next message: at a model call, the answer the agent is about to read;
        elsewhere, the last message of the next request the agent concerned sends."""
        self._apply(self._paused("edit"), "edit", text)
        self._record("edit", text)

    def override_score(self, score: float) -> None:
        if not 0.0 <= score <= 1.0:
            raise InvalidInput("score", f"{score:g} is not between 0 and 1")
        self._apply(self._paused("score"), "score", score)
        self._record("score", score)

    def skip(self) -> None:
        """Skip the paused tool call (the agent reads that it was skipped)."""
        self._apply(self._paused("skip"), "skip", True)
        self._record("skip", True)

    def resume(self) -> None:
        pause = self._paused("continue")
        self._record("continue")
        pause.resumed.set_result(None)

    def step(self) -> None:
        """Go on to the next stop point and pause there."""
        pause = self._paused("step")
        self._record("step")
        self.stepping = True
        self.armed = True
        pause.resumed.set_result(None)

    def abort(self) -> None:
        self._record("abort")
        self._aborted_at(self.paused.stop if self.paused else None)
        if self.paused is not None and not self.paused.resumed.done():
            self.paused.abort = True
            self.paused.resumed.set_result(None)

    def add_breakpoint(self, text: str) -> Breakpoint:
        point = Breakpoint.parse(text, "breakpoint")
        if point not in self.breakpoints:
            self.breakpoints.append(point)
        self.armed = True
        self._record("break", str(point))
        return point

    def remove_breakpoint(self, text: str) -> None:
        point = Breakpoint.parse(text, "breakpoint")
        if point not in self.breakpoints:
            raise InvalidInput("breakpoint", f"{point} is not set")
        self.breakpoints.remove(point)
        self.armed = bool(self.breakpoints or self.scheduled or self.stepping or self.aborted)
        self._record("unbreak", str(point))

    def inspect(self, what: str) -> Any:
        """What the run holds now (see hive.runtime.debug.inspection); recorded as an action."""
        from hive.runtime.debug.inspection import VIEWS

        view = VIEWS.get(what)
        if view is None:
            raise InvalidInput("inspect", f"{what!r}: one of {', '.join(VIEWS)}")
        self._record("inspect", what)
        return view(self)

    def close(self, report: dict[str, Any] | None) -> None:
        """The run ended: keep its report with the session."""
        self.session.report = report
        self.finished = True
        self._tell()
