"""`hive verify team.yaml`: the team's protocol as a TLA+ spec, model-checked with TLC.

Prints each property checked, the outcome and, when a property fails, TLC's counterexample as
the agents' steps, the budget's numbers (Z3: the least and most tokens a run takes against
budget.maxTokens, the least run's time against budget.deadline) and, for a team that declares
spec.isolation, its proofs as admission makes them (SandboxPolicies from the same file); the
generated spec and TLC's output are saved (--out) for review. With --certificates it also
proves with Z3 that no delegation-certificate chain widens its root.
Exit status: 0 verified, 1 refused, 3 unknown (a time limit passed: checked with bounds only).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import click
from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec
from hive.cli.errors import one_line_errors
from hive.cli.teamfile import documents
from hive.errors import InvalidInput
from hive.settings import get_settings
from hive.verify.certproof import certificate_proofs
from hive.verify.check import EXPLAINED, VerifyReport, verify_spec
from hive.verify.isolation import declaration_problem, isolation_proofs, sandbox_policy_names
from hive.verify.reachability import reachability

EXIT = {"verified": 0, "refused": 1, "unknown": 3}
ORDER = ["verified", "unknown", "refused"]


def team_mapping(path: Path) -> dict[str, Any]:
    """The spec mapping of the one AgentTeam in `path` (or of a bare spec)."""
    docs = documents(path)
    teams = [d for d in docs if isinstance(d, dict) and d.get("kind") in (None, "AgentTeam")]
    if len(teams) != 1:
        raise InvalidInput(f"{path}: kind", f"expected one AgentTeam, got {len(teams)}")
    spec = teams[0].get("spec", teams[0])
    if not isinstance(spec, dict):
        raise InvalidInput(f"{path}: spec", "expected a mapping")
    return spec


def admission_problem(spec: dict[str, Any]) -> str | None:
    """Why the AgentTeam API would refuse the spec, if it would."""
    try:
        AgentTeamSpec.model_validate(spec)
    except ValidationError as exc:
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:3]
        )
    return None


def render(report: VerifyReport, admission: str | None) -> str:
    lines = [
        f"{report.pattern} team: {report.outcome} ({report.seconds:g} s, TLC {report.tlc_version})"
    ]
    for name in report.properties:
        # TLC stops at the first violation: the other properties are then not established
        mark = (
            "FAIL" if name == report.violated else ("ok" if report.outcome == "verified" else "?")
        )
        lines.append(f"  [{mark:>4}] {name}: {EXPLAINED.get(name, name)}")
    lines.append(f"  states: {report.distinct_states} distinct; bounds: {report.bounds}")
    lines += [f"  {line}" for line in report.budget]
    if report.message:
        lines.append(f"  {report.message}")
    if report.counterexample:
        lines.append("counterexample:")
        lines += [f"  {step}" for step in report.counterexample]
    if admission:
        lines.append(f"the AgentTeam API would refuse it too: {admission}")
    lines.append(f"spec: {report.spec_path}")
    return "\n".join(lines)


def overall(outcomes: set[str]) -> str:
    if "refuted" in outcomes:
        return "refused"
    return "unknown" if "unknown" in outcomes else "verified"


def reachability_lines(path: Path, spec: dict[str, Any]) -> tuple[list[str], str]:
    docs = [d for d in documents(path) if isinstance(d, dict) and "spec" in d]
    meta = (docs[0].get("metadata") if docs else None) or {}
    name, namespace = str(meta.get("name") or "team"), str(meta.get("namespace") or "default")
    lines = [f"reachability of team {name} in {namespace} (Z3, the operator's objects):"]
    outcomes = set()
    for agent in reachability(spec, name, namespace):
        lines.append(f"  {agent.agent} reaches: {', '.join(agent.peers) or 'no peer'}")
        lines += [f"    and {endpoint}" for endpoint in agent.endpoints]
        for proof in agent.proofs:
            outcomes.add(proof.outcome)
            lines.append(f"    [{proof.outcome}] {proof.statement}")
            if proof.counterexample:
                lines.append(f"      counterexample: {proof.counterexample}")
    return lines, overall(outcomes)


def isolation_lines(path: Path, spec: dict[str, Any]) -> tuple[list[str], str]:
    """spec.isolation proved as admission proves it, the SandboxPolicies taken from the file."""
    docs = [d for d in documents(path) if isinstance(d, dict)]
    team = next((d for d in docs if d.get("kind") in (None, "AgentTeam")), {})
    meta = team.get("metadata") or {}
    name, namespace = str(meta.get("name") or "team"), str(meta.get("namespace") or "default")
    policies = {
        str((d.get("metadata") or {}).get("name")): d.get("spec") or {}
        for d in docs
        if d.get("kind") == "SandboxPolicy"
    }
    lines = [f"declared isolation of team {name} (Z3, the operator's objects):"]
    problem = declaration_problem(spec)
    if problem:
        return [*lines, f"  [refuted] {problem}"], "refused"
    missing = [p for p in sandbox_policy_names(spec) if p not in policies]
    if missing:
        lines.append(f"  (SandboxPolicies not in the file, taken as absent: {', '.join(missing)})")
    proofs = isolation_proofs(spec, name, namespace, policies)
    for proof in proofs:
        lines.append(f"  [{proof.outcome}] {proof.statement}")
        if proof.counterexample:
            lines.append(f"    {proof.counterexample}")
    return lines, overall({p.outcome for p in proofs})


def certificate_lines() -> tuple[list[str], str]:
    proofs = certificate_proofs()
    lines = ["delegation certificates (Z3, over all grants):"]
    for proof in proofs:
        lines.append(f"  [{proof.outcome}] {proof.name}: {proof.statement}")
        if proof.counterexample:
            lines.append(f"    {proof.counterexample}")
    outcomes = {p.outcome for p in proofs}
    overall = (
        "refused" if "refuted" in outcomes else ("unknown" if "unknown" in outcomes else "verified")
    )
    return lines, overall


@click.command()
@click.argument("team_file", type=click.Path(path_type=Path), required=False)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Folder for the generated TLA+ spec and TLC's output (default: a new temporary one).",
)
@click.option("--time-limit", type=float, help="Seconds TLC may check (HIVE_VERIFY__TIME_LIMIT_S).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--certificates",
    is_flag=True,
    help="Also prove with Z3 that no delegation-certificate chain widens its root grant.",
)
@click.option(
    "--reachability",
    "reach",
    is_flag=True,
    help="Also show with Z3 which peers and endpoints each agent reaches, prove that no pod "
    "outside the team reaches it and that its ServiceAccount changes nothing but the status.",
)
@one_line_errors
def verify(
    team_file: Path | None,
    out: Path | None,
    time_limit: float | None,
    as_json: bool,
    certificates: bool,
    reach: bool,
) -> None:
    """Model-check a team's protocol: it terminates, cannot loop, keeps its bounds and budget."""
    if team_file is None and not certificates:
        raise InvalidInput("TEAM_FILE", "give a team file, or --certificates")
    proofs: tuple[list[str], str] = ([], "verified")
    if certificates:
        proofs = certificate_lines()
        click.echo("\n".join(proofs[0]))
    if team_file is None:
        raise SystemExit(EXIT[proofs[1]])
    settings = get_settings().verify
    if time_limit is not None:
        settings = settings.model_copy(update={"time_limit_s": time_limit})
    spec = team_mapping(team_file)
    if isinstance(spec.get("isolation"), dict) and admission_problem(spec) is None:
        lines, isolated = isolation_lines(team_file, spec)
        click.echo("\n".join(lines))
        proofs = (proofs[0], max(proofs[1], isolated, key=ORDER.index))
    if reach:
        lines, reached = reachability_lines(team_file, spec)
        click.echo("\n".join(lines))
        proofs = (proofs[0], max(proofs[1], reached, key=ORDER.index))
    workdir = out or Path(tempfile.mkdtemp(prefix="hive-verify-"))
    report = verify_spec(spec, workdir, settings)
    click.echo(report.to_json() if as_json else render(report, admission_problem(spec)))
    worst = max(report.outcome, proofs[1], key=ORDER.index)
    raise SystemExit(EXIT[worst])
