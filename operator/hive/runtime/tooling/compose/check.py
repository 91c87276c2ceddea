"""The checker: a parsed composite held against the tools that exist -> a runnable `Plan`.

It refuses, naming the line, a composite that

- calls a tool no ToolVersion declares, or at a range no version of it matches;
- reads a variable that no input and no step binds, or binds one twice;
- passes a value whose JSON Schema does not fit the parameter's (types, including integer as
  number; the required properties of objects; array items), a literal the parameter's schema
  does not accept, a parameter the tool does not have, or leaves out a required one;
- has a cycle (a step that needs, through others, its own result);
- leaves an OUTPUT unbound, or binds it to a value of another type.

The piped value (``source -> tool``) goes to the parameter named like the source variable (or
its last field); else to the one required parameter not given in brackets; else to the one
parameter not given; else the line is refused and asks for ``tool[param=source]``.

`ToolsView` is what the checker sees of the tools: name -> the specs of its versions, as the
catalog has them now or as a folder of ToolVersion files declares them. As for an agent's tools,
a step is written for the oldest version its range allows: its arguments and its result are
checked against that version's schemas, and the catalog migrates each call forward to the newest
matching version present at call time (and the result back). Calls go by range, so a newer
matching version that arrives later serves them.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jsonschema

from hive.api.semver import is_range, ordered, satisfies
from hive.api.toolversion import ToolVersionSpec
from hive.runtime.tooling.compose.syntax import Composite, CompositionError, Place, Port, Ref, Step

ToolsView = Mapping[str, Sequence[ToolVersionSpec]]

ANY_VERSION = "*"


@dataclass(frozen=True)
class PlannedStep:
    """A step ready to run: what it calls, with which argument templates, after which steps."""

    index: int
    step: Step
    version_range: str  # what the call asks the catalog for
    written_for: str  # the oldest version the range allows: the schemas checked
    newest: str  # the newest version the range allows now: what a call reaches
    arguments: dict[str, Any]  # parameter -> literal, `Ref`, or lists/dicts of those
    needs: frozenset[str]  # the variables it reads


@dataclass(frozen=True)
class Plan:
    """A checked composite: its steps in an order that respects their dependencies."""

    composite: Composite
    steps: tuple[PlannedStep, ...]
    input_schema: dict[str, Any]
    output_schema: dict[str, Any]

    @property
    def inputs(self) -> list[str]:
        return list(self.input_schema.get("properties", {}))

    @property
    def outputs(self) -> list[str]:
        return list(self.output_schema.get("properties", {}))


def refs_in(value: Any) -> list[Ref]:
    """The variable references in an argument value."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, list):
        return [r for item in value for r in refs_in(item)]
    if isinstance(value, dict):
        return [r for item in value.values() for r in refs_in(item)]
    return []


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    """The JSON types a schema allows, or None when it does not say (anything)."""
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return {str(k) for k in kind}
    if "properties" in schema or "required" in schema:
        return {"object"}
    if "items" in schema:
        return {"array"}
    return None


def mismatch(actual: Mapping[str, Any], expected: Mapping[str, Any], path: str) -> str | None:
    """Why a value described by `actual` may not fit `expected`, or None when it fits as far as
    their structure tells (a schema that says nothing fits everything)."""
    have, want = _types(actual), _types(expected)
    if have is None or want is None:
        return None
    alien = {t for t in have if t not in want and not (t == "integer" and "number" in want)}
    if alien:
        return f"{path} is {'|'.join(sorted(have))}, where {'|'.join(sorted(want))} is wanted"
    if "object" in have and "object" in want:
        given = actual.get("properties")
        if isinstance(given, Mapping):
            for name in expected.get("required", []):
                if name not in given:
                    return f"{path} has no property {name}, which is required"
            for name, schema in (expected.get("properties") or {}).items():
                if name in given and isinstance(schema, Mapping):
                    problem = mismatch(given[name], schema, f"{path}.{name}")
                    if problem:
                        return problem
    if "array" in have and "array" in want:
        items, wanted = actual.get("items"), expected.get("items")
        if isinstance(items, Mapping) and isinstance(wanted, Mapping):
            return mismatch(items, wanted, f"{path}[]")
    return None


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def _literal_problem(value: Any, schema: Mapping[str, Any]) -> str | None:
    if not schema:
        return None
    validator = _validator(json.dumps(schema, sort_keys=True))
    error = jsonschema.exceptions.best_match(validator.iter_errors(value))
    return error.message if error is not None else None


