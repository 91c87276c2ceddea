"""The checker of composites: each refusal names the line; admission refuses a bad composite."""

from __future__ import annotations

from typing import Any

import pytest

from hive.api.toolversion import Deprecation, ToolVersionSpec
from hive.reconcile.admission import check_tool_version
from hive.runtime.tooling.compose import CompositionError, check, parse
from hive.runtime.tooling.compose.check import mismatch
from hive.runtime.tooling.compose.syntax import Ref


def version(
    tool: str, number: str, inputs: dict[str, Any], output: dict[str, Any] | None = None
) -> ToolVersionSpec:
    return ToolVersionSpec.model_validate(
        {
            "tool": tool,
            "version": number,
            "inputSchema": inputs,
            "outputSchema": output or {"type": "object"},
            "implementation": {"kind": "http", "ref": f"http://127.0.0.1:1/{tool}"},
        }
    )


def obj(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}


STRING, NUMBER, INTEGER = {"type": "string"}, {"type": "number"}, {"type": "integer"}
TOOLS = {
    "sentiment": [
        version(
            "sentiment",
            "1.0.0",
            obj(["text"], text=STRING, threshold=NUMBER),
            obj(["label"], label=STRING, score=NUMBER),
        ),
        version(
            "sentiment",
            "1.4.0",
            obj(["text"], text=STRING, threshold=NUMBER),
            obj(["label"], label=STRING, score=NUMBER),
        ),
        version("sentiment", "2.0.0", obj(["document"], document=STRING)),
    ],
    "count-mentions": [
        version(
            "count-mentions",
            "1.0.0",
            obj(["text", "entities"], text=STRING, entities={"type": "array", "items": STRING}),
            obj(counts={"type": "object"}, total=INTEGER),
        )
    ],
    "combine": [version("combine", "1.0.0", obj(["mood"], mood=STRING, total=NUMBER))],
}

GOOD = """\
TOOL analyze
INPUT feedback: string
OUTPUT report: object
COMPOSITE analyze AS
    combine[mood=mood.label, total=counts.total] -> report
    feedback -> sentiment@^1.0[threshold=0.5] -> mood
    feedback -> CountMentions[entities=["product", "price"]] -> counts
"""


def test_a_good_composite_becomes_a_plan_in_dependency_order() -> None:
    plan = check(parse(GOOD), TOOLS)
    assert [p.step.tool for p in plan.steps][-1] == "combine", "it needs the other two"
    by_tool = {p.step.tool: p for p in plan.steps}
    assert by_tool["sentiment"].written_for == "1.0.0", "the oldest version the range allows"
    assert by_tool["sentiment"].newest == "1.4.0", "what calls reach now"
    assert by_tool["sentiment"].version_range == "^1.0"
    assert by_tool["count-mentions"].version_range == "*"
    piped = by_tool["sentiment"].arguments["text"]
    assert isinstance(piped, Ref)
    assert piped.variable == "feedback", "the one required parameter"
    assert by_tool["combine"].needs == {"mood", "counts"}
    assert plan.inputs == ["feedback"]
    assert plan.outputs == ["report"]
    assert plan.input_schema == obj(["feedback"], feedback=STRING)


def refused(source: str, tools: Any = TOOLS, **schemas: Any) -> str:
    with pytest.raises(CompositionError) as error:
        check(parse(source, "f.hive"), tools, where="f.hive", **schemas)
    message = str(error.value)
    assert message.startswith(f"f.hive: line {error.value.line}, column "), message
    return message


