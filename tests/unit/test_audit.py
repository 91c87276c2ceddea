"""The audit log: records chained by SHA-256; a changed, removed or reordered one is named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.cli.main import cli
from hive.errors import InvalidInput
from hive.runtime.identity.audit import (
    GENESIS,
    Action,
    AuditLog,
    Outcome,
    agent_actor,
    read_head,
)
from hive.runtime.identity.auditcheck import check_lines, verify


def write_log(path: Path, count: int) -> list[str]:
    log = AuditLog(path)
    for i in range(count):
        log.record(
            agent_actor(f"a{i % 3}"),
            Action.TOOL_CALL,
            f"tool:t{i}/call",
            Outcome.OK if i % 2 else Outcome.FAILED,
            reason="" if i % 2 else f"boom {i}",
            authority=[f"cert-{i}"] if i % 4 == 0 else [],
        )
    log.close()
    return path.read_text().splitlines()


def test_records_carry_seq_and_the_previous_hash(tmp_path: Path) -> None:
    lines = write_log(tmp_path / "t.jsonl", 3)
    records = [json.loads(line) for line in lines]
    assert [r["seq"] for r in records] == [0, 1, 2]
    assert records[0]["prev"] == GENESIS
    assert records[1]["prev"] == records[0]["hash"]
    assert records[2]["prev"] == records[1]["hash"]
    assert set(records[0]) == {
        "seq",
        "time",
        "actor",
        "action",
        "subject",
        "authority",
        "outcome",
        "reason",
        "prev",
        "hash",
    }
    assert records[0]["authority"] == ["cert-0"]
    assert read_head(tmp_path / "t.jsonl") == (2, records[2]["hash"])


def test_a_reopened_log_continues_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    write_log(path, 2)
    log = AuditLog(path)
    log.record("operator", Action.SECRET_READ, "kv:team/model", Outcome.ALLOWED)
    log.close()
    assert verify(path) == 3


def test_every_record_goes_to_the_process_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hive.audit")
    lines = write_log(tmp_path / "t.jsonl", 2)
    assert [r.getMessage() for r in caplog.records if r.name == "hive.audit"] == lines


def test_verify_names_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = write_log(path, 5)
    assert check_lines(lines) is None
    assert str(check_lines(lines[:2] + lines[3:])) == (
        "line 3 (seq 3): removed: seq 2 missing before this record"
    )
    assert str(check_lines([lines[0], lines[2], lines[1], *lines[3:]])) == (
        "line 2 (seq 2): reordered: seq 1 belongs here, found at line 3"
    )
    changed = lines[3].replace('"tool:t3/call"', '"tool:other/call"')
    assert str(check_lines([*lines[:3], changed, lines[4]])) == (
        "line 4 (seq 3): changed: its content does not give its hash"
    )
    head = read_head(path)
    assert str(check_lines(lines[:4], head)) == "head (seq 4): removed: seq 4 missing from the end"


def test_cli_verify(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    lines = write_log(path, 4)
    runner = CliRunner()
    ok = runner.invoke(cli, ["audit", "verify", str(path)])
    assert ok.exit_code == 0, ok.output
    assert "4 records, intact" in ok.output
    path.write_text("\n".join([lines[0], lines[2], lines[3]]) + "\n")
    bad = runner.invoke(cli, ["audit", "verify", str(path)])
    assert bad.exit_code == 1
    assert bad.output.strip().count("\n") == 0
    assert "line 2 (seq 2): removed: seq 1 missing" in bad.output
    missing = runner.invoke(cli, ["audit", "verify", str(tmp_path / "none.jsonl")])
    assert missing.exit_code == 1
    assert "cannot read" in missing.output


def test_a_log_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text("hello\n")
    with pytest.raises(InvalidInput, match="line 1: not an audit record"):
        verify(path)


_SHARED: dict[int, list[str]] = {}


def log_of(tmp: Path, count: int) -> list[str]:
    if count not in _SHARED:
        _SHARED[count] = write_log(tmp / f"{count}.jsonl", count)
    return _SHARED[count]


@pytest.fixture(scope="module")
def logs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audit")


@settings(max_examples=300, deadline=None)
@given(count=st.integers(1, 12), data=st.data())
def test_any_single_tampering_is_found_and_named(
    logs_dir: Path, count: int, data: st.DataObject
) -> None:
    lines = log_of(logs_dir, count)
    head = (count - 1, json.loads(lines[-1])["hash"])
    assert check_lines(lines, head) is None
    kind = data.draw(st.sampled_from(["change", "remove", "reorder", "rehash"]))
    at = data.draw(st.integers(0, count - 1))
    tampered = list(lines)
    if kind == "remove":
        del tampered[at]
    elif kind == "reorder":
        if count < 2:
            return
        other = data.draw(st.integers(0, count - 1).filter(lambda i: i != at))
        tampered[at], tampered[other] = tampered[other], tampered[at]
        at = min(at, other)
    else:
        record = json.loads(lines[at])
        field = data.draw(st.sampled_from(["actor", "subject", "outcome", "reason", "time"]))
        record[field] = record[field] + "x"
        if kind == "rehash":  # the tamperer makes the record's own hash anew
            from hive.runtime.identity.audit import content_hash

            record["hash"] = content_hash(record)
        tampered[at] = json.dumps(record, separators=(",", ":"))
    problem = check_lines(tampered, head)
    assert problem is not None, f"{kind} at {at} not found"
    if kind == "remove" and at == count - 1:
        assert problem.line == 0
        assert "removed" in problem.what
    elif kind == "rehash":
        assert "changed" in problem.what
        # the record after it names it; the last one is caught by the head
        assert problem.line == at + 2 or (at == count - 1 and problem.line == at + 1)
    else:
        assert problem.line == at + 1
        expected = {"change": "changed", "remove": "removed", "reorder": "reordered"}[kind]
        assert expected in problem.what
