"""One Z3 at a time: every proof in the process builds its terms in z3's main context, and a Z3
context is not safe to use from two threads at once (concurrent use ends the process with a Z3
assertion violation). The operator proves from several threads — admission checks each in a
worker thread, the verifier's worker, `hive verify` — so each proof's entry point is
`serialised`: it holds `Z3_LOCK` while it builds and solves its terms. Proofs are short (each
solver call has its own timeout), so waiting for the lock costs little."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

Z3_LOCK = threading.RLock()  # re-entrant: a serialised proof may call another


def serialised(proof: Callable[P, R]) -> Callable[P, R]:
    """`proof`, run while holding Z3_LOCK."""

    @functools.wraps(proof)
    def holding_z3(*args: P.args, **kwargs: P.kwargs) -> R:
        with Z3_LOCK:
            return proof(*args, **kwargs)

    return holding_z3
