"""`hive test team.yaml --properties props.yaml`: property-based tests of a team's runs.

Runs the team (in this process, against a simulated model) over scenarios drawn with hypothesis
— tasks from the file's templates, model answers (plans, review scores, votes, answers with or
without a source) and fault schedules (work calls failing with HTTP 503, and the runtime's
resilience faults aimed at an agent: model errors and timeouts, empty, malformed or cut answers,
an agent lost; the file's `faults:` picks the kinds) — and checks each property on every run; a
failing one is shrunk to its smallest scenario, its faults included. Prints pass/fail per
property with the minimal counterexample and the seed that replays it; --report writes the JSON
for CI. Exit status 1 when a property fails.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import click

from hive.cli.errors import one_line_errors
from hive.cli.teamfile import load_team
from hive.verify.properties import load_properties
from hive.verify.proptest import TestReport, check_properties


def render(report: TestReport) -> str:
    lines = []
    for prop in report.properties:
        mark = "PASS" if prop.passed else "FAIL"
        lines.append(f"[{mark}] {prop.name} ({prop.runs} runs)")
        if not prop.passed:
            lines.append(f"    {prop.message}")
            lines.append(f"    minimal counterexample: {json.dumps(prop.counterexample)}")
    lines.append(f"seed {report.seed} (replay: --seed {report.seed})")
    return "\n".join(lines)


@click.command(name="test")
@click.argument("team_file", type=click.Path(path_type=Path))
@click.option(
    "--properties",
    "properties_file",
    type=click.Path(path_type=Path),
    required=True,
    help="YAML file of task templates and the properties every run must hold.",
)
@click.option(
    "--examples",
    type=click.IntRange(1, 10_000),
    default=25,
    show_default=True,
    help="Scenarios tried per property (before shrinking).",
)
@click.option("--seed", type=int, help="Seed of the scenarios (default: a new one, printed).")
@click.option(
    "--report", "report_path", type=click.Path(path_type=Path), help="Write the JSON report here."
)
@one_line_errors
def test(
    team_file: Path,
    properties_file: Path,
    examples: int,
    seed: int | None,
    report_path: Path | None,
) -> None:
    """Check user properties over generated tasks, answers and faults; shrink what fails."""
    spec = load_team(team_file)
    file = load_properties(properties_file)
    chosen = seed if seed is not None else random.SystemRandom().randrange(2**31)
    report = check_properties(spec, file, examples=examples, seed=chosen)
    click.echo(render(report))
    if report_path is not None:
        report_path.write_text(report.to_json())
    raise SystemExit(0 if report.passed else 1)
