"""The Z3 proofs before a team runs: declared isolation (what admission proves) and the budget
(what the Verified condition adds to TLC's check), for teams of 5, 10 and 20 agents.

    python bench/verify_proofs.py [--sizes 5,10,20] [--repeat 3]

Per size, a hierarchy (a lead, about sqrt(n) seniors, juniors below, each senior's juniors its
only peers), with inbound: team, outboundPorts and one code-running agent per senior whose
SandboxPolicy is offline: the seconds `isolation_problem` takes (the best of --repeat, as the
admission webhook runs it) and the number of claims proved; then the seconds `check_budget`
takes for the same team and for a swarm and a negotiation of that many agents, with the least
and most model calls it found. Prints one line per figure and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hive.verify.budget import check_budget
from hive.verify.isolation import isolation_problem, isolation_proofs
from hive.verify.protocol import protocol_of

MODEL = {"name": "m", "endpoint": "https://models.example/v1"}


def hierarchy(size: int) -> dict[str, Any]:
    seniors = max(1, round((size - 1) ** 0.5))
    juniors = [f"j{i}" for i in range(size - 1 - seniors)]
    groups = [juniors[k::seniors] for k in range(seniors)]
    agents: list[dict[str, Any]] = [
        {"name": "lead", "role": "senior", "subordinates": [f"s{k}" for k in range(seniors)]}
    ]
    agents += [
        {"name": f"s{k}", "role": "senior", "subordinates": group} for k, group in enumerate(groups)
    ]
    for group in groups:
        for n, junior in enumerate(group):
            agent: dict[str, Any] = {"name": junior, "role": "junior"}
            if n == 0:
                agent["tools"] = [{"name": "python", "version": "*"}]
                agent["sandboxPolicyRef"] = {"name": "offline"}
            agents.append(agent)
    peers = [{"agent": f"s{k}", "peers": group} for k, group in enumerate(groups)]
    peers += [{"agent": j, "peers": []} for j in juniors]
    return {
        "goal": "g",
        "model": MODEL,
        "agents": agents,
        "isolation": {
            "peers": peers,
            "inbound": "team",
            "outboundPorts": [443, 6443],
            "sandboxNetwork": "none",
        },
        "budget": {"maxTokens": 100_000},
    }


def best(repeat: int, fn: Any) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="5,10,20")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    policies = {"offline": {"network": {"mode": "none"}}}
    for size in (int(s) for s in args.sizes.split(",")):
        spec = hierarchy(size)
        seconds, problem = best(
            args.repeat, lambda spec=spec: isolation_problem(spec, "t", "ns", policies)
        )
        claims = len(isolation_proofs(spec, "t", "ns", policies))
        verdict = "admitted" if problem is None else f"refused: {problem[:80]}"
        print(f"isolation {size:>2} agents: {seconds:.3f} s, {claims} claims, {verdict}")
        for pattern in ("hierarchical", "swarm", "negotiation"):
            team = spec if pattern == "hierarchical" else {**spec, "pattern": pattern}
            protocol = protocol_of(team)
            seconds, report = best(args.repeat, lambda p=protocol: check_budget(p))
            print(
                f"budget    {size:>2} agents {pattern:<12}: {seconds:.3f} s, "
                f"{report.least_calls} to {report.most_calls} model calls, {report.outcome}"
            )
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
