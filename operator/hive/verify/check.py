"""Verifying a team: its protocol's TLA+ spec checked with TLC, and a run that succeeds sought;
then its budget with Z3 (hive.verify.budget): a budget no run can keep refuses the team.

Two TLC runs: one checks every property (invariants, no deadlock, termination), the other asks
for a run that ends in success (agreed, for a negotiation); finding none refuses the team, e.g.
a consensus threshold no vote can reach. The outcome is `verified`, `refused` (with the
counterexample as agent steps) or `unknown` (TLC's time limit passed: checked with bounds).
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hive.settings import VerifySettings
from hive.verify.budget import BudgetReport, check_budget
from hive.verify.protocol import TeamProtocol, protocol_of
from hive.verify.tlaspec import GeneratedSpec, generate, reachability
from hive.verify.tlc import TlcResult, run_tlc

EXPLAINED = {
    "NoDelegationCycle": "no delegation goes back into its own chain at run time",
    "DepthWithinMaxDepth": "no delegation chain is deeper than delegation.maxDepth",
    "RevisionsBounded": "a result is sent back for revision a bounded number of times",
    "RoundsBounded": "no run goes past maxRounds",
    "EndsAgreedOrDeadlocked": "a negotiation ends agreed or deadlocked",
    "BudgetOvershootBounded": (
        "the run stops at the first model call (or calls made at once) over budget.maxTokens"
    ),
    "FaultFreeRunsFitBudget": "a run without faults, revisions or rejections fits budget.maxTokens",
    "deadlock": "no run gets stuck before it ends",
    "termination": "every run ends",
    "SuccessReachable": "some run ends in success",
    "BudgetCanBeMet": "some run fits budget.maxTokens (Z3, at budget.tokensPerCall a call)",
    "DeadlineCanBeMet": "some run ends before budget.deadline (Z3, at budget.secondsPerCall)",
}


@dataclass
class VerifyReport:
    """The outcome of verifying one team."""

    outcome: str  # verified, refused or unknown
    pattern: str
    properties: list[str]
    violated: str | None = None
    explanation: str = ""
    counterexample: list[str] = field(default_factory=list)
    bounds: str = ""
    distinct_states: int = 0
    seconds: float = 0.0
    spec_path: str = ""
    digest: str = ""
    message: str = ""
    tlc_version: str = ""
    budget: list[str] = field(default_factory=list)  # what Z3 found of the budget, in numbers

    def summary(self) -> str:
        if self.outcome == "verified":
            return (
                f"verified: {len(self.properties)} properties hold over "
                f"{self.distinct_states} states (bounds: {self.bounds})"
            )
        if self.outcome == "refused":
            steps = "; ".join(self.counterexample[-6:])
            return f"refused: {self.violated} ({self.explanation}) fails: {steps}"
        return f"unknown: {self.message}"

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def digest_of(spec: GeneratedSpec) -> str:
    """What the cache is keyed on: the generated module and its config."""
    return hashlib.sha256((spec.module + spec.config).encode()).hexdigest()[:16]


def verify_protocol(
    protocol: TeamProtocol,
    workdir: Path,
    *,
    time_limit_s: float = 60.0,
    java: str = "java",
    proof_timeout_s: float = 5.0,
) -> VerifyReport:
    """Model-check `protocol`; the specs and TLC's output are saved under `workdir`. Both TLC
    runs get `time_limit_s` and run side by side; each Z3 call of the budget proof gets
    `proof_timeout_s`."""
    started = time.monotonic()
    spec = generate(protocol)
    properties = [*spec.invariants, "deadlock", "termination", "SuccessReachable"]
    report = VerifyReport(
        outcome="verified",
        pattern=str(protocol.pattern),
        properties=properties,
        bounds=spec.bounds,
        spec_path=str(workdir / "HiveTeam.tla"),
        digest=digest_of(spec),
    )
    # the two TLC runs at once (each a JVM that mostly waits on its start-up)
    with ThreadPoolExecutor(max_workers=2) as pool:
        seeking = pool.submit(
            run_tlc,
            reachability(protocol),
            workdir / "reachability",
            time_limit_s=time_limit_s,
            java=java,
        )
        main = run_tlc(spec, workdir, time_limit_s=time_limit_s, java=java)
        reach = seeking.result()
    report.tlc_version = main.version
    report.distinct_states = main.distinct_states
    if not _settle(report, main):
        if reach.outcome == "proved":  # no state breaks "never succeeds": success is unreachable
            report.outcome, report.violated = "refused", "SuccessReachable"
            report.explanation = EXPLAINED["SuccessReachable"]
            report.counterexample = [
                f"no run of the {reach.distinct_states} states TLC explored ends "
                f"{spec.success}: every run fails, deadlocks or runs out of budget"
            ]
        elif reach.outcome == "unknown":
            report.outcome, report.message = "unknown", reach.message
    budget = check_budget(protocol, timeout_ms=int(proof_timeout_s * 1000))
    _settle_budget(report, budget, deadline=protocol.deadline is not None)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _settle_budget(report: VerifyReport, budget: BudgetReport, *, deadline: bool) -> None:
    """The budget's proof (Z3) joins the report; a budget no run can keep refuses the team."""
    report.budget = budget.lines
    report.properties.append("BudgetCanBeMet")
    if deadline:
        report.properties.append("DeadlineCanBeMet")
    if report.outcome == "refused":
        return
    if budget.outcome == "refuted":
        report.outcome, report.violated = "refused", budget.violated
        report.explanation = EXPLAINED.get(budget.violated or "", "")
        report.counterexample = budget.lines
    elif budget.outcome == "unknown" and report.outcome == "verified":
        report.outcome, report.message = "unknown", "; ".join(budget.lines)


def _settle(report: VerifyReport, result: TlcResult) -> bool:
    """Record a violation or a time-out; True when the verdict is final."""
    if result.outcome == "violated":
        report.outcome, report.violated = "refused", result.violated
        report.explanation = EXPLAINED.get(result.violated or "", "")
        report.counterexample = result.steps
        return True
    if result.outcome == "unknown":
        report.outcome, report.message = "unknown", result.message
        return True
    return False


def verify_spec(spec: dict[str, Any], workdir: Path, settings: VerifySettings) -> VerifyReport:
    """Verify an AgentTeam spec mapping (camelCase) with the verify settings."""
    protocol = protocol_of(
        spec,
        tokens_per_call=settings.tokens_per_call,
        swarm_parts=settings.swarm_parts,
        seconds_per_call=settings.seconds_per_call,
    )
    return verify_protocol(
        protocol,
        workdir,
        time_limit_s=settings.time_limit_s,
        java=settings.java,
        proof_timeout_s=settings.proof_timeout_s,
    )
