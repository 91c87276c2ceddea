"""The terminal UI of `hive run --debug` (Textual: plain keys and text, so it works over SSH):
the paused stop point, what the user inspects, and keys to change, step, continue or abort.

Keys: c continue · n step to the next stop point · a abort · e edit the next message · o
override the review score · k skip the tool call · m p u t r inspect the messages, plan,
budgets, delegation tree, last model request/response · b set (or -NAME remove) a breakpoint
· x export the session · q quit (aborting a run still going).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Input, Static

from hive.cli.debugcmd import DebugChoice, TeamRun, describe, escaped_data
from hive.errors import HiveError
from hive.runtime.debug.debugger import Stop
from hive.runtime.teams.team import TeamResult


class DebugApp(App[None]):
    """The terminal UI of one debugged run."""

    TITLE = "hive run --debug"
    CSS = """
    #status { height: 1; background: $boost; text-style: bold; }
    #stop { height: auto; max-height: 10; border: round $accent; padding: 0 1; }
    #scroll { border: round $primary; }
    #message { height: 1; color: $warning; }
    #prompt { display: none; }
    #prompt.asking { display: block; }
    """
    BINDINGS = [
        Binding("c", "resume", "continue"),
        Binding("n", "step", "step"),
        Binding("a", "abort", "abort"),
        Binding("e", "ask('edit')", "edit"),
        Binding("o", "ask('score')", "score"),
        Binding("k", "skip", "skip tool"),
        Binding("m", "inspect('messages')", "messages"),
        Binding("p", "inspect('plan')", "plan"),
        Binding("u", "inspect('budgets')", "budgets"),
        Binding("t", "inspect('tree')", "tree"),
        Binding("r", "inspect('model')", "model"),
        Binding("b", "ask('break')", "break"),
        Binding("x", "export", "export"),
        Binding("q", "leave", "quit"),
        Binding("escape", "cancel", "cancel", show=False),
    ]

    def __init__(
        self, choice: DebugChoice, run: Callable[[], Awaitable[TeamResult]], exported: Path
    ) -> None:
        super().__init__()
        self.choice = choice
        self.debugger = choice.debugger
        self._run = run
        self.exported = exported
        self.result: TeamResult | None = None
        self.error: str | None = None
        self.asking: str | None = None
        self.quitting = False

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield Static(id="stop")
        yield VerticalScroll(Static(id="view"), id="scroll")
        yield Static(id="message")
        yield Input(id="prompt")
        yield Footer()

    def on_mount(self) -> None:
        self.debugger.listeners.append(lambda _: self.show())
        self.run_worker(self.work(), exclusive=True)
        self.show()

    async def work(self) -> None:
        try:
            self.result = await self._run()
        except Exception as exc:  # shown, and the app stays until q: a user reads it
            self.error = f"{exc.__class__.__name__}: {exc}"
        self.show()
        if self.quitting:
            self.exit()

    # what the screen shows

    def show(self) -> None:
        status = self.query_one("#status", Static)
        stop_panel = self.query_one("#stop", Static)
        points = ", ".join(str(b) for b in self.debugger.breakpoints) or "none"
        paused = self.debugger.paused
        if self.result is not None or self.error is not None:
            ended = self.error or f"{self.result.outcome if self.result else ''}"
            message = self.result.message if self.result and self.result.message else ""
            status.update(f"FINISHED: {escape(ended)} {escape(message)} · q quits")
            output = self.result.output if self.result else ""
            stop_panel.update(f"answer: {escape(output)}")
        elif paused is not None:
            stop = paused.stop
            status.update(
                f"PAUSED at step {stop.index} · {stop.kind} · {stop.agent} · "
                f"{escape(stop.reason)} · breakpoints: {escape(points)}"
            )
            changed = [
                f"next message: {paused.edit}" if paused.edit is not None else "",
                f"score: {paused.score:g}" if paused.score is not None else "",
                "the tool call is skipped" if paused.skip else "",
            ]
            said = "".join(f"\n[b]changed[/] {escape(c)}" for c in changed if c)
            shown = Stop(**{**stop.__dict__, "data": escaped_data(stop.data)})
            stop_panel.update(describe(shown) + said)
        else:
            steps = len(self.debugger.session.trail)
            status.update(f"RUNNING · {steps} stop points · breakpoints: {escape(points)}")

    def say(self, text: str) -> None:
        self.query_one("#message", Static).update(escape(text))

    # the keys

    def _act(self, act: Callable[[], Any]) -> bool:
        """Do `act`; False (and the reason shown) when the debugger refused it."""
        try:
            act()
        except HiveError as exc:
            self.say(str(exc))
            return False
        return True

    def action_resume(self) -> None:
        self._act(self.debugger.resume)

    def action_step(self) -> None:
        self._act(self.debugger.step)

    def action_abort(self) -> None:
        if self._act(self.debugger.abort):
            self.say("aborted: the run ends")

    def action_skip(self) -> None:
        if self._act(self.debugger.skip):
            self.say("the tool call will be skipped: c continues")
            self.show()

    def action_inspect(self, what: str) -> None:
        try:
            shown = self.debugger.inspect(what)
        except HiveError as exc:
            self.say(str(exc))
            return
        if what == "tree":
            text = "\n".join(shown["lines"]) or "no delegation yet"
        else:
            text = json.dumps(shown, indent=2, default=str)
        self.query_one("#view", Static).update(f"[b]{what}[/]\n{escape(text)}")

    def action_ask(self, what: str) -> None:
        prompt = self.query_one("#prompt", Input)
        paused = self.debugger.paused
        prompt.value = ""
        if what == "edit" and paused is not None:
            data = paused.stop.data
            prompt.value = str(data.get("task") or data.get("content") or "")
        hints = {
            "edit": "the next message (enter sets it)",
            "score": "the review score, 0 to 1",
            "break": "a breakpoint: delegate[:AGENT] model[:AGENT] tool[:NAME] score<X error; "
            "-BREAKPOINT removes one",
        }
        prompt.placeholder = hints[what]
        self.asking = what
        prompt.add_class("asking")
        prompt.focus()
        self.say(hints[what])

    def action_cancel(self) -> None:
        self._close_prompt()

    def _close_prompt(self) -> None:
        prompt = self.query_one("#prompt", Input)
        prompt.remove_class("asking")
        self.asking = None
        self.set_focus(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        asked, value = self.asking, event.value.strip()
        self._close_prompt()
        if asked == "edit":
            if self._act(lambda: self.debugger.edit(value)):
                self.say("next message changed: c continues")
                self.show()
        elif asked == "score":
            try:
                score = float(value)
            except ValueError:
                self.say(f"{value!r} is not a number")
                return
            if self._act(lambda: self.debugger.override_score(score)):
                self.say(f"score set to {score:g}: c continues")
                self.show()
        elif asked == "break":
            if value.startswith("-"):
                self._act(lambda: self.debugger.remove_breakpoint(value[1:]))
            else:
                self._act(lambda: self.debugger.add_breakpoint(value))
            self.show()

    def action_export(self) -> None:
        self.debugger.session.export(self.exported)
        self.say(f"session exported to {self.exported}")

    def action_leave(self) -> None:
        if self.result is not None or self.error is not None:
            self.exit()
            return
        self.quitting = True
        self.debugger.abort()  # the run ends at once; the app closes when it has
        self.say("aborting the run…")


def debug_in_terminal(choice: DebugChoice, run: TeamRun, console: Console) -> TeamResult:
    """Run the team under the terminal UI; what the run prints is shown once the UI closes."""
    quiet = Console(file=io.StringIO(), width=console.width, force_terminal=False)
    exported = choice.session_path or Path(f"hive-debug-{dt.datetime.now():%Y%m%d-%H%M%S}.json")
    app = DebugApp(choice, lambda: run(live=False, console=quiet), exported)
    app.run()
    printed = quiet.file.getvalue() if isinstance(quiet.file, io.StringIO) else ""
    console.print(printed, end="", markup=False, highlight=False)
    if app.result is None:
        raise HiveError(f"the debugged run did not finish: {app.error or 'the UI was closed'}")
    return app.result
