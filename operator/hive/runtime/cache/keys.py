"""Cache keys from normalised requests: the same model, messages, tools and parameters (or the
same tool, ToolVersion and arguments) give the same key whatever the order of their fields."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ToolCaching:
    """A cacheable tool (its ToolVersion's ``cache``, side-effect free): how long its results
    are kept, and the fingerprint of the ToolVersion's spec they belong to."""

    ttl_s: float
    fingerprint: str


def canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces; values JSON does not know by their str()."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def digest(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def model_key(
    model: str,
    messages: Sequence[Mapping[str, Any]],
    tools: Sequence[Mapping[str, Any]] | None,
    options: Mapping[str, Any],
) -> str:
    return "model:" + digest([model, list(messages), list(tools or ()), dict(options)])


def tool_key(tool: str, fingerprint: str, arguments: Mapping[str, Any]) -> str:
    """`fingerprint` names the ToolVersion's spec: a changed ToolVersion gives new keys, so
    results of the old one are never read again (and expire)."""
    return f"tool:{tool}:" + digest([fingerprint, dict(arguments)])


def deterministic(options: Mapping[str, Any]) -> bool:
    """A request whose answer may be reused: at temperature 0, or seeded."""
    return options.get("temperature") == 0 or options.get("seed") is not None


def conversation_text(messages: Sequence[Mapping[str, Any]]) -> str:
    """What a semantic cache embeds: each message's role and text, one a line."""
    lines = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):  # parts: keep the text ones
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        lines.append(f"{message.get('role', '')}: {content or ''}")
    return "\n".join(lines)
