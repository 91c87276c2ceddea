"""`hive run --chaos experiment.yaml`: a ChaosExperiment's faults in a local run.

The experiment's selector picks its agents among the team's (seeded by the experiment's name,
or its ``seed``), and its fault file is written the way the operator writes it into the team's
fault ConfigMap, into a temporary folder that the same fault folder watcher reads: the local
run sees exactly what the agent pods would, in the window from the start of the run to its
``duration``. Calls between agents stay in the process, so a partition has no peer call to cut.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from hive.api.agentteam import AgentTeamSpec
from hive.api.chaos import ChaosExperimentSpec
from hive.api.common import describe_validation_error
from hive.cli.teamfile import documents
from hive.errors import InvalidInput
from hive.reconcile.chaos import choose_targets, fault_file, seconds
from hive.runtime.resilience.faultfiles import FaultFolder
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.faultspec import dependencies_of


@dataclass(frozen=True)
class LocalChaos:
    """A ChaosExperiment to apply to a local run: its name and spec."""

    name: str
    spec: ChaosExperimentSpec


def load_chaos(path: Path) -> LocalChaos:
    """The only ChaosExperiment document of `path` (or a bare spec, named after the file)."""
    docs = [d for d in documents(path) if isinstance(d, dict)]
    found = [d for d in docs if d.get("kind") in (None, "ChaosExperiment")]
    if len(found) != 1:
        kinds = ", ".join(str(d.get("kind")) for d in docs)
        raise InvalidInput(f"{path}: kind", f"expected one ChaosExperiment, got {kinds or 'none'}")
    doc = found[0]
    name = str((doc.get("metadata") or {}).get("name") or path.stem)
    try:
        spec = ChaosExperimentSpec.model_validate(doc.get("spec", doc))
    except ValidationError as exc:
        raise InvalidInput(str(path), describe_validation_error(exc)) from exc
    return LocalChaos(name, spec)


@contextlib.contextmanager
def fault_folder(
    chaos: LocalChaos, team: AgentTeamSpec, injector: FaultInjector, now: dt.datetime
) -> Iterator[FaultFolder]:
    """A folder holding the experiment's fault file, watched into `injector`."""
    members = [a.name for a in team.agents]
    targets = choose_targets(chaos.spec, members, chaos.name)
    if not targets:
        raise InvalidInput("--chaos spec.selector", "matches no agent of the team")
    until = now + dt.timedelta(seconds=seconds(chaos.spec.duration))
    text = fault_file(chaos.name, targets, chaos.spec.faults, now, until, chaos.spec.seed)
    with tempfile.TemporaryDirectory(prefix="hive-faults-") as folder:
        (Path(folder) / f"{chaos.name}.json").write_text(text)
        yield FaultFolder(Path(folder), injector, members, dependencies_of(team))
