"""A team's privacy policy (``spec.privacy``): which personal data is looked for, how each kind
is handled, and at which boundaries of the runtime; and the floor a platform sets for every team.

The floor is an operator setting (``HIVE_PRIVACY__FLOOR``, a policy in the same shape, set by
the platform team in the chart's values) rather than a kind of its own: admission already runs
in the operator, the floor is one object for the whole cluster with no namespace to live in, and
a setting needs no read of the API server per admitted team. `weaker_than` says, field by field,
where a team's policy would be weaker than the floor.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hive.api.common import HiveModel, SecretKeyRef, list_map
from hive.errors import InvalidInput

ENTITY = r"^[A-Z][A-Z0-9_]{1,63}$"
TOOL = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"  # a tool's name as a model calls it

BUILTIN_ENTITIES = (
    "PERSON",
    "LOCATION",
    "ORGANIZATION",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "API_KEY",
)
NER_ENTITIES = frozenset({"PERSON", "LOCATION", "ORGANIZATION"})


class DetectionMode(StrEnum):
    FAST = "fast"  # pattern recognisers only (no NER): names and places are not found
    NER = "ner"  # patterns plus the spaCy English model's named entities


class Strategy(StrEnum):
    ALLOW = "allow"
    MASK = "mask"  # all but the last `keepLast` characters replaced by *
    PSEUDONYMISE = "pseudonymise"  # reversible: restored for the run's requester
    HASH = "hash"  # salted per team, not reversible
    REDACT = "redact"  # replaced by <ENTITY>


STRENGTH = {
    Strategy.ALLOW: 0,
    Strategy.MASK: 1,
    Strategy.PSEUDONYMISE: 2,
    Strategy.HASH: 3,
    Strategy.REDACT: 4,
}


class Boundary(StrEnum):
    MODEL_PROMPTS = "modelPrompts"
    MODEL_ANSWERS = "modelAnswers"
    TOOL_INPUTS = "toolInputs"
    TOOL_OUTPUTS = "toolOutputs"
    MEMORY_WRITES = "memoryWrites"
    LOGS = "logs"  # logs, trace content and events


class Checksum(StrEnum):
    NONE = "none"
    LUHN = "luhn"
    MOD97 = "mod97"  # ISO 7064, as IBANs


class EntityRule(HiveModel):
    """How one kind of personal data is handled."""

    entity: str = Field(pattern=ENTITY, description="Entity type, e.g. EMAIL_ADDRESS.")
    strategy: Strategy = Field(description="allow, mask, pseudonymise, hash or redact.")
    keep_last: int = Field(
        default=4, ge=0, le=16, description="mask: characters left in clear at the end."
    )


class CustomRecognizer(HiveModel):
    """An entity type the team declares: a regular expression, words that raise its score
    when near, and an optional checksum a match must pass."""

    entity: str = Field(pattern=ENTITY, description="Entity type it finds, e.g. EMPLOYEE_ID.")
    regex: str = Field(min_length=1, max_length=1024, description="Python regular expression.")
    context: list[str] = Field(
        default_factory=list, max_length=32, description="Words that raise the score nearby."
    )
    score: float = Field(default=0.6, ge=0, le=1, description="Score of a match.")
    checksum: Checksum = Field(default=Checksum.NONE, description="none, luhn or mod97.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise PydanticCustomError(
                "invalid_regex",
                "invalid regular expression at position {pos}: {msg}",
                {"pos": exc.pos, "msg": exc.msg},
            ) from exc
        return value


def default_rules() -> list[EntityRule]:
    return [EntityRule(entity=e, strategy=Strategy.REDACT) for e in BUILTIN_ENTITIES]


class PrivacySpec(HiveModel):
    """Personal data found and handled before it reaches a model, a tool, a memory or a log."""

    mode: DetectionMode = Field(
        default=DetectionMode.NER,
        description="ner (patterns and named entities) or fast (patterns only).",
    )
    min_score: float = Field(
        default=0.5, ge=0, le=1, description="Findings scored below this are ignored."
    )
    rules: list[EntityRule] = Field(
        default_factory=default_rules,
        max_length=64,
        description="Strategy per entity type; entities without a rule are allowed.",
        json_schema_extra=list_map("entity"),
    )
    boundaries: list[Boundary] = Field(
        default_factory=lambda: list(Boundary),
        max_length=6,
        description="Where the policy applies (modelPrompts, modelAnswers, toolInputs, "
        "toolOutputs, memoryWrites, logs).",
    )
    recognizers: list[CustomRecognizer] = Field(
        default_factory=list, max_length=32, description="The team's own entity types."
    )
    key_secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="The team's key of reversible pseudonyms and hash salt (16+ bytes), given to "
        "its agent pods as HIVE_PRIVACY__KEY, where no Vault is configured (with one, the "
        "team's Vault transit key seals pseudonyms); unset: each pod makes its own, so a "
        "pseudonym is restored only by the pod that made it.",
    )
    restore_for_requester: bool = Field(
        default=True,
        description="Pseudonyms in the final answer are restored for the run's requester "
        "(never for a model).",
    )
    restore_for_tools: list[Annotated[str, StringConstraints(pattern=TOOL)]] = Field(
        default_factory=list,
        max_length=32,
        description="Tools that need real values (a CRM lookup by email): pseudonyms in their "
        "arguments are restored just before the call, and their output is scrubbed again "
        "before the model sees it; every other tool gets pseudonyms only. Each is a tool's "
        "name as the model calls it. Needs a pseudonymise rule and the toolOutputs boundary.",
    )

    @model_validator(mode="after")
    def _rules_are_unique(self) -> PrivacySpec:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.entity in seen:
                raise PydanticCustomError(
                    "duplicate_rule",
                    "rules[{i}].entity: {entity} has a rule already",
                    {"i": index, "entity": rule.entity},
                )
            seen.add(rule.entity)
        return self

    @model_validator(mode="after")
    def _restored_tools_can_work(self) -> PrivacySpec:
        tools = self.restore_for_tools
        if not tools:
            return self
        for index, tool in enumerate(tools):
            if tool in tools[:index]:
                raise PydanticCustomError(
                    "duplicate_tool",
                    "restoreForTools[{i}]: {tool} is listed already",
                    {"i": index, "tool": tool},
                )
        if not any(r.strategy == Strategy.PSEUDONYMISE for r in self.rules):
            raise PydanticCustomError(
                "nothing_to_restore",
                "restoreForTools: no rule pseudonymises, so a tool has nothing to restore",
                {},
            )
        if Boundary.TOOL_OUTPUTS not in self.boundaries:
            raise PydanticCustomError(
                "output_unscrubbed",
                "restoreForTools: needs toolOutputs in boundaries (the output of a tool that "
                "got real values is scrubbed again before the model sees it)",
                {},
            )
        return self

    def strategy(self, entity: str) -> EntityRule | None:
        return next((r for r in self.rules if r.entity == entity), None)

    def entities(self) -> list[str]:
        """The entity types handled by something other than allow."""
        return [r.entity for r in self.rules if r.strategy != Strategy.ALLOW]


def weaker_than(team: PrivacySpec | None, floor: PrivacySpec | None) -> str | None:
    """Where `team` is weaker than `floor` (one message naming the field), or None."""
    if floor is None:
        return None
    if team is None:
        return "spec.privacy: the cluster's privacy floor requires a privacy policy"
    if floor.mode == DetectionMode.NER and team.mode == DetectionMode.FAST:
        return "spec.privacy.mode: fast is weaker than the cluster floor's ner"
    if team.min_score > floor.min_score:
        return (
            f"spec.privacy.minScore: {team.min_score:g} is above the cluster floor's "
            f"{floor.min_score:g}"
        )
    missing = [Boundary(b).value for b in floor.boundaries if b not in team.boundaries]
    if missing:
        return f"spec.privacy.boundaries: the cluster floor requires {', '.join(missing)}"
    for rule in floor.rules:
        mine = team.strategy(rule.entity)
        strategy = Strategy(mine.strategy) if mine else Strategy.ALLOW
        if STRENGTH[strategy] < STRENGTH[Strategy(rule.strategy)]:
            return (
                f"spec.privacy.rules[{rule.entity}]: {strategy.value} is weaker than the "
                f"cluster floor's {Strategy(rule.strategy).value}"
            )
        if (
            mine
            and strategy == Strategy.MASK
            and rule.strategy == Strategy.MASK
            and mine.keep_last > rule.keep_last
        ):
            return (
                f"spec.privacy.rules[{rule.entity}].keepLast: {mine.keep_last} is more than the "
                f"cluster floor's {rule.keep_last}"
            )
    if floor.restore_for_requester is False and team.restore_for_requester:
        return "spec.privacy.restoreForRequester: the cluster floor forbids restoring pseudonyms"
    beyond = [t for t in team.restore_for_tools if t not in floor.restore_for_tools]
    if beyond:
        return (
            f"spec.privacy.restoreForTools: {', '.join(beyond)} may not get real values under "
            "the cluster floor (its restoreForTools lists the tools that may)"
        )
    return None


def parse_floor(text: str | None) -> PrivacySpec | None:
    """The cluster floor from its setting (HIVE_PRIVACY__FLOOR, JSON), or None when unset."""
    if not text:
        return None
    try:
        return PrivacySpec.model_validate_json(text)
    except ValueError as exc:
        raise InvalidInput("HIVE_PRIVACY__FLOOR", f"not a privacy policy: {exc}") from exc


def floor_problem(team_spec: dict[str, Any], floor: PrivacySpec | None) -> str | None:
    """Why an AgentTeam spec (already valid) is weaker than the floor, or None."""
    if floor is None:
        return None
    raw = team_spec.get("privacy")
    team = PrivacySpec.model_validate(raw) if isinstance(raw, dict) else None
    return weaker_than(team, floor)