HEAD = "COMPOSITE x INPUT a, n: integer OUTPUT b AS\n"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  a -> nope[] -> b\n", "line 2, column 3: unknown tool nope (tools: combine, "),
        (
            "  a -> sentiment@^3[] -> b\n",
            "line 2, column 3: no version of sentiment matches ^3 (versions: 1.0.0, 1.4.0, 2.0.0)",
        ),
        ("  a -> sentiment@banana[] -> b\n", "line 2, column 3: sentiment@banana: not a semver"),
        ("  zz -> sentiment[] -> b\n", "line 2, column 3: zz is not bound (no input or step"),
        (
            "  a -> sentiment@1[] -> m\n  combine[mood=m.nope] -> b\n",
            "line 3, column 16: m has no field nope (fields: label, score)",
        ),
        (
            "  a -> sentiment@1[] -> m\n  combine[mood=m.label.x] -> b\n",
            "line 3, column 16: m.label is string, it has no fields",
        ),
        (
            "  n -> sentiment@1[] -> b\n",
            "line 2, column 3: sentiment[text=n]: n is integer, where string is wanted by "
            "sentiment 1.0.0",
        ),
        (
            "  a -> sentiment@1[] -> m\n  combine[mood=m.score] -> b\n",
            "line 3, column 3: combine[mood=m.score]: m.score is number, where string is wanted",
        ),
        (
            '  a -> sentiment@1[threshold="high"] -> b\n',
            "line 2, column 3: sentiment[threshold=...]: 'high' is not of type 'number'",
        ),
        ("  combine[total=1] -> b\n", "line 2, column 3: combine needs parameter mood"),
        (
            "  combine[mood=a, colour=1] -> b\n",
            "line 2, column 3: combine has no parameter colour (parameters: mood, total)",
        ),
        (
            "  a -> count-mentions[] -> b\n",
            "line 2, column 3: which parameter of count-mentions takes a is not clear "
            "(candidates: text, entities); name it: count-mentions[parameter=a]",
        ),
        (
            "  a -> sentiment@1[] -> b\n  a -> sentiment@1[] -> b\n",
            "line 3, column 25: b is already bound on line 2; a variable is bound once",
        ),
        ("  a -> sentiment@1[] -> n\n", "line 2, column 25: n is already an input"),
        ("  a -> sentiment@1[] -> c\n", "line 1, column 40: OUTPUT b is not bound by any step"),
        (
            "  a -> sentiment@1[] -> m\n"
            "  combine[mood=b.label] -> c\n"
            "  sentiment@1[text=c.mood] -> b\n",
            "line 3, column 3: cycle: c (line 3) needs b (line 4) needs c (line 3)",
        ),
        ("  a -> x[] -> b\n", "line 2, column 3: x calls itself (a cycle through the tool)"),
    ],
)
def test_each_refusal_names_the_line(body: str, message: str) -> None:
    tools = {**TOOLS, "x": TOOLS["combine"]}
    assert message in refused(HEAD + body, tools)


def test_a_self_loop_is_a_cycle() -> None:
    message = refused("COMPOSITE x INPUT a OUTPUT b AS\n  sentiment@1[text=b.label] -> b\n")
    assert "line 2, column 3: cycle: b (line 2) needs b (line 2)" in message


def test_output_types_and_a_toolversion_s_schemas() -> None:
    message = refused(
        "COMPOSITE x INPUT a OUTPUT b: integer AS\n  a -> sentiment@1[] -> b\n",
    )
    assert "line 1, column 28: OUTPUT b is object, where integer is wanted" in message
    inputs = obj(["feedback"], feedback=STRING)
    outputs = obj(["report"], report={"type": "object"})
    plan = check(
        parse("COMPOSITE analyze AS\n  combine[mood=feedback] -> report\n"),
        TOOLS,
        input_schema=inputs,
        output_schema=outputs,
    )
    assert plan.inputs == ["feedback"], "ports come from the ToolVersion's schemas"
    assert plan.input_schema == inputs
    message = refused(
        "COMPOSITE analyze INPUT other OUTPUT report AS\n  combine[mood=other] -> report\n",
        input_schema=inputs,
        output_schema=outputs,
    )
    assert "line 1, column 25: INPUT other is not a property of the tool's inputSchema" in message
    message = refused(
        "COMPOSITE analyze INPUT feedback: integer OUTPUT report AS\n"
        "  combine[mood=feedback] -> report\n",
        input_schema=inputs,
        output_schema=outputs,
    )
    assert "INPUT feedback is integer, where string is wanted by the ToolVersion" in message


