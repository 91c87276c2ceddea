"""Discovery: the catalog kept in step with the ToolVersions present, while agents run.

In a pod, `ClusterFeed` takes the namespace's ToolVersions as ``hive.kube.toolversions``
lists and watches them (the runtime never talks to the API server itself): a new or changed
version enters the catalog at once, a deleted one leaves it. Locally, `FolderWatch` polls a
folder of YAML/JSON files (``hive run --tools DIR``; no dependency, a few stat calls a tick):
every ToolVersion document in it is in the catalog, and every Secret document gives the values
that versions' credentials name. A document that does not validate is left out with a warning
naming the file (or object) and the field. MCP servers given on the command line (``hive run
--mcp [NAME=]SERVER``) are versions too (`command_line_servers`), always in the catalog beside
the folder's.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import re
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from hive.api.common import describe_validation_error
from hive.api.toolversion import TOOL_NAME, DiscoveredTool, ToolVersionSpec
from hive.errors import InvalidInput
from hive.runtime.tooling.catalog import Catalog, CatalogEntry

log = logging.getLogger(__name__)
SUFFIXES = (".yaml", ".yml", ".json")
COMMAND_LINE_TOOL = "mcp"  # the tool name of a server given without NAME=
COMMAND_LINE_VERSION = "1.0.0"
_NAMED = re.compile(r"^(?P<name>[a-z0-9]([-a-z0-9]*[a-z0-9])?)=(?P<server>(stdio:|https?://).*)$")
_SERVER_FORMS = "a streamable-HTTP URL (http://HOST:PORT/mcp) or stdio:COMMAND [ARGS...]"


def entry_of(obj: Mapping[str, Any], source: str) -> CatalogEntry | None:
    """The catalog entry of a ToolVersion object, or None (logged) when its spec is invalid."""
    meta = obj.get("metadata") or {}
    name = str(meta.get("name") or source)
    try:
        spec = ToolVersionSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        log.warning(
            "ToolVersion %s (%s) left out: %s", name, source, describe_validation_error(exc)
        )
        return None
    return CatalogEntry(
        spec, name, source, announced_tools(obj) if spec.implementation.kind == "mcp" else ()
    )


def announced_tools(obj: Mapping[str, Any]) -> tuple[DiscoveredTool, ...]:
    """status.discoveredTools of an mcp version: what the operator's session saw the server
    offer (an entry it cannot read is left out: the agent's own session lists the server)."""
    found = []
    for item in (obj.get("status") or {}).get("discoveredTools") or []:
        try:
            found.append(DiscoveredTool.model_validate(item))
        except ValidationError:
            continue
    return tuple(found)


def secret_refs(specs: Iterable[ToolVersionSpec]) -> list[tuple[str, str]]:
    """(secret, key) of every Secret key the versions' implementations name (any kind)."""
    return sorted({ref for spec in specs for ref in spec.secret_refs()})


def command_line_servers(values: Sequence[str], flag: str = "--mcp") -> list[CatalogEntry]:
    """One mcp ToolVersion per server given as ``[NAME=]SERVER``: SERVER a streamable-HTTP URL
    or ``stdio:COMMAND [ARGS...]`` (split as a shell would, started as a child process). Its
    tools are functions of tool NAME (default ``mcp``), version 1.0.0, which agents list in
    their ``tools`` as any other; a server's new tools appear while the team runs."""
    entries: list[CatalogEntry] = []
    for value in values:
        named = _NAMED.match(value)
        tool, server = (named["name"], named["server"]) if named else (COMMAND_LINE_TOOL, value)
        if server.startswith("stdio:"):
            try:
                words = shlex.split(server.removeprefix("stdio:"))
            except ValueError as exc:
                raise InvalidInput(flag, f"{value!r}: {exc}") from exc
            if not words:
                raise InvalidInput(flag, f"{value!r}: stdio: needs a command")
            mcp: dict[str, Any] = {"command": words[0], "args": words[1:]}
        elif server.startswith(("http://", "https://")):
            mcp = {"url": server}
        else:
            raise InvalidInput(flag, f"{value!r} is not {_SERVER_FORMS}, optionally as NAME=...")
        if any(e.spec.tool == tool for e in entries):
            raise InvalidInput(
                flag,
                f"two servers as tool {tool!r}: name them apart (NAME=SERVER, NAME as {TOOL_NAME})",
            )
        spec = {
            "tool": tool,
            "version": COMMAND_LINE_VERSION,
            "description": f"The tools of the MCP server {server.removeprefix('stdio:')}",
            "implementation": {"kind": "mcp", "mcp": mcp},
        }
        try:
            parsed = ToolVersionSpec.model_validate(spec)
        except ValidationError as exc:
            raise InvalidInput(flag, f"{value!r}: {describe_validation_error(exc)}") from exc
        entries.append(CatalogEntry(parsed, f"{tool}-command-line", f"{flag} {value}"))
    return entries


@dataclass
class ClusterFeed:
    """Hands what the API server says about the namespace's ToolVersions to the catalog."""

    catalog: Catalog
    namespace: str

    def on_list(self, objects: Sequence[Mapping[str, Any]]) -> None:
        entries = [
            e
            for o in objects
            if not (o.get("metadata") or {}).get("deletionTimestamp")
            and (e := entry_of(o, self._source(o))) is not None
        ]
        self.catalog.replace(entries)

    def on_event(self, kind: str, obj: Mapping[str, Any]) -> None:
        name = str((obj.get("metadata") or {}).get("name"))
        if kind == "DELETED" or (obj.get("metadata") or {}).get("deletionTimestamp"):
            self.catalog.remove(name)
            return
        entry = entry_of(obj, self._source(obj))
        if entry is None:
            self.catalog.remove(name)  # an invalid change: the old spec is no longer declared
        else:
            self.catalog.put(entry)

    def _source(self, obj: Mapping[str, Any]) -> str:
        return f"{self.namespace}/{(obj.get('metadata') or {}).get('name')}"


@dataclass
class FolderWatch:
    """A folder's ToolVersion and Secret documents, read again whenever a file changes."""

    folder: Path
    catalog: Catalog
    poll_s: float = 0.2
    fixed: Sequence[CatalogEntry] = ()  # always in the catalog (servers of the command line)
    secrets: dict[str, str] = field(default_factory=dict)  # "<secret>/<key>" -> value
    _seen: dict[Path, tuple[int, int]] | None = None

    def scan(self) -> bool:
        """Read the folder again if any file came, went or changed; True when it did."""
        snapshot = self._snapshot()
        if snapshot == self._seen:
            return False
        self._seen = snapshot
        entries: list[CatalogEntry] = []
        secrets: dict[str, str] = {}
        for path in sorted(snapshot):
            for index, doc in enumerate(_documents(path)):
                source = f"{path}#{index}" if index else str(path)
                if doc.get("kind") == "ToolVersion":
                    entry = entry_of(doc, source)
                    if entry is not None:
                        entries.append(entry)
                elif doc.get("kind") == "Secret":
                    secrets.update(_secret_values(doc))
        self.secrets = secrets
        self.catalog.replace([*self.fixed, *entries])
        return True

    async def secrets_for(self, specs: Sequence[ToolVersionSpec]) -> Mapping[str, str]:
        return dict(self.secrets)

    async def run(self) -> None:
        """Until cancelled: scan every `poll_s`."""
        while True:
            try:
                self.scan()
            except OSError as exc:
                log.warning("reading tools from %s: %s", self.folder, exc)
            await asyncio.sleep(self.poll_s)

    def _snapshot(self) -> dict[Path, tuple[int, int]]:
        found: dict[Path, tuple[int, int]] = {}
        if not self.folder.is_dir():
            return found
        for path in self.folder.rglob("*"):
            if path.suffix in SUFFIXES and path.is_file():
                try:
                    stat = path.stat()
                except FileNotFoundError:
                    continue
                found[path] = (stat.st_mtime_ns, stat.st_size)
        return found


def _documents(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
        docs = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        log.warning("tools file %s left out: %s", path, exc)
        return []
    return [d for d in docs if isinstance(d, dict)]


def _secret_values(doc: Mapping[str, Any]) -> dict[str, str]:
    name = (doc.get("metadata") or {}).get("name")
    values: dict[str, str] = {}
    for key, value in (doc.get("data") or {}).items():
        try:
            values[f"{name}/{key}"] = base64.b64decode(str(value), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            log.warning("Secret %s key %s: not base64 UTF-8 text, left out", name, key)
    for key, value in (doc.get("stringData") or {}).items():
        values[f"{name}/{key}"] = str(value)
    return values
