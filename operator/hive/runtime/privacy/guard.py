"""One team's privacy policy at work in a process: texts scrubbed at a boundary, what was found
counted for the compliance report and recorded in the audit log, pseudonyms restored for the
run's requester.

`scrub` takes anything a boundary carries (text, bytes, JSON-like values): bytes that are not
UTF-8 are decoded with replacement characters before detection, so binary tool output is
scrubbed, never a crash.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hive.api.agentteam import PrivacyStatus
from hive.api.privacy import Boundary, PrivacySpec, Strategy
from hive.runtime.identity.audit import Action, AuditLog, Outcome, agent_actor
from hive.runtime.privacy.detect import Detector
from hive.runtime.privacy.handling import Pseudonyms, apply, derive_key
from hive.runtime.privacy.keyring import Keyring


@dataclass
class Ledger:
    """Counts of findings by (entity, boundary, source, strategy) since the process started."""

    counts: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)
    started: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, entity: str, boundary: Boundary, source: str, strategy: Strategy) -> None:
        with self._lock:
            self.counts[(entity, boundary.value, source, strategy.value)] += 1

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            items = sorted(self.counts.items())
        return [
            {"entity": e, "boundary": b, "source": s, "strategy": st, "count": n}
            for (e, b, s, st), n in items
        ]


class Guard:
    """The policy `spec` of one agent (`agent`) with its detector, key and salt: `keyring` (the
    team's transit key) seals pseudonyms where given, else the local `key`; the hash strategy
    takes `salt`, else the keyring's digest (transit) or the key's first half."""

    def __init__(
        self,
        spec: PrivacySpec,
        *,
        agent: str = "",
        key: str | bytes | None = None,
        salt: str | bytes | None = None,
        audit: AuditLog | None = None,
        detector: Detector | None = None,
        keyring: Keyring | None = None,
    ) -> None:
        self.spec = spec
        self.agent = agent
        self.detector = detector or Detector(spec.mode, spec.min_score, spec.recognizers)
        if keyring is not None:  # the team's transit key: pseudonyms and hashes team-wide
            self.pseudonyms = Pseudonyms(keyring=keyring)
            default_salt: bytes | None = None
        else:
            self.pseudonyms = Pseudonyms(derive_key(key))
            default_salt = self.pseudonyms.key[:32]
        self.salt = (salt.encode() if isinstance(salt, str) else salt) or default_salt
        self.audit = audit
        self.ledger = Ledger()
        self._entities = spec.entities()

    def applies(self, boundary: Boundary) -> bool:
        return boundary in self.spec.boundaries and bool(self._entities)

    def scrub_text(self, text: str, boundary: Boundary, source: str = "") -> str:
        if not text or not self.applies(boundary):
            return text
        findings = [
            f
            for f in self.detector.analyze(text, self._entities)
            if not self.pseudonyms.is_pseudonym(f.text(text))  # handled already
        ]
        if not findings:
            return text
        found: Counter[str] = Counter()
        for finding in findings:
            rule = self.spec.strategy(finding.entity)
            strategy = Strategy(rule.strategy) if rule else Strategy.ALLOW
            self.ledger.add(finding.entity, boundary, source, strategy)
            found[f"{finding.entity}:{strategy.value}"] += 1
        if self.audit is not None:
            self.audit.record(
                agent_actor(self.agent) if self.agent else "runtime",
                Action.PRIVACY,
                f"privacy:{boundary.value}:{source}",
                Outcome.OK,
                reason=json.dumps(dict(sorted(found.items())), separators=(",", ":")),
            )
        sealing = [
            (f.entity, f.text(text))
            for f in findings
            if (rule := self.spec.strategy(f.entity)) and rule.strategy == Strategy.PSEUDONYMISE
        ]
        self.pseudonyms.prepare(sealing)  # one request to a transit key for the whole text
        return apply(self.spec, text, findings, self.salt, self.pseudonyms)

    def scrub(self, value: Any, boundary: Boundary, source: str = "") -> Any:
        """`value` with every text in it scrubbed (strings, bytes, lists, dicts' values)."""
        if isinstance(value, str):
            return self.scrub_text(value, boundary, source)
        if isinstance(value, bytes | bytearray | memoryview):
            return self.scrub_text(bytes(value).decode("utf-8", "replace"), boundary, source)
        if isinstance(value, Mapping):
            return {k: self.scrub(v, boundary, source) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.scrub(v, boundary, source) for v in value)
        return value

    def status(self, now: dt.datetime) -> PrivacyStatus:
        """The team's status.privacy from what this guard counted since its pod started."""
        by_entity: Counter[str] = Counter()
        by_boundary: Counter[str] = Counter()
        actions: Counter[str] = Counter()
        in_clear: set[str] = set()
        for row in self.ledger.rows():
            by_entity[row["entity"]] += row["count"]
            by_boundary[row["boundary"]] += row["count"]
            actions[row["strategy"]] += row["count"]
            if row["strategy"] == Strategy.ALLOW.value:
                in_clear.add(f"{row['boundary']}:{row['source']}")
        return PrivacyStatus(
            since=self.ledger.started.replace(microsecond=0),
            reported_at=now.replace(microsecond=0),
            found=by_entity.total(),
            by_entity=dict(by_entity),
            by_boundary=dict(by_boundary),
            actions=dict(actions),
            in_clear=sorted(in_clear)[:50],
        )

    def summary(self) -> str:
        """One line for the run's report: what was found, how it was handled, what went out in
        clear (strategy allow)."""
        rows = self.ledger.rows()
        if not rows:
            return "no personal data found"
        entities: Counter[str] = Counter()
        strategies: Counter[str] = Counter()
        clear: Counter[str] = Counter()
        for row in rows:
            entities[row["entity"]] += row["count"]
            strategies[row["strategy"]] += row["count"]
            if row["strategy"] == Strategy.ALLOW.value:
                clear[f"{row['boundary']}:{row['source']}"] += row["count"]
        found = ", ".join(f"{e} {n}" for e, n in entities.most_common())
        handled = ", ".join(f"{s} {n}" for s, n in strategies.most_common())
        out = ", ".join(f"{d} {n}" for d, n in clear.most_common()) or "none"
        return f"{entities.total()} found ({found}); handled: {handled}; in clear: {out}"

    def restores_for(self, tool: str) -> bool:
        """Whether `tool` gets real values (spec.privacy.restoreForTools)."""
        return tool in self.spec.restore_for_tools

    def restore_for_tool(self, value: Any, tool: str) -> Any:
        """`value` (a tool call's arguments) with its pseudonyms restored for `tool`, one of
        spec.privacy.restoreForTools: each value restored is counted, and audited, as sent in
        clear to ``toolInputs:tool:<tool>``."""
        restored: Counter[str] = Counter()

        def walk(item: Any) -> Any:
            if isinstance(item, str):
                text, entities = self.pseudonyms.restore_counted(item)
                restored.update(entities)
                return text
            if isinstance(item, Mapping):
                return {k: walk(v) for k, v in item.items()}
            if isinstance(item, list | tuple):
                return type(item)(walk(v) for v in item)
            return item

        out = walk(value)
        source = f"tool:{tool}"
        for entity, count in restored.items():
            for _ in range(count):
                self.ledger.add(entity, Boundary.TOOL_INPUTS, source, Strategy.ALLOW)
        if restored and self.audit is not None:
            found = {f"{entity}:{Strategy.ALLOW.value}": n for entity, n in restored.items()}
            self.audit.record(
                agent_actor(self.agent) if self.agent else "runtime",
                Action.PRIVACY,
                f"privacy:{Boundary.TOOL_INPUTS.value}:{source}",
                Outcome.OK,
                reason=json.dumps(dict(sorted(found.items())), separators=(",", ":")),
            )
        return out

    def restore(self, text: str) -> str:
        """Pseudonyms in `text` back to their values: for the run's requester only."""
        if not self.spec.restore_for_requester:
            return text
        return self.pseudonyms.restore(text)
