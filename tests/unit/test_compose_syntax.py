"""The composition language's grammar: every construct, and syntax errors naming line and column."""

from __future__ import annotations

import pytest

from hive.runtime.tooling.compose import CompositionError, parse
from hive.runtime.tooling.compose.syntax import Place, Ref, tool_name

SEED = """
TOOL AnalyzeCustomerFeedback
INPUT feedback_text: Text
OUTPUT analysis_report: object
DESCRIPTION "Analyse a customer's feedback"

COMPOSITE AnalyzeCustomerFeedback INPUT feedback_text OUTPUT analysis_report AS
    feedback_text -> SentimentAnalysis[threshold=0.5] -> sentiment
    sentiment -> ExtractKeyPoints[max_points=10] -> key_points
    feedback_text -> CountMentions[entities=["product", "service", "price"]] -> counts
    key_points -> GenerateSummary[style="executive"] -> summary
    sentiment -> RiskAssessment[] -> risk_score
    summary -> CombineWithMetrics[counts=counts, risk=risk_score] -> analysis_report
"""


def test_the_seed_example_parses_into_its_steps() -> None:
    composite = parse(SEED)
    assert composite.name == "analyze-customer-feedback"
    assert composite.declared_tool == "analyze-customer-feedback"
    assert composite.description == "Analyse a customer's feedback"
    assert [(p.name, p.schema) for p in composite.inputs] == [("feedback_text", {"type": "string"})]
    assert [(p.name, p.schema) for p in composite.outputs] == [
        ("analysis_report", {"type": "object"})
    ]
    assert [(s.tool, s.target) for s in composite.steps] == [
        ("sentiment-analysis", "sentiment"),
        ("extract-key-points", "key_points"),
        ("count-mentions", "counts"),
        ("generate-summary", "summary"),
        ("risk-assessment", "risk_score"),
        ("combine-with-metrics", "analysis_report"),
    ]
    first = composite.steps[0]
    assert first.written == "SentimentAnalysis"
    assert first.source == Ref("feedback_text", (), Place(8, 5))
    assert first.arguments == {"threshold": 0.5}
    assert first.place == Place(8, 5)
    assert composite.steps[2].arguments == {"entities": ["product", "service", "price"]}
    last = composite.steps[-1].arguments
    assert last["counts"] == Ref("counts", (), Place(13, 42))
    assert last["risk"].variable == "risk_score"


def test_literals_references_versions_and_comments() -> None:
    composite = parse(
        "# a comment line\n"
        "COMPOSITE pick INPUT a: list[integer], b: any OUTPUT c AS   # trailing\n"
        "\n"
        '  a -> sort@^1.2[order="desc", limit=-3, ratio=2.5e-1, stable=true, x=false, y=null,'
        ' nested={k: [1, b.f.g], "q r": {}}, empty=[]] -> s\n'
        '  join@">=1.0 <2"[items=s.sorted] -> c\n'
        "  tally@1.x -> t\n"
        "  web_search@~1.2.3[] -> w\n"
        "END\n"
    )
    assert [(p.name, p.schema) for p in composite.inputs] == [
        ("a", {"type": "array", "items": {"type": "integer"}}),
        ("b", {}),
    ]
    assert [p.schema for p in composite.outputs] == [None]
    sort, join, tally, search = composite.steps
    assert sort.version_range == "^1.2"
    assert sort.arguments["order"] == "desc"
    assert sort.arguments["limit"] == -3
    assert sort.arguments["ratio"] == 0.25
    assert (sort.arguments["stable"], sort.arguments["x"], sort.arguments["y"]) == (
        True,
        False,
        None,
    )
    nested = sort.arguments["nested"]
    assert nested["k"][0] == 1
    assert nested["k"][1] == Ref("b", ("f", "g"), Place(4, 101))
    assert nested["q r"] == {}
    assert sort.arguments["empty"] == []
    assert join.version_range == ">=1.0 <2"
    assert join.source is None
    assert join.arguments == {"items": Ref("s", ("sorted",), Place(5, 25))}
    assert (tally.tool, tally.version_range, tally.arguments) == ("tally", "1.x", {})
    assert (search.tool, search.version_range) == ("web-search", "~1.2.3")


