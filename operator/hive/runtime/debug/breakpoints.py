"""Breakpoints: where a run stops, written as the user types them.

``delegate`` / ``delegate:AGENT``  before a delegation (to any agent, or to AGENT)
``model`` / ``model:AGENT``        after a model call (of any agent, or of AGENT)
``tool`` / ``tool:NAME``           before a tool call (of any tool, or of NAME)
``score<0.6``                      on a review whose score is below the value
``error``                          on an error (an agent or a task failed, a tool call failed)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from hive.errors import InvalidInput


class Where(StrEnum):
    DELEGATE = "delegate"
    MODEL = "model"
    TOOL = "tool"
    SCORE = "score"
    ERROR = "error"


SCORE_BELOW = re.compile(r"^score\s*<\s*([0-9]*\.?[0-9]+)$")


@dataclass(frozen=True)
class Breakpoint:
    where: Where
    name: str | None = None  # the agent (delegate, model) or tool; None: any
    below: float | None = None  # score breakpoints: stop when the score is below it

    def __str__(self) -> str:
        if self.where is Where.SCORE:
            return f"score<{self.below:g}"
        return f"{self.where}:{self.name}" if self.name else str(self.where)

    @classmethod
    def parse(cls, text: str, field: str = "--break") -> Breakpoint:
        spec = text.strip()
        score = SCORE_BELOW.match(spec)
        if score:
            return cls(Where.SCORE, below=float(score.group(1)))
        where, _, name = spec.partition(":")
        try:
            kind = Where(where)
        except ValueError:
            raise InvalidInput(
                field,
                f"{text!r} is not a breakpoint: use delegate[:AGENT], model[:AGENT], "
                "tool[:NAME], score<VALUE or error",
            ) from None
        if kind is Where.SCORE:
            raise InvalidInput(field, f"{text!r}: a score breakpoint reads score<VALUE")
        if kind is Where.ERROR and name:
            raise InvalidInput(field, f"{text!r}: error takes no name")
        return cls(kind, name or None)

    def hits(self, where: Where, name: str, score: float | None = None) -> bool:
        if where is not self.where:
            return False
        if where is Where.SCORE:
            return score is not None and self.below is not None and score < self.below
        return self.name is None or self.name == name
