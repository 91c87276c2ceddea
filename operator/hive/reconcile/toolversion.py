"""ToolVersion: every version of one tool, ordered, with its migration chain checked.

The chain is valid for a version when following ``spec.migration.from`` from it reaches the
oldest version through versions that exist, each step going to an older one, with no version
skipped (a skipped version is a hole: calls written for it would have no way forward). A
migration from a version that does not exist is a hole too, even on the oldest version: calls
written for the missing version have nowhere to come from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from hive.api.common import Condition, describe_validation_error
from hive.api.semver import best_match, less, ordered
from hive.api.toolversion import ToolConsumer, ToolVersionSpec, ToolVersionStatus
from hive.reconcile.conditions import condition, merge_conditions, previous_conditions


@dataclass(frozen=True)
class ChainCheck:
    valid: bool
    path: list[str]
    problem: str | None


def check_chain(version: str, specs: Mapping[str, ToolVersionSpec]) -> ChainCheck:
    """Follow migrations back from `version` to the oldest version of the tool."""
    versions = ordered(specs)
    path = [version]
    current = version
    while True:
        position = versions.index(current)
        migration = specs[current].migration
        if position == 0 and migration is None:
            return ChainCheck(True, list(reversed(path)), None)
        if migration is None:
            return ChainCheck(
                False,
                list(reversed(path)),
                f"{current} has no spec.migration, but {versions[position - 1]} is older",
            )
        source = migration.from_version
        if source not in specs:
            return ChainCheck(
                False,
                list(reversed(path)),
                f"{current}: spec.migration.from {source} does not exist "
                f"(versions: {', '.join(versions)})",
            )
        if not less(source, current):
            return ChainCheck(
                False,
                list(reversed(path)),
                f"{current}: spec.migration.from {source} is not older than {current}",
            )
        previous = versions[position - 1]
        if source != previous:
            return ChainCheck(
                False,
                list(reversed(path)),
                f"{current}: spec.migration.from {source} skips {previous}",
            )
        path.append(source)
        current = source


def consumers_by_version(
    tool: str,
    specs: Mapping[str, ToolVersionSpec],
    teams: Sequence[Mapping[str, Any]],
    now: dt.datetime | None = None,
    window_s: float = 3600.0,
) -> dict[str, list[ToolConsumer]]:
    """The consumers of each version: every agent whose range selects it now (the newest
    version the range allows, deprecated ones only when nothing else matches, as agents
    resolve), and every agent whose status entry reports calls to it within the window."""
    found: dict[str, dict[str, ToolConsumer]] = {}
    oldest = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=window_s)
    for team in teams:
        team_name = team.get("metadata", {}).get("name", "?")
        for agent in (team.get("spec") or {}).get("agents") or []:
            for requirement in agent.get("tools") or []:
                if requirement.get("name") != tool:
                    continue
                chosen = _selected(specs, str(requirement.get("version", "*")))
                if chosen:
                    who = f"{team_name}/{agent.get('name')}"
                    found.setdefault(chosen, {})[who] = ToolConsumer(agent=who, selects=True)
        for entry in (team.get("status") or {}).get("agents") or []:
            for count in entry.get("toolCalls") or []:
                last = _time(count.get("lastCall"))
                version = count.get("version")
                if count.get("tool") != tool or version not in specs or last is None:
                    continue
                if last < oldest:
                    continue
                who = f"{team_name}/{entry.get('name')}"
                known = found.setdefault(version, {}).get(who) or ToolConsumer(agent=who)
                found[version][who] = known.model_copy(
                    update={"calls": known.calls + int(count.get("calls") or 0), "last_call": last}
                )
    return {v: [c for _, c in sorted(byname.items())] for v, byname in found.items()}


def _selected(specs: Mapping[str, ToolVersionSpec], version_range: str) -> str | None:
    try:
        matching = [v for v in specs if best_match([v], version_range)]
        usable = [v for v in matching if not specs[v].deprecation.deprecated] or matching
        return best_match(usable, version_range)
    except (ValueError, TypeError):
        return None


def _time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def deprecation_condition(
    spec: ToolVersionSpec, consumers: Sequence[ToolConsumer], generation: int, now: dt.datetime
) -> Condition:
    """Deprecated: True with who still calls it (or selects it), so the platform team knows."""
    if not spec.deprecation.deprecated:
        return condition(
            "Deprecated", False, "Current", "not deprecated", generation=generation, now=now
        )
    callers = [f"{c.agent} ({c.calls} calls)" for c in consumers if c.calls]
    selecting = [c.agent for c in consumers if c.selects and not c.calls]
    said = spec.deprecation.message or "deprecated"
    if spec.deprecation.sunset is not None:
        said += f"; sunset {spec.deprecation.sunset:%Y-%m-%dT%H:%M:%SZ}"
    if callers:
        said += f"; still called by {', '.join(callers)}"
    if selecting:
        said += f"; selected by {', '.join(selecting)}"
    reason = "StillCalled" if callers else "Deprecated"
    return condition("Deprecated", True, reason, said, generation=generation, now=now)


def _not_ready(
    meta: Mapping[str, Any],
    previous: list[Condition],
    reason: str,
    message: str,
    now: dt.datetime,
) -> ToolVersionStatus:
    generation = meta.get("generation", 0)
    ready = condition("Ready", False, reason, message, generation=generation, now=now)
    return ToolVersionStatus(
        observed_generation=generation, conditions=merge_conditions(previous, [ready])
    )


def plan_tool(
    objects: Sequence[Mapping[str, Any]],
    teams: Sequence[Mapping[str, Any]],
    now: dt.datetime,
    calls_window_s: float = 3600.0,
) -> dict[str, ToolVersionStatus]:
    """Status for every ToolVersion object of one tool, keyed by object name."""
    specs: dict[str, ToolVersionSpec] = {}
    names: dict[str, str] = {}
    result: dict[str, ToolVersionStatus] = {}
    for obj in objects:
        meta = obj["metadata"]
        previous = previous_conditions(obj.get("status"))
        try:
            spec = ToolVersionSpec.model_validate(obj.get("spec") or {})
        except ValidationError as exc:
            result[meta["name"]] = _not_ready(
                meta, previous, "InvalidSpec", describe_validation_error(exc), now
            )
            continue
        if spec.version in specs:
            message = f"spec.version: {spec.version} is also declared by {names[spec.version]}"
            result[meta["name"]] = _not_ready(meta, previous, "DuplicateVersion", message, now)
            continue
        specs[spec.version] = spec
        names[spec.version] = meta["name"]
    if not specs:
        return result
    versions = ordered(specs)
    releases = [v for v in versions if "-" not in v] or versions
    latest = releases[-1]
    tool = next(iter(specs.values())).tool
    consumers = consumers_by_version(tool, specs, teams, now, calls_window_s)
    for obj in objects:
        meta = obj["metadata"]
        if meta["name"] in result:
            continue
        spec = next(s for v, s in specs.items() if names[v] == meta["name"])
        chain = check_chain(spec.version, specs)
        generation = meta.get("generation", 0)
        previous = previous_conditions(obj.get("status"))
        if chain.valid:
            ready = condition(
                "Ready",
                True,
                "ChainValid",
                f"migrations reach {spec.version} from {chain.path[0]}",
                generation=generation,
                now=now,
            )
        else:
            ready = condition(
                "Ready",
                False,
                "MigrationChainBroken",
                chain.problem or "broken chain",
                generation=generation,
                now=now,
            )
        result[meta["name"]] = ToolVersionStatus(
            observed_generation=generation,
            latest=spec.version == latest,
            latest_version=latest,
            deprecated=spec.deprecation.deprecated,
            migration_path_valid=chain.valid,
            migration_path=chain.path,
            consumers=consumers.get(spec.version, []),
            consumer_count=len(consumers.get(spec.version, [])),
            calls=sum(c.calls for c in consumers.get(spec.version, [])),
            conditions=merge_conditions(
                previous,
                [
                    ready,
                    deprecation_condition(spec, consumers.get(spec.version, []), generation, now),
                ],
            ),
        )
    return result
