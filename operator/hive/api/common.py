"""Building blocks shared by every kind: the base model, conditions, references."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

CRON = r"^(@(yearly|annually|monthly|weekly|daily|hourly)|(\S+\s+){4}\S+)$"


class HiveModel(BaseModel):
    """Base of every spec and status model: camelCase on the wire, unknown fields refused."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        use_enum_values=True,
        validate_default=True,
    )

    def wire(self) -> dict[str, Any]:
        """The object as it goes to the API server: camelCase, unset fields left out."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


def list_map(*keys: str) -> dict[str, Any]:
    """Schema extension for a list that merges by key under server-side apply."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, Any]:
    """A CEL validation rule (x-kubernetes-validations) checked by the API server."""
    out: dict[str, Any] = {"rule": rule, "message": message}
    if field_path:
        out["fieldPath"] = field_path
    return out


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(HiveModel):
    """One observation of the resource's state, after the Kubernetes API conventions."""

    type: str = Field(description="Kind of condition: Ready, Progressing, Degraded, ...")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="One CamelCase word for machines: why the condition is what it is.",
    )
    message: str = Field(min_length=1, description="What a person should know, in a sentence.")
    last_transition_time: dt.datetime = Field(
        description="When the status last changed from one value to another."
    )
    observed_generation: int = Field(
        ge=0, description="The .metadata.generation the condition was computed from."
    )


class SecretKeyRef(HiveModel):
    """A key in a Secret in the same namespace."""

    name: str = Field(min_length=1, description="Name of the Secret.")
    key: str = Field(default="api-key", min_length=1, description="Key within the Secret.")


class LocalRef(HiveModel):
    """A reference to another Hive resource in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the resource.")


def describe_validation_error(error: ValidationError, root: str = "spec") -> str:
    """The first problem of a pydantic error as 'spec.agents[0].name: reason'."""
    first = error.errors()[0]
    if not first["loc"]:  # a rule over the whole spec names its own field
        return f"{root}.{first['msg']}"
    path = root
    for part in first["loc"]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return f"{path}: {first['msg']}"
