"""The compliance report counts the privacy records of its window only, and names what went
out in clear."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from hive.runtime.identity.audit import Action, AuditLog, Outcome
from hive.runtime.privacy.report import build, markdown, read_records


def test_the_window_and_the_destinations_in_clear(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "t.audit.jsonl")
    log.record(
        "agent/a",
        Action.PRIVACY,
        "privacy:modelPrompts:model:m",
        Outcome.OK,
        '{"EMAIL_ADDRESS:redact":2,"PERSON:allow":1}',
    )
    log.record("agent/a", Action.TOOL_CALL, "tool:search/call", Outcome.OK)
    log.record(
        "agent/a",
        Action.PRIVACY,
        "privacy:toolOutputs:tool:crm",
        Outcome.OK,
        '{"CREDIT_CARD:mask":1}',
    )
    log.close()
    records = read_records(tmp_path / "t.audit.jsonl")
    now = dt.datetime.now(dt.UTC)
    report = build("ns/t", records, now - dt.timedelta(hours=1), now + dt.timedelta(seconds=1))
    assert report["findings"] == 4
    assert report["byEntity"] == {"EMAIL_ADDRESS": 2, "PERSON": 1, "CREDIT_CARD": 1}
    assert report["bySource"] == {"model:m": 3, "tool:crm": 1}
    assert report["receivedInClear"] == {"modelPrompts:model:m": 1}
    assert "| CREDIT_CARD | toolOutputs | mask | 1 |" in markdown(report)
    later = build("ns/t", records, now + dt.timedelta(hours=1), now + dt.timedelta(hours=2))
    assert later["findings"] == 0
    assert read_records(tmp_path / "missing.jsonl") == []
