"""Z3 proofs over the delegation-certificate language: the theorems hold, the symbolic `within`
is the runtime's `Grant.widening` (compared on generated grants), and a rule that widens is
refuted with a counterexample."""

from __future__ import annotations

import z3
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.runtime.identity.certs import Grant
from hive.verify.certproof import (
    SymbolicGrant,
    certificate_proofs,
    may_use,
    prove,
    within,
)

NAMES = st.frozensets(st.sampled_from(["search", "code", "write", "web", "db"]), max_size=4)
OPTIONAL_INT = st.none() | st.integers(min_value=0, max_value=50)
OPTIONAL_TIME = st.none() | st.integers(min_value=0, max_value=50).map(float)


@st.composite
def grants(draw: st.DrawFn) -> Grant:
    return Grant(
        issuer="a",
        subject="b",
        team="t",
        capabilities=draw(NAMES),
        tools=draw(NAMES),
        budget=draw(OPTIONAL_INT),
        deadline=draw(OPTIONAL_TIME),
        expires=float(draw(st.integers(min_value=0, max_value=50))),
    )


def concrete(grant: Grant) -> SymbolicGrant:
    def strings(values: frozenset[str]) -> z3.ArrayRef:
        result = z3.EmptySet(z3.StringSort())
        for value in sorted(values):
            result = z3.SetAdd(result, z3.StringVal(value))
        return result

    return SymbolicGrant(
        capabilities=strings(grant.capabilities),
        tools=strings(grant.tools),
        has_budget=z3.BoolVal(grant.budget is not None),
        budget=z3.IntVal(grant.budget or 0),
        has_deadline=z3.BoolVal(grant.deadline is not None),
        deadline=z3.RealVal(grant.deadline or 0),
        expires=z3.RealVal(grant.expires),
    )


def test_no_chain_widens_its_root_proved_for_all_grants() -> None:
    proofs = certificate_proofs()
    assert [p.name for p in proofs] == [
        "within-reflexive",
        "within-transitive",
        "no-widened-use",
        "no-widened-capability",
    ]
    assert all(p.outcome == "proved" for p in proofs), proofs


@settings(max_examples=300, deadline=None)
@given(grants(), grants())
def test_the_symbolic_check_is_the_runtimes_widening_check(child: Grant, parent: Grant) -> None:
    solver = z3.Solver()
    solver.add(within(concrete(child), concrete(parent)))
    assert (solver.check() == z3.sat) == (child.widening(parent) is None)


def test_a_rule_that_forgets_the_budget_is_refused_with_a_counterexample() -> None:
    child, root = SymbolicGrant.named("child"), SymbolicGrant.named("root")

    def lax(c: SymbolicGrant, p: SymbolicGrant) -> z3.BoolRef:  # the budget clause left out
        return z3.And(
            z3.IsSubset(c.tools, p.tools), c.expires <= p.expires, c.has_deadline == p.has_deadline
        )

    tool, tokens, at = z3.String("tool"), z3.Int("tokens"), z3.Real("at")
    proof = prove(
        "lax",
        "a link within its root spends no more",
        z3.Implies(
            z3.And(lax(child, root), z3.Not(root.has_deadline)),
            z3.Implies(may_use(child, tool, tokens, at), may_use(root, tool, tokens, at)),
        ),
    )
    assert proof.outcome == "refuted"
    assert "root.budget" in proof.counterexample


def test_hive_verify_certificates_prints_the_proofs() -> None:
    from click.testing import CliRunner

    from hive.cli.main import cli

    result = CliRunner().invoke(cli, ["verify", "--certificates"])
    assert result.exit_code == 0, result.output
    assert "[proved] within-transitive" in result.output
    missing = CliRunner().invoke(cli, ["verify"])
    assert missing.exit_code == 1
    assert "TEAM_FILE" in missing.output
