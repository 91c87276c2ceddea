"""The compliance report of a team over a time window, from its audit log's privacy records.

Each record (action ``privacy``) says at which boundary (``privacy:<boundary>:<source>``) what
was found and how it was handled (its reason: ``{"EMAIL_ADDRESS:redact": 2, ...}``). The report
counts findings by entity type, by where they came from and by what was done, and names the
destinations that received personal data in clear (strategy allow): none under a redact policy.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from hive.errors import InvalidInput

REVERSIBLE = "pseudonymise"


def read_records(path: Path) -> list[dict[str, Any]]:
    """The audit log's records, or none when the team has no log yet."""
    if not path.is_file():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError as exc:
            raise InvalidInput(f"{path}:{number}", "not a JSON audit record") from exc
    return records


def _time(record: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))


def build(
    team: str, records: Iterable[dict[str, Any]], since: dt.datetime, now: dt.datetime
) -> dict[str, Any]:
    """The report's content (JSON-ready) for the records of `team` from `since` to `now`."""
    by_entity: Counter[str] = Counter()
    by_boundary: Counter[str] = Counter()
    by_source: Counter[str] = Counter()
    by_strategy: Counter[str] = Counter()
    in_clear: Counter[str] = Counter()
    flows: Counter[tuple[str, str, str]] = Counter()
    first = last = None
    for record in records:
        if record.get("action") != "privacy" or not (since <= _time(record) <= now):
            continue
        _, boundary, source = [*str(record.get("subject", "")).split(":", 2), "", ""][:3]
        found: dict[str, int] = json.loads(record.get("reason") or "{}")
        first = first or record["time"]
        last = record["time"]
        for key, count in found.items():
            entity, _, strategy = key.partition(":")
            by_entity[entity] += count
            by_boundary[boundary] += count
            by_source[source] += count
            by_strategy[strategy] += count
            flows[(entity, boundary, strategy)] += count
            if strategy == "allow":
                in_clear[f"{boundary}:{source}"] += count
    return {
        "team": team,
        "window": {"since": since.isoformat(), "until": now.isoformat()},
        "findings": sum(by_entity.values()),
        "first": first,
        "last": last,
        "byEntity": dict(by_entity.most_common()),
        "byBoundary": dict(by_boundary.most_common()),
        "bySource": dict(by_source.most_common()),
        "byStrategy": dict(by_strategy.most_common()),
        "flows": [
            {"entity": e, "boundary": b, "strategy": s, "count": n}
            for (e, b, s), n in sorted(flows.items())
        ],
        "receivedInClear": dict(in_clear),
        "reversible": by_strategy.get(REVERSIBLE, 0),
        "retention": (
            "memory writes hold pseudonyms or redactions only, kept as their MemoryStore's "
            "spec.retention says; the audit log keeps counts, never values"
        ),
    }


def markdown(report: dict[str, Any]) -> str:
    window = report["window"]
    lines = [
        f"# Privacy compliance report: {report['team']}",
        "",
        f"Window: {window['since']} to {window['until']}; findings: {report['findings']}.",
        "",
        "| entity | boundary | handled by | count |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {f['entity']} | {f['boundary']} | {f['strategy']} | {f['count']} |"
        for f in report["flows"]
    ]
    clear = report["receivedInClear"]
    lines += [
        "",
        "Sources: " + (", ".join(f"{k} ({v})" for k, v in report["bySource"].items()) or "none"),
        "",
        "Destinations that received personal data in clear: "
        + (", ".join(f"{k} ({v})" for k, v in clear.items()) or "none"),
        "",
        f"Retention: {report['retention']}.",
    ]
    return "\n".join(lines) + "\n"
