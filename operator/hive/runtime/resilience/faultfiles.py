"""The fault folder: the team's fault ConfigMap as mounted in an agent pod, watched for changes.

Kubernetes updates a mounted ConfigMap by swapping a ``..data`` symlink, so the folder is read
again about every second and compared by content; a change is in force within one interval,
without a restart. A missing or empty folder means no faults. A file that cannot be used
(not JSON, an unknown fault type, a dependency the team does not have) never stops the agent:
the fault is skipped, logged once, published as a ``fault-skipped`` event and kept among the
injector's problems, which the agent reports in its status entry.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from hive.api.agentteam import FaultProblem
from hive.runtime.events import Event, EventKind
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.faultspec import AimedFault, Dependencies, parse_fault_file

log = logging.getLogger(__name__)
POLL_S = 1.0


def read_folder(folder: Path) -> dict[str, str]:
    """Every ``*.json`` file of `folder` by name (not the ``..data`` machinery); {} if none."""
    files: dict[str, str] = {}
    try:
        entries = sorted(folder.iterdir())
    except OSError:
        return files
    for path in entries:
        if path.name.startswith(".") or path.suffix != ".json":
            continue
        try:
            files[path.name] = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            files[path.name] = f"<unreadable: {exc.__class__.__name__}>"
    return files


def parse_files(
    files: dict[str, str], known: Dependencies | None
) -> tuple[list[AimedFault], list[FaultProblem]]:
    faults: list[AimedFault] = []
    problems: list[FaultProblem] = []
    for name, text in files.items():
        usable, skipped = parse_fault_file(name, text, known)
        faults += usable
        problems += skipped
    return faults, problems


@dataclass
class FaultFolder:
    """Keeps `injector` loaded with the faults of `folder` for `agents` (this process's)."""

    folder: Path
    injector: FaultInjector
    agents: Sequence[str]
    known: Dependencies | None = None
    interval_s: float = POLL_S
    _seen: dict[str, str] | None = None
    _told: set[str] = field(default_factory=set)

    async def refresh(self) -> bool:
        """Read the folder; load its faults if it changed. Returns whether it changed."""
        files = await asyncio.to_thread(read_folder, self.folder)
        changed = files != self._seen
        if changed:
            self._seen = files
            faults, problems = parse_files(files, self.known)
            self.injector.load(faults, problems)
            log.info(
                "faults from %s: %d in force, %d skipped", self.folder, len(faults), len(problems)
            )
            await self._tell(problems)
        await self.injector.apply_pressure(self.agents)
        return changed

    async def _tell(self, problems: list[FaultProblem]) -> None:
        """Log and publish each problem once (until it is gone and comes back)."""
        current = {p.message for p in problems}
        for problem in problems:
            if problem.message in self._told:
                continue
            log.warning("fault skipped: %s", problem.message)
            if self.injector.bus is not None:
                for agent in self.agents:
                    await self.injector.bus.publish(
                        Event(
                            EventKind.FAULT_SKIPPED,
                            agent,
                            {"experiment": problem.experiment, "problem": problem.message},
                        )
                    )
        self._told = current

    async def run(self, stop: asyncio.Event) -> None:
        """Refresh every `interval_s` until `stop`; pressure is released at the end."""
        try:
            while not stop.is_set():
                try:
                    await self.refresh()
                except Exception as exc:  # a fault file must never stop the agent
                    log.warning("reading the faults in %s failed: %s", self.folder, exc)
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.interval_s)
                except TimeoutError:
                    continue
        finally:
            self.injector.pressure.release()
