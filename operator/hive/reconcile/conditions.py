"""Conditions after the Kubernetes API conventions, merged without losing transition times."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from hive.api.common import Condition, ConditionStatus


def condition(
    type_: str,
    status: bool | ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int,
    now: dt.datetime,
) -> Condition:
    if isinstance(status, bool):
        status = ConditionStatus.TRUE if status else ConditionStatus.FALSE
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=now.replace(microsecond=0),
        observed_generation=generation,
    )


def merge_conditions(previous: list[Condition], desired: list[Condition]) -> list[Condition]:
    """`desired`, keeping each previous lastTransitionTime where the status did not change."""
    before = {c.type: c for c in previous}
    merged = []
    for new in desired:
        old = before.get(new.type)
        if old is not None and old.status == new.status:
            new = new.model_copy(update={"last_transition_time": old.last_transition_time})
        merged.append(new)
    return merged


def previous_conditions(status: Mapping[str, Any] | None) -> list[Condition]:
    """The conditions recorded in an object's status, parsed."""
    return [Condition.model_validate(c) for c in (status or {}).get("conditions", [])]
