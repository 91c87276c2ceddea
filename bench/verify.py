"""Model checking of team protocols: TLC's time and distinct states, and the operator's Verified
latency.

    python bench/verify.py [--sizes 5,10,20] [--no-operator]

First `hive verify`'s check (two TLC runs: every property, then a run that succeeds) of each
example and sample team, and of generated teams of 5, 10 and 20 agents per pattern (a hierarchy
of a lead, seniors and juniors; swarms and negotiations of that many members), each under the
default time limit. Then, unless --no-operator, its own control plane and the operator as a
process: the examples applied at once, and the time from apply to each team's Verified
condition (the reconcile does not wait for it). Prints one line per figure and the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import yaml
from tests.operator_process import OperatorUnderTest
from tests.support import Cluster, dev_settings

from hive.dev.controlplane import ControlPlane
from hive.kube.client import sync_client
from hive.kube.resources import apply_crds
from hive.settings import KubeSettings, get_settings
from hive.verify.check import verify_spec

REPO = Path(__file__).resolve().parents[1]
TEAMS = [
    *sorted((REPO / "examples").glob("*.yaml")),
    REPO / "operator" / "hive" / "samples" / "agentteam-research.yaml",
]
MODEL = {"provider": "embedded", "name": "smollm2-135m-instruct"}


def generated(pattern: str, size: int) -> dict[str, Any]:
    """A team of `size` agents; a hierarchy: a lead, about sqrt(size) seniors, juniors below."""
    if pattern != "hierarchical":
        agents = [{"name": f"a{i}", "role": "specialist"} for i in range(size)]
        return {"goal": "g", "model": MODEL, "pattern": pattern, "agents": agents}
    seniors = max(1, round((size - 1) ** 0.5))
    juniors = [f"j{i}" for i in range(size - 1 - seniors)]
    groups = [juniors[k::seniors] for k in range(seniors)]
    agents = [{"name": "lead", "role": "senior", "subordinates": [f"s{k}" for k in range(seniors)]}]
    agents += [
        {"name": f"s{k}", "role": "senior", "subordinates": group} for k, group in enumerate(groups)
    ]
    agents += [{"name": j, "role": "junior"} for j in juniors]
    return {"goal": "g", "model": MODEL, "pattern": "hierarchical", "agents": agents}


def check(label: str, spec: dict[str, Any], folder: Path) -> None:
    report = verify_spec(spec, folder, get_settings().verify)
    print(
        f"{label:<44} {report.outcome:<9} {report.seconds:6.2f} s  "
        f"{report.distinct_states:>7} distinct states  ({report.bounds})"
    )


def operator_latency(work: Path) -> None:
    plane = ControlPlane(dev_settings(work / "plane"))
    plane.up()
    try:
        cluster = Cluster(plane, sync_client(KubeSettings(kubeconfig=plane.kubeconfig)))
        apply_crds(cluster.client)
        cluster.kubectl("create", "namespace", "bench-verify")
        env = {
            "HIVE_OPERATOR__NAMESPACE": "bench-verify",
            "HIVE_VERIFY__SPEC_DIR": str(work / "specs"),
        }
        operator = OperatorUnderTest(plane, work / "operator.log", env)
        operator.start()
        try:
            items = []
            for path in TEAMS:
                doc = yaml.safe_load(path.read_text())
                doc["metadata"] = {"name": path.stem, "namespace": "bench-verify"}
                items.append(doc)
            document = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
            applied = time.monotonic()
            cluster.kubectl("apply", "--server-side", "-f", "-", input=document, timeout=120)
            pending = {path.stem for path in TEAMS}
            deadline = applied + 600
            while pending and time.monotonic() < deadline:
                listed = cluster.kubectl("get", "agentteams", "-n", "bench-verify", "-o", "json")
                for item in json.loads(listed.stdout)["items"]:
                    name = item["metadata"]["name"]
                    conditions = (item.get("status") or {}).get("conditions") or []
                    verified = next((c for c in conditions if c["type"] == "Verified"), None)
                    if name in pending and verified and verified["reason"] != "Checking":
                        pending.discard(name)
                        print(
                            f"operator: {name:<28} Verified={verified['status']:<7} "
                            f"{time.monotonic() - applied:6.2f} s after apply"
                        )
                time.sleep(0.2)
            if pending:
                print(f"operator: no verdict within 600 s for {', '.join(sorted(pending))}")
        finally:
            operator.stop()
    finally:
        plane.down(purge=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,10,20")
    parser.add_argument("--no-operator", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="hive-bench-verify-") as tmp:
        work = Path(tmp)
        for path in TEAMS:
            doc = yaml.safe_load(path.read_text())
            check(f"{path.parent.name}/{path.name}", doc["spec"], work / path.stem)
        for pattern in ("hierarchical", "swarm", "negotiation"):
            for size in (int(s) for s in args.sizes.split(",")):
                check(
                    f"{pattern} team of {size} agents",
                    generated(pattern, size),
                    work / f"{pattern}-{size}",
                )
        if not args.no_operator:
            operator_latency(work)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
