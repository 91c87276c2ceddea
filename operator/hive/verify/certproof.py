"""Z3 proofs over the delegation-certificate language (runtime/identity/certs.py): no chain
widens what its root grants.

A grant is encoded symbolically — capabilities and tools as sets over all strings, the token
budget and the deadline as optional numbers, the expiry as a number — and `within(child,
parent)` is exactly the check `Grant.widening` makes at every link (its clauses one by one; a
test compares the two on generated grants). Proved for all grants, not for examples:

- within is reflexive and transitive, so by induction every link of a chain the verifier
  accepts (each link within the one above) is within the root grant, whatever the chain's
  length; and
- what the leaf may use (a tool, a capability, tokens, time) the root grants: no accepted chain
  lets its holder call a tool, spend a token or act after a time its root does not allow.

Every solver call has a timeout; `unknown` is reported as such, never as proved.
"""

from __future__ import annotations

from dataclasses import dataclass

import z3

from hive.verify.solver import serialised

TIMEOUT_MS = 10_000


@dataclass(frozen=True)
class SymbolicGrant:
    capabilities: z3.ArrayRef
    tools: z3.ArrayRef
    has_budget: z3.BoolRef
    budget: z3.ArithRef
    has_deadline: z3.BoolRef
    deadline: z3.ArithRef
    expires: z3.ArithRef

    @classmethod
    def named(cls, name: str) -> SymbolicGrant:
        strings = z3.StringSort()
        return cls(
            capabilities=z3.Const(f"{name}.cap", z3.SetSort(strings)),
            tools=z3.Const(f"{name}.tools", z3.SetSort(strings)),
            has_budget=z3.Bool(f"{name}.has_budget"),
            budget=z3.Int(f"{name}.budget"),
            has_deadline=z3.Bool(f"{name}.has_deadline"),
            deadline=z3.Real(f"{name}.deadline"),
            expires=z3.Real(f"{name}.exp"),
        )


def within(child: SymbolicGrant, parent: SymbolicGrant) -> z3.BoolRef:
    """`child.widening(parent) is None`, clause by clause."""
    return z3.And(
        z3.IsSubset(child.capabilities, parent.capabilities),
        z3.IsSubset(child.tools, parent.tools),
        z3.Or(z3.Not(parent.has_budget), z3.And(child.has_budget, child.budget <= parent.budget)),
        z3.Or(
            z3.Not(parent.has_deadline),
            z3.And(child.has_deadline, child.deadline <= parent.deadline),
        ),
        child.expires <= parent.expires,
    )


@dataclass(frozen=True)
class Proof:
    """One theorem and what Z3 said about it."""

    name: str
    statement: str
    outcome: str  # proved, refuted or unknown
    counterexample: str = ""


@serialised
def prove(name: str, statement: str, claim: z3.BoolRef, timeout_ms: int = TIMEOUT_MS) -> Proof:
    """Proved when the claim's negation has no model; refuted with the model that breaks it."""
    solver = z3.Solver()
    solver.set("timeout", timeout_ms)
    solver.add(z3.Not(claim))
    answer = solver.check()
    if answer == z3.unsat:
        return Proof(name, statement, "proved")
    if answer == z3.sat:
        return Proof(name, statement, "refuted", str(solver.model()))
    return Proof(name, statement, "unknown", solver.reason_unknown())


def may_use(
    grant: SymbolicGrant, tool: z3.SeqRef, tokens: z3.ArithRef, at: z3.ArithRef
) -> z3.BoolRef:
    """What a holder of `grant` may do: call `tool`, having spent `tokens`, at time `at`."""
    return z3.And(
        z3.IsMember(tool, grant.tools),
        z3.Or(z3.Not(grant.has_budget), tokens <= grant.budget),
        z3.Or(z3.Not(grant.has_deadline), at < grant.deadline),
        at < grant.expires,
    )


@serialised
def certificate_proofs(timeout_ms: int = TIMEOUT_MS) -> list[Proof]:
    """The theorems that together say no delegation chain can widen its root's grant."""
    a, b, c = (SymbolicGrant.named(n) for n in "abc")
    tool, tokens, at = z3.String("tool"), z3.Int("tokens"), z3.Real("at")
    capability = z3.String("capability")
    return [
        prove(
            "within-reflexive",
            "every grant is within itself (a link may pass on all it holds)",
            within(a, a),
            timeout_ms,
        ),
        prove(
            "within-transitive",
            "within(a, b) and within(b, c) imply within(a, c): by induction, every link of an "
            "accepted chain of any length is within the root",
            z3.Implies(z3.And(within(a, b), within(b, c)), within(a, c)),
            timeout_ms,
        ),
        prove(
            "no-widened-use",
            "a link within its root may call no tool, spend no token and act at no time the "
            "root does not allow",
            z3.Implies(
                within(a, c), z3.Implies(may_use(a, tool, tokens, at), may_use(c, tool, tokens, at))
            ),
            timeout_ms,
        ),
        prove(
            "no-widened-capability",
            "a link within its root holds no capability the root does not",
            z3.Implies(
                z3.And(within(a, c), z3.IsMember(capability, a.capabilities)),
                z3.IsMember(capability, c.capabilities),
            ),
            timeout_ms,
        ),
    ]
