"""Checking an audit log: the first changed, removed or reordered record, named.

A record is *changed* when its content no longer gives its ``hash``, or when its hash (made
anew to cover a change) is no longer the ``prev`` of the record after it; *removed* when a
sequence number is missing (from the middle, or from the end as the log's head file records
it); *reordered* when a sequence number comes later than its place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hive.errors import InvalidInput
from hive.runtime.identity.audit import GENESIS, content_hash, read_head


@dataclass(frozen=True)
class Problem:
    line: int  # 1-based; 0 for the head file
    seq: int | None
    what: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "head"
        if self.seq is not None:
            where += f" (seq {self.seq})"
        return f"{where}: {self.what}"


def _parse(line: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    if not isinstance(record.get("seq"), int) or not isinstance(record.get("hash"), str):
        return None
    if not isinstance(record.get("prev"), str):
        return None
    return record


def check_lines(lines: list[str], head: tuple[int, str] | None = None) -> Problem | None:
    """The first problem in a log's lines (without newlines), or None when it is intact."""
    records = [_parse(line) for line in lines]
    seqs = [r["seq"] if r else None for r in records]
    prev = GENESIS
    for index, record in enumerate(records):
        number = index + 1
        if record is None:
            return Problem(number, None, "not an audit record")
        seq = record["seq"]
        if seq != index:
            if index in seqs[index + 1 :]:
                at = seqs.index(index, index + 1) + 1
                what = f"reordered: seq {index} belongs here, found at line {at}"
                return Problem(number, seq, what)
            if seq > index:
                gone = f"seq {index}" if seq == index + 1 else f"seq {index}..{seq - 1}"
                return Problem(number, seq, f"removed: {gone} missing before this record")
            return Problem(number, seq, f"reordered or repeated: seq {index} belongs here")
        if content_hash(record) != record["hash"]:
            return Problem(number, seq, "changed: its content does not give its hash")
        if record["prev"] != prev:
            what = (
                f"changed: line {number - 1} (seq {seq - 1}) is not the record this one follows"
                if index
                else "changed: the first record does not start the chain"
            )
            return Problem(number, seq, what)
        prev = record["hash"]
    if head is not None:
        last_seq, last_hash = head
        if last_seq >= len(records):
            gone = f"seq {len(records)}" + (f"..{last_seq}" if last_seq > len(records) else "")
            return Problem(0, last_seq, f"removed: {gone} missing from the end")
        if records[last_seq]["hash"] != last_hash:  # type: ignore[index]
            what = "changed: its hash is not the one the head holds"
            return Problem(last_seq + 1, last_seq, what)
    return None


def verify(path: Path) -> int:
    """Check the log at `path` (and its head file when there is one); returns the number of
    records. Raises InvalidInput naming the first problem."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise InvalidInput(str(path), f"cannot read: {exc.strerror or exc}") from exc
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    problem = check_lines(lines, read_head(path))
    if problem is not None:
        raise InvalidInput(str(path), str(problem))
    return len(lines)
