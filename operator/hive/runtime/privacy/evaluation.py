"""Precision and recall of a detector per entity type on a labelled set (JSON lines of
``{"text", "entities": [{"type", "start", "end"}]}``, as tests/data/privacy/eval.jsonl).

A finding is a true positive when a labelled entity of the same type overlaps it; a labelled
entity is recalled when a finding of its type overlaps it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hive.runtime.privacy.detect import Detector


@dataclass(frozen=True)
class Score:
    entity: str
    labelled: int
    found: int
    true_found: int
    recalled: int

    @property
    def precision(self) -> float:
        return self.true_found / self.found if self.found else 1.0

    @property
    def recall(self) -> float:
        return self.recalled / self.labelled if self.labelled else 1.0


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def evaluate(detector: Detector, rows: Iterable[dict[str, Any]]) -> dict[str, Score]:
    labelled: Counter[str] = Counter()
    found: Counter[str] = Counter()
    true_found: Counter[str] = Counter()
    recalled: Counter[str] = Counter()
    for row in rows:
        gold = [(e["type"], e["start"], e["end"]) for e in row["entities"]]
        findings = detector.analyze(row["text"])
        for kind, start, end in gold:
            labelled[kind] += 1
            if any(f.entity == kind and f.start < end and start < f.end for f in findings):
                recalled[kind] += 1
        for f in findings:
            found[f.entity] += 1
            if any(
                kind == f.entity and f.start < end and start < f.end for kind, start, end in gold
            ):
                true_found[f.entity] += 1
    return {
        entity: Score(entity, labelled[entity], found[entity], true_found[entity], recalled[entity])
        for entity in sorted(set(labelled) | set(found))
    }


def table(scores: dict[str, Score], mode: str) -> str:
    lines = [
        f"{'mode':<5} {'entity':<14} {'labelled':>8} {'found':>6} {'precision':>9} {'recall':>7}"
    ]
    for s in scores.values():
        counts = f"{s.labelled:>8} {s.found:>6}"
        lines.append(f"{mode:<5} {s.entity:<14} {counts} {s.precision:>9.3f} {s.recall:>7.3f}")
    return "\n".join(lines)