def test_structural_type_compatibility() -> None:
    assert mismatch(INTEGER, NUMBER, "v") is None, "an integer is a number"
    assert mismatch(NUMBER, INTEGER, "v") == "v is number, where integer is wanted"
    assert mismatch({}, INTEGER, "v") is None, "unknown fits"
    assert mismatch({"type": ["string", "null"]}, STRING, "v") == (
        "v is null|string, where string is wanted"
    )
    assert mismatch(obj(a=STRING), obj(["b"], b=STRING), "v") == (
        "v has no property b, which is required"
    )
    assert mismatch(obj(a=INTEGER), obj(a=STRING), "v") == "v.a is integer, where string is wanted"
    assert mismatch({"type": "object"}, obj(["b"], b=STRING), "v") is None, "opaque object"
    listed = {"type": "array", "items": INTEGER}
    assert mismatch(listed, {"type": "array", "items": STRING}, "v") == (
        "v[] is integer, where string is wanted"
    )


def resource(name: str, spec: ToolVersionSpec | dict[str, Any]) -> dict[str, Any]:
    body = spec if isinstance(spec, dict) else spec.model_dump(by_alias=True, exclude_none=True)
    return {"metadata": {"name": name}, "spec": body}


def composite_spec(source: str) -> dict[str, Any]:
    return {
        "tool": "analyze",
        "version": "1.0.0",
        "inputSchema": obj(["feedback"], feedback=STRING),
        "outputSchema": obj(["report"], report={"type": "object"}),
        "implementation": {"kind": "composite", "composite": {"source": source}},
    }


def test_admission_checks_a_composite_against_the_namespace_s_tool_versions() -> None:
    namespace = [
        resource(f"{spec.tool}-{spec.version}", spec)
        for versions in TOOLS.values()
        for spec in versions
    ]
    namespace.append({"metadata": {"name": "broken"}, "spec": {"tool": "Not A Tool"}})
    good = composite_spec(
        "COMPOSITE analyze AS\n"
        "  feedback -> sentiment@^1.0 -> mood\n"
        "  combine[mood=mood.label] -> report\n"
    )
    assert check_tool_version(good, [], "analyze-1.0.0", namespace) is None
    unknown = composite_spec("COMPOSITE analyze AS\n  feedback -> summarize[] -> report\n")
    assert check_tool_version(unknown, [], "analyze-1.0.0", namespace) == (
        "spec.implementation.composite.source: line 2, column 3: unknown tool summarize "
        "(tools: combine, count-mentions, sentiment)"
    )
    syntax = composite_spec("COMPOSITE analyze AS\n  feedback -> -> report\n")
    problem = check_tool_version(syntax, [], "analyze-1.0.0", namespace)
    assert problem is not None
    assert problem.startswith("spec.implementation.composite.source: line 2, column 15: ")
    missing = {**composite_spec("x"), "implementation": {"kind": "composite"}}
    problem = check_tool_version(missing, [], "analyze-1.0.0", namespace)
    assert problem is not None
    assert "composite: required for kind composite" in problem


def test_calls_reach_the_newest_version_that_is_not_deprecated() -> None:
    deprecated = version("combine", "1.5.0", obj(["mood"], mood=STRING)).model_copy(
        update={"deprecation": Deprecation(deprecated=True, message="use 1.0")}
    )
    tools = {**TOOLS, "combine": [*TOOLS["combine"], deprecated]}
    plan = check(parse("COMPOSITE x INPUT a OUTPUT b AS\n  combine[mood=a] -> b\n"), tools)
    assert (plan.steps[0].written_for, plan.steps[0].newest) == ("1.0.0", "1.0.0")
    only = check(parse("COMPOSITE x INPUT a OUTPUT b AS\n  combine@^1.5[mood=a] -> b\n"), tools)
    assert only.steps[0].newest == "1.5.0", "deprecated, but the only one the range allows"


def test_a_list_of_references_where_a_string_is_wanted_is_shown_as_written() -> None:
    message = refused('COMPOSITE x INPUT a OUTPUT b AS\n  combine[mood=[a, "x", {k: a}]] -> b\n')
    assert message.endswith(
        'line 2, column 3: combine[mood=[a, "x", {"k": a}]]: mood is array, where string is '
        "wanted by combine 1.0.0"
    ), message