def test_arguments_may_span_lines_inside_brackets() -> None:
    composite = parse(
        "COMPOSITE x INPUT a OUTPUT b AS\n"
        "  a -> report[\n"
        '      title="weekly",   # a comment\n'
        "      options={\n"
        "          depth: 2\n"
        "      }\n"
        "  ] -> b\n"
        "  b -> t[] -> c\n"
    )
    report, after = composite.steps
    assert report.arguments == {"title": "weekly", "options": {"depth": 2}}
    assert (report.target, report.target_place.line) == ("b", 7)
    assert after.place.line == 8


def test_tool_names_are_read_as_kebab_case() -> None:
    assert tool_name("SentimentAnalysis") == "sentiment-analysis"
    assert tool_name("HTTPServer") == "http-server"
    assert tool_name("get_weather") == "get-weather"
    assert tool_name("web-search") == "web-search"


def test_declarations_and_the_composite_line_agree_or_are_refused() -> None:
    merged = parse("INPUT a: string\nCOMPOSITE x INPUT a OUTPUT b: integer AS\n a -> t[] -> b\n")
    assert [(p.name, p.schema) for p in merged.inputs] == [("a", {"type": "string"})]
    assert [(p.name, p.schema) for p in merged.outputs] == [("b", {"type": "integer"})]
    refusals = {
        "TOOL y\nCOMPOSITE x AS\n a -> t[] -> c\n": "line 2, column 11: COMPOSITE x is not "
        "the TOOL y of line 1",
        "INPUT a\nCOMPOSITE x INPUT b AS\n a -> t[] -> c\n": "line 2, column 11: COMPOSITE "
        "INPUT b differs from the INPUT line 1 (a)",
        "INPUT a: string\nCOMPOSITE x INPUT a: integer AS\n a -> t[] -> c\n": "line 2, column "
        "19: a has another type on line 1",
        "TOOL x\nTOOL x\nCOMPOSITE x AS\n a -> t[] -> c\n": "line 2, column 6: TOOL is "
        "declared twice (first on line 1)",
        "COMPOSITE x INPUT a, a AS\n a -> t[] -> c\n": "line 1, column 22: a is declared twice",
        "COMPOSITE x INPUT a: foo AS\n a -> t[] -> c\n": "line 1, column 22: unknown type foo",
        "COMPOSITE x INPUT a: string[int] AS\n a -> t[] -> c\n": "line 1, column 22: type "
        "string[...]: only list[T] takes a type",
        "COMPOSITE x AS\n a -> t[k=1, k=2] -> c\n": "line 2, column 14: argument k is given twice",
    }
    for source, message in refusals.items():
        with pytest.raises(CompositionError) as refused:
            parse(source, "tools/x.hive")
        assert str(refused.value).startswith(f"tools/x.hive: {message}"), source


@pytest.mark.parametrize(
    ("source", "line", "column", "problem"),
    [
        ("COMPOSITE x AS\n  a -> t[ -> c\n", 2, 11, "unexpected '->'; expected ']', a name"),
        ("COMPOSITE x AS\n  a -> t[] -> c d\n", 2, 17, "unexpected 'd'; expected end of line"),
        ("COMPOSITE x AS\n  a -> t[] -> c\n  $\n", 3, 3, "unexpected character '$'"),
        ("COMPOSITE x AS\n", 1, 15, "unexpected end of source; expected a name"),
        ("COMPOSITE x AS\n  a -> t[] -> c\nEND\nmore\n", 4, 1, "unexpected 'more'"),
        ("COMPOSITE x\n  a -> t[] -> c\n", 1, 12, "unexpected end of line; expected"),
        ("COMPOSITE x AS\n  a -> t[x=] -> c\n", 2, 12, "unexpected ']'"),
        ('COMPOSITE x AS\n  a -> t[x="open] -> c\n', 2, 12, "unexpected character '\"'"),
        (
            "COMPOSITE x AS\n  a -> t -> c\n  t -> c\n",
            3,
            9,
            "unexpected end of line; expected '->', '[', @version-range",
        ),
        ("a -> t[] -> c\n", 1, 1, "unexpected 'a'; expected"),
    ],
)
def test_syntax_errors_name_line_and_column(
    source: str, line: int, column: int, problem: str
) -> None:
    with pytest.raises(CompositionError) as refused:
        parse(source, "f.hive")
    error = refused.value
    assert (error.line, error.column) == (line, column), str(error)
    assert str(error).startswith(f"f.hive: line {line}, column {column}: {problem}"), str(error)
    assert "\n" not in str(error)