def written(value: Any) -> str:
    """An argument value as the source spells it."""
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(written(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {written(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


def _container_schema(value: Any) -> dict[str, Any]:
    """What is known of an argument value containing references: its container type."""
    if isinstance(value, list):
        return {"type": "array"}
    if isinstance(value, dict):
        return {"type": "object"}
    return {}


class _Checker:
    def __init__(
        self, composite: Composite, tools: ToolsView, where: str, own_tool: str | None
    ) -> None:
        self.composite = composite
        self.tools = tools
        self.where = where
        self.own_tool = own_tool or composite.name
        self.variables: dict[str, dict[str, Any]] = {}  # name -> JSON Schema of its value
        self.bound_by: dict[str, Step | Port] = {}
        self._resolved: dict[tuple[str, str], tuple[ToolVersionSpec, str] | str] = {}

    def fail(self, place: Place, problem: str) -> CompositionError:
        return CompositionError(place, problem, self.where)

    # tools
    def resolve(self, step: Step) -> tuple[ToolVersionSpec, str]:
        """The version `step` is written for (its spec) and the newest its range reaches."""
        wanted = step.version_range or ANY_VERSION
        key = (step.tool, wanted)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolve(step.tool, wanted)
            self._resolved[key] = found
        if isinstance(found, str):
            raise self.fail(step.place, found)
        return found

    def _resolve(self, tool: str, wanted: str) -> tuple[ToolVersionSpec, str] | str:
        if tool == self.own_tool:
            return f"{tool} calls itself (a cycle through the tool)"
        versions = {spec.version: spec for spec in self.tools.get(tool, ())}
        if not versions:
            known = sorted(self.tools)
            listed = ", ".join(known[:20]) + (", ..." if len(known) > 20 else "")
            return f"unknown tool {tool} (tools: {listed or 'none'})"
        if not is_range(wanted):
            return f"{tool}@{wanted}: not a semver range"
        matching = [v for v in versions if satisfies(v, wanted)]
        if not matching:
            return (
                f"no version of {tool} matches {wanted} (versions: {', '.join(ordered(versions))})"
            )
        # as the catalog resolves: deprecated versions only when nothing else matches
        usable = [v for v in matching if not versions[v].deprecation.deprecated] or matching
        return versions[ordered(matching)[0]], ordered(usable)[-1]

    # variables
    def bind(self, name: str, schema: dict[str, Any], by: Step | Port, place: Place) -> None:
        earlier = self.bound_by.get(name)
        if earlier is not None:
            what = (
                "an input" if isinstance(earlier, Port) else f"bound on line {earlier.place.line}"
            )
            raise self.fail(place, f"{name} is already {what}; a variable is bound once")
        self.variables[name] = schema
        self.bound_by[name] = by

    def schema_of(self, ref: Ref) -> dict[str, Any]:
        if ref.variable not in self.variables:
            raise self.fail(ref.place, f"{ref.variable} is not bound (no input or step binds it)")
        schema = self.variables[ref.variable]
        path = ref.variable
        for name in ref.fields:
            types = _types(schema)
            if types is not None and "object" not in types:
                raise self.fail(ref.place, f"{path} is {'|'.join(sorted(types))}, it has no fields")
            properties = schema.get("properties")
            if isinstance(properties, Mapping) and properties and name not in properties:
                listed = ", ".join(properties) or "none"
                raise self.fail(ref.place, f"{path} has no field {name} (fields: {listed})")
            found = properties.get(name) if isinstance(properties, Mapping) else None
            schema = found if isinstance(found, dict) else {}
            path = f"{path}.{name}"
        return schema

    # steps
    def plan_step(self, index: int, step: Step, spec: ToolVersionSpec, newest: str) -> PlannedStep:
        schema = spec.input_schema
        properties: Mapping[str, Any] = schema.get("properties") or {}
        arguments = dict(step.arguments)
        source = step.source
        if source is not None and not any(
            r.variable == source.variable and r.fields == source.fields
            for value in arguments.values()
            for r in refs_in(value)
        ):
            arguments[self.parameter_for(step, spec, properties)] = step.source
        extra = schema.get("additionalProperties")
        if properties and extra is not True and not isinstance(extra, Mapping):
            for name in arguments:
                if name not in properties:
                    raise self.fail(
                        step.place,
                        f"{step.tool} has no parameter {name} "
                        f"(parameters: {', '.join(properties)})",
                    )
        for name in schema.get("required", []):
            if name not in arguments:
                raise self.fail(step.place, f"{step.tool} needs parameter {name}")
        needs: set[str] = set()
        for name, value in arguments.items():
            expected = properties.get(name) or {}
            refs = refs_in(value)
            needs.update(r.variable for r in refs)
            if not refs:
                problem = _literal_problem(value, expected)
                if problem:
                    raise self.fail(step.place, f"{step.tool}[{name}=...]: {problem}")
                continue
            for ref in refs:
                known = self.schema_of(ref)  # bound, and its fields exist
            actual = known if isinstance(value, Ref) else _container_schema(value)
            problem = mismatch(actual, expected, str(value) if isinstance(value, Ref) else name)
            if problem:
                raise self.fail(
                    step.place,
                    f"{step.tool}[{name}={written(value)}]: {problem} by {step.tool} "
                    f"{spec.version}",
                )
        return PlannedStep(
            index=index,
            step=step,
            version_range=step.version_range or ANY_VERSION,
            written_for=spec.version,
            newest=newest,
            arguments=arguments,
            needs=frozenset(needs),
        )

    def parameter_for(
        self, step: Step, spec: ToolVersionSpec, properties: Mapping[str, Any]
    ) -> str:
        assert step.source is not None
        given = set(step.arguments)
        named = step.source.fields[-1] if step.source.fields else step.source.variable
        if named in properties and named not in given:
            return named
        required = [p for p in spec.input_schema.get("required", []) if p not in given]
        if len(required) == 1:
            return str(required[0])
        free = [p for p in properties if p not in given]
        if len(free) == 1:
            return str(free[0])
        candidates = ", ".join(required or free) or "none"
        raise self.fail(
            step.place,
            f"which parameter of {step.tool} takes {step.source} is not clear "
            f"(candidates: {candidates}); name it: {step.written}[parameter={step.source}]",
        )

    def order(self, planned: list[PlannedStep]) -> tuple[PlannedStep, ...]:
        """The steps, each after those it needs (Kahn's algorithm); a cycle is refused."""
        producer = {p.step.target: p.index for p in planned}
        needs = [{producer[v] for v in p.needs if v in producer} for p in planned]
        dependents: list[list[int]] = [[] for _ in planned]
        waiting = [len(n) for n in needs]
        for index, needed in enumerate(needs):
            for other in needed:
                dependents[other].append(index)
        ready = deque(index for index, count in enumerate(waiting) if count == 0)
        order: list[int] = []
        while ready:
            index = ready.popleft()
            order.append(index)
            for dependent in dependents[index]:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    ready.append(dependent)
        if len(order) < len(planned):
            raise self.cycle(planned, needs, waiting)
        return tuple(planned[i] for i in order)

    def cycle(
        self, planned: list[PlannedStep], needs: list[set[int]], waiting: list[int]
    ) -> CompositionError:
        """The refusal of a cycle among the steps still `waiting`, naming its lines."""
        start = min(
            (i for i, count in enumerate(waiting) if count),
            key=lambda i: (planned[i].step.place.line, planned[i].step.place.column),
        )
        path, seen = [start], {start: 0}
        while True:  # every step left waits on another step left: walk until one repeats
            after = min(n for n in needs[path[-1]] if waiting[n])
            if after in seen:
                loop = [*path[seen[after] :], after]
                break
            seen[after] = len(path)
            path.append(after)
        steps = [planned[i].step for i in loop]
        first = min(steps, key=lambda s: (s.place.line, s.place.column))
        described = " needs ".join(f"{s.target} (line {s.place.line})" for s in steps)
        return self.fail(first.place, f"cycle: {described}")

    def ports(
        self, keyword: str, ports: tuple[Port, ...], schema: Mapping[str, Any] | None
    ) -> list[tuple[Port, dict[str, Any]]]:
        """Each port with its JSON Schema: its own type, or the ToolVersion schema's property."""
        declared: Mapping[str, Any] = (schema or {}).get("properties") or {}
        if not ports:
            ports = tuple(Port(name, None, self.composite.place) for name in declared)
        typed = []
        for port in ports:
            if schema is not None and declared and port.name not in declared:
                raise self.fail(
                    port.place,
                    f"{keyword} {port.name} is not a property of the tool's "
                    f"{'inputSchema' if keyword == 'INPUT' else 'outputSchema'} "
                    f"({', '.join(declared)})",
                )
            given = declared.get(port.name)
            if port.schema and isinstance(given, Mapping):
                problem = mismatch(port.schema, given, port.name)
                if problem:
                    raise self.fail(port.place, f"{keyword} {problem} by the ToolVersion")
            typed.append((port, dict(port.schema or given or {})))
        return typed

    def check(
        self, input_schema: Mapping[str, Any] | None, output_schema: Mapping[str, Any] | None
    ) -> Plan:
        composite = self.composite
        inputs = self.ports("INPUT", composite.inputs, input_schema)
        outputs = self.ports("OUTPUT", composite.outputs, output_schema)
        if not outputs:
            raise self.fail(composite.place, f"{composite.name} declares no OUTPUT")
        for port, schema in inputs:
            self.bind(port.name, schema, port, port.place)
        resolved = []
        for step in composite.steps:
            spec, newest = self.resolve(step)
            self.bind(step.target, dict(spec.output_schema), step, step.target_place)
            resolved.append((spec, newest))
        planned = [
            self.plan_step(index, step, spec, newest)
            for index, (step, (spec, newest)) in enumerate(
                zip(composite.steps, resolved, strict=True)
            )
        ]
        ordered_steps = self.order(planned)
        for port, schema in outputs:
            if port.name not in self.variables:
                raise self.fail(port.place, f"OUTPUT {port.name} is not bound by any step")
            problem = mismatch(self.variables[port.name], schema, port.name)
            if problem:
                raise self.fail(port.place, f"OUTPUT {problem}")
        return Plan(
            composite=composite,
            steps=ordered_steps,
            input_schema=_object_schema(inputs, input_schema),
            output_schema=_object_schema(outputs, output_schema),
        )


def _object_schema(
    ports: list[tuple[Port, dict[str, Any]]], given: Mapping[str, Any] | None
) -> dict[str, Any]:
    if given is not None and given.get("properties"):
        return dict(given)
    return {
        "type": "object",
        "properties": {port.name: schema for port, schema in ports},
        "required": [port.name for port, _ in ports],
    }


def check(
    composite: Composite,
    tools: ToolsView,
    *,
    input_schema: Mapping[str, Any] | None = None,
    output_schema: Mapping[str, Any] | None = None,
    where: str = "composite",
    own_tool: str | None = None,
) -> Plan:
    """The plan of `composite` against `tools`; `CompositionError` naming the line otherwise.

    `input_schema`/`output_schema`: a ToolVersion's, when the composite implements one (its
    INPUT and OUTPUT must then be among their properties; untyped ports take their types)."""
    return _Checker(composite, tools, where, own_tool).check(input_schema, output_schema)
