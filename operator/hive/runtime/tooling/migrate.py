"""Migrations at call time: a call written for an older version of a tool, made to a newer one.

Each ToolVersion after the first declares, in ``spec.migration``, how the arguments of a call
written for the version before it become arguments for it (``steps``), and optionally how its
result becomes the result the older caller expects (``reverse``). A caller written for version
B whose range resolves to version T > B has its arguments passed through the steps of every
version after B up to T, oldest first, and the result through the reverse steps of the same
versions, newest first. Steps: rename, default, drop, transform (type and text conversions)
and map (old value -> new value).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hive.api.semver import less, ordered
from hive.api.toolversion import MigrationOp, MigrationStep, ToolVersionSpec, Transform
from hive.errors import InvalidInput

MISSING = object()


@dataclass(frozen=True)
class MigrationPath:
    """The steps from the version a caller was written for to the version it calls."""

    tool: str
    source: str
    target: str
    forward: tuple[tuple[str, tuple[MigrationStep, ...]], ...]  # (version, its steps), oldest first
    backward: tuple[tuple[str, tuple[MigrationStep, ...]], ...]  # (version, reverse), newest first

    @property
    def empty(self) -> bool:
        return not any(steps for _, steps in self.forward) and not any(
            steps for _, steps in self.backward
        )

    def arguments(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of a call written for `source`, as `target` takes them."""
        if not self.forward:
            return dict(arguments)
        out: dict[str, Any] = json_copy(dict(arguments))
        for version, steps in self.forward:
            for index, step in enumerate(steps):
                _apply(out, step, f"{self.tool} {version} migration step {index + 1}")
        return out

    def result(self, result: Any) -> Any:
        """`target`'s result as a caller written for `source` expects it."""
        if not self.backward or not isinstance(result, dict):
            return result
        out = json_copy(result)
        for version, steps in self.backward:
            for index, step in enumerate(steps):
                _apply(out, step, f"{self.tool} {version} reverse step {index + 1}")
        return out


def migration_path(
    tool: str, source: str, target: str, specs: Mapping[str, ToolVersionSpec]
) -> MigrationPath:
    """The path from `source` to `target` (source <= target) over the versions present now.

    Every version after `source` up to `target` must declare a migration from the version just
    before it; otherwise calls written for `source` cannot be carried forward (InvalidInput
    naming the tool and the version missing its migration)."""
    if source == target or not less(source, target):
        return MigrationPath(tool, source, target, (), ())
    versions = [v for v in ordered(specs) if less(source, v) and not less(target, v)]
    forward: list[tuple[str, tuple[MigrationStep, ...]]] = []
    previous = source
    for version in versions:
        migration = specs[version].migration
        if migration is None or migration.from_version != previous:
            declared = migration.from_version if migration else "none"
            raise InvalidInput(
                f"tool {tool!r}",
                f"no migration from {previous} to {version} (spec.migration.from: {declared}), "
                f"so calls written for {source} cannot reach {target}",
            )
        forward.append((version, tuple(migration.steps)))
        previous = version
    backward = tuple(
        (version, tuple(specs[version].migration.reverse))  # type: ignore[union-attr]
        for version in reversed(versions)
    )
    return MigrationPath(tool, source, target, tuple(forward), backward)


def json_copy(value: Any) -> Any:
    """A copy of a JSON value whose dicts and lists are new (what a step may change); other
    values are immutable and shared. Several times cheaper than copy.deepcopy on a call's
    arguments, which is on every migrated call's path."""
    if isinstance(value, dict):
        return {k: json_copy(v) if isinstance(v, dict | list) else v for k, v in value.items()}
    if isinstance(value, list):
        return [json_copy(v) if isinstance(v, dict | list) else v for v in value]
    return value


def _parent(data: dict[str, Any], path: Sequence[str], create: bool) -> dict[str, Any] | None:
    current = data
    for part in path[:-1]:
        child = current.get(part)
        if not isinstance(child, dict):
            if not create:
                return None
            child = current[part] = {}
        current = child
    return current


def _get(data: dict[str, Any], dotted: str) -> Any:
    path = dotted.split(".")
    parent = _parent(data, path, create=False)
    return MISSING if parent is None else parent.get(path[-1], MISSING)


def _set(data: dict[str, Any], dotted: str, value: Any) -> None:
    path = dotted.split(".")
    parent = _parent(data, path, create=True)
    assert parent is not None
    parent[path[-1]] = value


def _pop(data: dict[str, Any], dotted: str) -> Any:
    path = dotted.split(".")
    parent = _parent(data, path, create=False)
    return MISSING if parent is None else parent.pop(path[-1], MISSING)


def _apply(data: dict[str, Any], step: MigrationStep, where: str) -> None:
    if step.op == MigrationOp.RENAME:
        value = _pop(data, step.field)
        if value is not MISSING:
            _set(data, step.to or step.field, value)
    elif step.op == MigrationOp.DEFAULT:
        if _get(data, step.field) is MISSING:
            _set(data, step.field, json_copy(step.value))
    elif step.op == MigrationOp.DROP:
        _pop(data, step.field)
    elif step.op == MigrationOp.MAP:
        value = _get(data, step.field)
        if value is not MISSING and step.values is not None:
            key = value if isinstance(value, str) else _text(value)
            if key in step.values:
                _set(data, step.field, json_copy(step.values[key]))
    elif step.op == MigrationOp.TRANSFORM:
        value = _get(data, step.field)
        if value is not MISSING and step.transform is not None:
            try:
                _set(data, step.field, convert(value, step.transform))
            except (TypeError, ValueError) as exc:
                raise InvalidInput(
                    f"{step.field}", f"{where} ({step.transform}) cannot convert {value!r}: {exc}"
                ) from exc


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def convert(value: Any, transform: Transform) -> Any:
    """One value through one conversion (TypeError/ValueError when it does not fit)."""
    match transform:
        case Transform.TO_STRING:
            return _text(value)
        case Transform.TO_INTEGER:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("not a whole number")
            return int(value)
        case Transform.TO_NUMBER:
            return float(value)
        case Transform.TO_LIST:
            return value if isinstance(value, list) else [value]
        case Transform.LOWERCASE:
            return str(value).lower()
        case Transform.UPPERCASE:
            return str(value).upper()
        case Transform.SPLIT_COMMA:
            if isinstance(value, list):
                return value
            return [part.strip() for part in str(value).split(",") if part.strip()]
        case Transform.JOIN_COMMA:
            return ",".join(_text(v) for v in value) if isinstance(value, list) else _text(value)
    raise ValueError(f"unknown transform {transform}")  # pragma: no cover
