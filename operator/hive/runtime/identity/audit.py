"""The audit log: who did what, on whose authority, with what outcome.

Records are JSON lines appended to one file per team, each shipped as one line to the process
log (logger ``hive.audit``) as well. Every record carries its sequence number, the SHA-256 of
its own content (``hash``) and the hash of the record before it (``prev``; 64 zeros for the
first), so a changed, removed or reordered record breaks the chain where it happened
(:mod:`hive.runtime.identity.auditcheck` finds and names it). A small ``<file>.head`` beside the
log holds the last sequence number and hash, so that records cut from the end are found too.

A record::

    {"seq": 3, "time": "2026-11-30T00:19:23.412Z", "actor": "agent/coder",
     "action": "tool-call", "subject": "tool:search/call", "authority": ["cert-1", "cert-0"],
     "outcome": "ok", "reason": "", "prev": "<64 hex>", "hash": "<64 hex>"}
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from hive.errors import InvalidInput

GENESIS = "0" * 64
LOG = logging.getLogger("hive.audit")
HEAD_SUFFIX = ".head"
_TAIL_BYTES = 1 << 16


class Action(StrEnum):
    ACCESS = "access"  # an access decision: outcome allowed or refused
    DELEGATION = "delegation"
    CERTIFICATE = "certificate-check"
    SECRET_READ = "secret-read"  # noqa: S105 (an action, not a secret)
    TOOL_CALL = "tool-call"
    PEER_CALL = "peer-call"
    PRIVACY = "privacy"  # personal data found at a boundary, and how it was handled


class Outcome(StrEnum):
    ALLOWED = "allowed"
    REFUSED = "refused"
    OK = "ok"
    FAILED = "failed"


def agent_actor(name: str) -> str:
    return f"agent/{name}"


OPERATOR = "operator"


def content_hash(record: dict[str, Any]) -> str:
    """SHA-256 of a record's canonical JSON, without its own ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def head_path(path: Path) -> Path:
    return path.with_name(path.name + HEAD_SUFFIX)


def _head_line(seq: int, digest: str) -> bytes:
    return f"{seq:020d} {digest}\n".encode()  # fixed width: rewritten in place


def read_head(path: Path) -> tuple[int, str] | None:
    """The last sequence number and hash the writer recorded, or None without a head file."""
    try:
        text = head_path(path).read_text()
    except FileNotFoundError:
        return None
    seq, _, digest = text.strip().partition(" ")
    if not seq.isdigit() or len(digest) != 64:
        raise InvalidInput(str(head_path(path)), "not an audit head (sequence and hash)")
    return int(seq), digest


def _last_record(path: Path) -> dict[str, Any] | None:
    """The last line of an existing log, read from its end."""
    try:
        with path.open("rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read().rstrip(b"\n")
    except FileNotFoundError:
        return None
    if not tail:
        return None
    last = tail.rsplit(b"\n", 1)[-1]
    try:
        record: dict[str, Any] = json.loads(last)
        int(record["seq"])
        str(record["hash"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InvalidInput(str(path), "its last line is not an audit record") from exc
    return record


class AuditLog:
    """Appends records to `path` (created with its folder), continuing an existing chain."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        last = _last_record(path)
        self.seq = int(last["seq"]) + 1 if last else 0
        self.prev = str(last["hash"]) if last else GENESIS
        self._lock = threading.Lock()
        self._file = path.open("ab", buffering=0)
        self._head = os.open(head_path(path), os.O_WRONLY | os.O_CREAT, 0o644)

    def record(
        self,
        actor: str,
        action: Action,
        subject: str,
        outcome: Outcome,
        reason: str = "",
        authority: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Append one record and ship it to the process log; returns it."""
        with self._lock:
            now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")
            record: dict[str, Any] = {
                "seq": self.seq,
                "time": now.replace("+00:00", "Z"),
                "actor": actor,
                "action": action.value,
                "subject": subject,
                "authority": list(authority),
                "outcome": outcome.value,
                "reason": reason,
                "prev": self.prev,
            }
            record["hash"] = content_hash(record)
            line = json.dumps(record, separators=(",", ":"), ensure_ascii=False)
            self._file.write(line.encode() + b"\n")
            os.pwrite(self._head, _head_line(self.seq, record["hash"]), 0)
            self.seq += 1
            self.prev = record["hash"]
        LOG.info("%s", line)
        return record

    def close(self) -> None:
        self._file.close()
        os.close(self._head)


def team_log_path(folder: Path, namespace: str, team: str) -> Path:
    """The team's audit file in `folder`."""
    return folder / f"{namespace}.{team}.audit.jsonl"
