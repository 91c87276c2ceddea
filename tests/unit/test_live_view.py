"""The live view of `hive run` follows the team's events."""

from __future__ import annotations

from rich.console import Console

from hive.api.agentteam import AgentTeamSpec
from hive.cli.live import LiveView, describe
from hive.runtime.events import Event, EventKind

SPEC = AgentTeamSpec.model_validate(
    {
        "goal": "g",
        "model": {"name": "m"},
        "agents": [
            {"name": "lead", "role": "senior", "subordinates": ["dev"]},
            {"name": "dev", "role": "junior"},
        ],
    }
)


def rendered(view: LiveView) -> str:
    console = Console(record=True, width=120)
    console.print(view.render())
    return console.export_text()


def test_the_view_shows_who_works_on_what_and_what_happened() -> None:
    view = LiveView(SPEC, "build it")
    view.on_event(Event(EventKind.DELEGATED, "lead", {"to": "dev", "task": "write the code"}))
    view.on_event(Event(EventKind.STARTED, "dev", {"task": "write the code"}))
    view.on_event(Event(EventKind.MODEL_CALLED, "dev", {"step": 1, "tokens": 30}))
    text = rendered(view)
    dev_line = next(line for line in text.splitlines() if "│ dev" in line)
    assert "working" in dev_line
    assert "write the code" in dev_line
    assert "lead delegates to dev: write the code" in text

    view.on_event(Event(EventKind.FINISHED, "dev", {"output": "ok", "steps": 1}))
    view.on_event(Event(EventKind.REVIEWED, "lead", {"of": "dev", "score": None, "feedback": ""}))
    text = rendered(view)
    dev_line = next(line for line in text.splitlines() if "│ dev" in line)
    assert "done" in dev_line
    assert view.rows["dev"].done == 1
    assert view.rows["dev"].steps == 1
    assert "lead reviews dev: score none" in text


def test_events_without_a_story_are_not_logged() -> None:
    assert describe(Event(EventKind.MODEL_CALLED, "x", {"step": 1})) is None
    assert describe(
        Event(EventKind.VOTED, "x", {"votes": [{"proposal": 1, "vote": "accept"}]})
    ) == ("votes #1 accept")
