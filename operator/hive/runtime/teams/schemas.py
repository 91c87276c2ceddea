"""What agents answer each other in, as pydantic models the model's JSON must validate against."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_validator


class Subtask(BaseModel):
    description: str = Field(min_length=1, description="What to do, in one or two sentences.")
    capabilities: list[str] = Field(
        default_factory=list, description="Skills the work needs, e.g. research, writing."
    )


class DelegationPlan(BaseModel):
    """A senior's split of a task into pieces for its subordinates."""

    subtasks: list[Subtask] = Field(min_length=1, max_length=10)


class Review(BaseModel):
    """A senior's judgement of a result."""

    score: float = Field(ge=0, le=1, description="Quality from 0 (useless) to 1 (excellent).")
    feedback: str = Field(default="", description="What to improve, if anything.")

    @field_validator("score", mode="before")
    @classmethod
    def _to_unit_scale(cls, value: Any) -> Any:
        """Small models score out of 10 or 100 whatever they are told; bring that to 0..1."""
        if isinstance(value, int | float) and not isinstance(value, bool):
            if 1 < value <= 10:
                return value / 10
            if 10 < value <= 100:
                return value / 100
        return value


class Proposal(BaseModel):
    proposal: str = Field(min_length=1, description="The solution proposed.")
    rationale: str = Field(default="", description="Why it is the right one.")


class Choice(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ABSTAIN = "abstain"


class Vote(BaseModel):
    proposal: int = Field(ge=1, description="Number of the proposal voted on.")
    vote: Choice
    reason: str = Field(default="")


class Ballot(BaseModel):
    """One agent's votes on the proposals of a round."""

    votes: list[Vote] = Field(default_factory=list)
