"""The tool composition language: composite tools written as a graph of calls to other tools.

A source declares one composite tool and the steps that compute its outputs::

    TOOL analyze-feedback
    DESCRIPTION "Sentiment, key points and mentions of a customer's feedback"
    INPUT feedback: string
    OUTPUT report: object

    COMPOSITE analyze-feedback INPUT feedback OUTPUT report AS
        feedback -> sentiment@^1.0[threshold=0.5] -> mood
        feedback -> count-mentions[entities=["product", "price"]] -> counts
        combine[mood=mood.label, counts=counts] -> report

`syntax` parses a source (a real LALR grammar, errors name the line and column) into a
`Composite`; `check` holds it against the tools that exist (versions, bound variables, JSON
Schema types, cycles) and makes a `Plan`; `run` executes a plan, independent steps at once,
each step through the call path it is given (in the product: the catalog's, so versions,
migrations, breakers and faults apply); `kind` is the `composite` implementation kind.
"""

from hive.runtime.tooling.compose.check import Plan, PlannedStep, ToolsView, check
from hive.runtime.tooling.compose.kind import CompositeKind, plan_of, tools_of
from hive.runtime.tooling.compose.run import StepCall, StepFailed, run
from hive.runtime.tooling.compose.syntax import Composite, CompositionError, Step, parse

__all__ = [
    "Composite",
    "CompositeKind",
    "CompositionError",
    "Plan",
    "PlannedStep",
    "Step",
    "StepCall",
    "StepFailed",
    "ToolsView",
    "check",
    "parse",
    "plan_of",
    "run",
    "tools_of",
]
