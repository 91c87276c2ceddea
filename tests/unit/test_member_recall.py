"""A member puts what it recalls for a task into its agent's context before it works."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import AgentSpec
from hive.runtime.events import EventBus
from hive.runtime.models import Message, Reply, Usage
from hive.runtime.teams.members import LocalMember


@dataclass
class Recorder:
    usage: Usage = field(default_factory=Usage)
    seen: list[list[Message]] = field(default_factory=list)

    async def complete(self, messages: Sequence[Message], tools: Any = None, **_: Any) -> Reply:
        self.seen.append(list(messages))
        return Reply(content="done", tool_calls=[], finish_reason="stop")

    async def structured(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("not used")


async def test_recalled_memories_come_before_the_task_and_only_when_there_are_some() -> None:
    asked: list[str] = []

    async def recall(task: str) -> list[str]:
        asked.append(task)
        return ["the build needs Go 1.26", "tests run on two cores"]

    model = Recorder()
    spec = AgentSpec(name="dev", role="junior")
    member = LocalMember(spec=spec, model=model, goal="g", bus=EventBus(), recall=recall)
    assert (await member.execute("fix the build")).ok
    assert asked == ["fix the build"]
    system, memories, task = model.seen[0]
    assert system["role"] == "system"
    assert memories["role"] == "system"
    assert memories["content"].splitlines()[1:] == [
        "- the build needs Go 1.26",
        "- tests run on two cores",
    ]
    assert task == {"role": "user", "content": "fix the build"}

    plain = Recorder()
    await LocalMember(spec=spec, model=plain, goal="g", bus=EventBus()).execute("x")
    assert [m["role"] for m in plain.seen[0]] == ["system", "user"]


async def test_a_memory_that_fails_leaves_the_agent_working_and_says_so() -> None:
    from hive.errors import Unavailable
    from hive.runtime.events import EventKind

    async def broken(task: str) -> list[str]:
        raise Unavailable("memory store 'notes': unreachable")

    bus = EventBus()
    failures = []
    bus.subscribe(lambda e: failures.append(e) if e.kind is EventKind.TOOL_FAILED else None)
    model = Recorder()
    spec = AgentSpec(name="dev", role="junior")
    member = LocalMember(spec=spec, model=model, goal="g", bus=bus, recall=broken)
    assert (await member.execute("fix the build")).ok
    assert [m["role"] for m in model.seen[0]] == ["system", "user"]
    assert failures[0].data == {"tool": "recall", "error": "memory store 'notes': unreachable"}
