"""Replaying a recorded run: the model answers as recorded, instead of asking the model.

`ReplayModel` is the team's model with a different transport: each request gets the recorded
answer of its agent to the same request (by fingerprint), else that agent's next unused answer
in order (a change made in the replay may have changed the request); when an agent has none
left, the live model answers where the replay may go on live, else the run fails with
`ReplayExhausted`. Usage is counted as for a live answer, so the run's report is the same.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from hive.errors import HiveError
from hive.runtime.debug.session import Answer, fingerprint, reply_from_wire
from hive.runtime.models import Message, OpenAICompatible, Reply


class ReplayExhausted(HiveError):
    """A replay asked for more model answers than the session recorded."""


@dataclass
class RecordedAnswers:
    """A session's answers, each given once."""

    answers: Sequence[Answer]
    used: set[int] = field(default_factory=set)
    live: int = 0  # answers the live model gave once the recording ran out

    def take(self, agent: str, request: str) -> Reply | None:
        mine = [i for i, a in enumerate(self.answers) if a.agent == agent and i not in self.used]
        same = [i for i in mine if self.answers[i].request == request]
        if not mine:
            return None
        chosen = (same or mine)[0]
        self.used.add(chosen)
        return reply_from_wire(self.answers[chosen].reply)


@dataclass
class ReplayModel(OpenAICompatible):
    """The team's model answering from a recording (copies made by `for_agent` share it)."""

    recorded: RecordedAnswers = field(default_factory=lambda: RecordedAnswers(()))
    go_live: bool = False  # once the recording ran out, ask the model itself

    async def _complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        reply = self.recorded.take(self.user or "", fingerprint(list(messages)))
        if reply is None:
            if not self.go_live:
                raise ReplayExhausted(
                    f"replay: no recorded model answer left for {self.user or 'the run'}"
                )
            self.recorded.live += 1
            return await super()._complete(messages, tools, **extra)
        self._account(reply.prompt_tokens, reply.completion_tokens)
        return reply


def replaying(model: OpenAICompatible, answers: Sequence[Answer], go_live: bool) -> ReplayModel:
    """`model` (its name, pricing, chain, ...) answering from `answers`."""
    values = {f.name: getattr(model, f.name) for f in dataclasses.fields(model) if f.init}
    return ReplayModel(**values, recorded=RecordedAnswers(answers), go_live=go_live)
