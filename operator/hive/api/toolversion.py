"""ToolVersion: one version of a tool's interface, and how to migrate calls from its predecessor."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, model_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from hive.api.common import Condition, HiveModel, SecretKeyRef, cel, list_map

# Semantic Versioning 2.0.0, the regular expression the specification suggests.
SEMVER = (
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
TOOL_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
JSON_SCHEMA: JsonDict = {"x-kubernetes-preserve-unknown-fields": True}


class ImplementationKind(StrEnum):
    BUILTIN = "builtin"
    HTTP = "http"
    PYTHON = "python"
    OPENAPI = "openapi"
    COMPOSITE = "composite"
    MCP = "mcp"


class ConfigMapKeyRef(HiveModel):
    """A key in a ConfigMap in the same namespace."""

    name: str = Field(min_length=1, max_length=253, description="Name of the ConfigMap.")
    key: str = Field(
        default="openapi.json", min_length=1, max_length=253, description="Key within it."
    )


class OpenAPIAuth(HiveModel):
    """The credential for the document's security scheme, from a Secret."""

    secret_ref: SecretKeyRef = Field(
        description="The Secret key holding the token, the API key, or 'user:password' (basic)."
    )
    scheme: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        description="Name of the scheme in the document's components.securitySchemes (http "
        "bearer, http basic, or apiKey in a header or the query); default: the first scheme "
        "an operation's security requirement names.",
    )


class OpenAPISource(HiveModel):
    """An OpenAPI 3.0/3.1 document and the operations of it that become functions."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "[has(self.document), has(self.configMapRef), has(self.url)]"
                    ".filter(x, x).size() == 1",
                    "exactly one of document, configMapRef and url",
                )
            ]
        }
    )

    document: dict[str, Any] | None = Field(
        default=None,
        description="The document itself (checked at admission).",
        json_schema_extra=JSON_SCHEMA,
    )
    config_map_ref: ConfigMapKeyRef | None = Field(
        default=None, description="A ConfigMap key holding the document (JSON or YAML)."
    )
    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="Where the document is served (JSON or YAML).",
    )
    operations: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="operationIds to offer; with tags, an operation is offered when either "
        "selects it; neither: every operation.",
    )
    tags: list[str] = Field(
        default_factory=list, max_length=100, description="Offer the operations with a tag."
    )
    server: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="Base URL of calls; default: the document's first server (relative to "
        "the document's URL).",
    )
    auth: OpenAPIAuth | None = Field(default=None, description="Credential for calls.")

    @model_validator(mode="after")
    def _one_source(self) -> OpenAPISource:
        sources = {"document": self.document, "configMapRef": self.config_map_ref, "url": self.url}
        given = [name for name, value in sources.items() if value is not None]
        if len(given) != 1:
            named = ", ".join(given) or "none"
            raise PydanticCustomError(
                "openapi_source",
                "exactly one of document, configMapRef and url (given: {named})",
                {"named": named},
            )
        return self


class HttpAuthType(StrEnum):
    BEARER = "bearer"
    HEADER = "header"
    QUERY = "query"


class HttpAuth(HiveModel):
    """kind http: the credential sent with every call, from a Secret."""

    type: HttpAuthType = Field(
        description="bearer (Authorization: Bearer <value>), header (an API key in a header) "
        "or query (an API key as a query parameter)."
    )
    secret_ref: SecretKeyRef = Field(description="The Secret key holding the token or key.")
    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=253,
        pattern=r"^[A-Za-z0-9_.-]+$",
        description="The header or query parameter carrying the key "
        "(default: X-API-Key for header, api_key for query; unused for bearer).",
    )


class McpHeader(HiveModel):
    """kind mcp: a header sent to the server with every request, its value from a Secret."""

    name: str = Field(
        min_length=1, max_length=253, pattern=r"^[A-Za-z0-9-]+$", description="Header name."
    )
    secret_ref: SecretKeyRef = Field(description="The Secret key holding the value.")
    prefix: str = Field(
        default="", max_length=64, description="Put before the value, e.g. 'Bearer '."
    )


class McpServer(HiveModel):
    """kind mcp: the MCP server whose tools become functions, and which of them."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("has(self.url) != has(self.command)", "exactly one of url and command")
            ]
        }
    )

    url: str | None = Field(
        default=None,
        max_length=2048,
        pattern=r"^https?://",
        description="Streamable HTTP endpoint of the server (e.g. http://search-mcp:8000/mcp).",
    )
    command: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="hive run only: the command of a stdio server, started as a child process "
        "(the operator does not run commands; it reports such a version as LocalOnly).",
    )
    args: list[str] = Field(default_factory=list, max_length=100, description="Its arguments.")
    headers: list[McpHeader] = Field(
        default_factory=list, max_length=20, description="url only: headers from Secrets."
    )
    tools: list[str] = Field(
        default_factory=list,
        max_length=500,
        description="Names of the server's tools to offer; empty: every tool it lists.",
    )

    @model_validator(mode="after")
    def _one_transport(self) -> McpServer:
        if (self.url is None) == (self.command is None):
            raise PydanticCustomError("mcp_server", "exactly one of url and command", {})
        if self.command is not None and self.headers:
            raise PydanticCustomError("mcp_server", "headers: only with url", {})
        return self


class CompositeSource(HiveModel):
    """kind composite: the tool written in the composition language, a graph of calls to
    other tools (hive.runtime.tooling.compose); checked at admission against the
    namespace's ToolVersions."""

    source: str = Field(
        min_length=1,
        max_length=262144,
        description="COMPOSITE name [INPUT a, b] [OUTPUT c] AS, then one step a line: "
        "'source -> tool@range[param=value, p2=var] -> target'.",
    )


class Implementation(HiveModel):
    """Where calls to this version go."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.kind != 'openapi' || (has(self.openapi) && !has(self.ref))",
                    "kind openapi takes implementation.openapi, and no ref",
                ),
                cel(
                    "self.kind == 'openapi' || !has(self.openapi)", "openapi: only for kind openapi"
                ),
                cel("(self.kind == 'mcp') == has(self.mcp)", "mcp: required for kind mcp, only"),
                cel(
                    "(self.kind == 'composite') == has(self.composite)",
                    "composite: required for kind composite, and only for it",
                ),
                cel(
                    "!(self.kind in ['builtin', 'http', 'python']) || has(self.ref)",
                    "ref: required for kinds builtin, http and python",
                ),
            ]
        }
    )

    kind: ImplementationKind = Field(
        description="builtin (shipped with Hive), http (POST the arguments), python "
        "(module:function run in the code sandbox), openapi (operations of a document) or "
        "mcp (tools of an MCP server)."
    )
    ref: str | None = Field(
        default=None,
        min_length=1,
        max_length=2048,
        description="Builtin name, URL or 'module:function' (every kind but openapi).",
    )
    openapi: OpenAPISource | None = Field(
        default=None, description="kind openapi: the document and the operations offered."
    )
    mcp: McpServer | None = Field(
        default=None, description="kind mcp: the server and the tools of it offered."
    )
    composite: CompositeSource | None = Field(
        default=None, description="kind composite: its source in the composition language."
    )
    timeout_seconds: float = Field(default=30, gt=0, le=3600, description="Per-call timeout.")
    auth: HttpAuth | None = Field(default=None, description="kind http: the credential.")
    retries: int = Field(
        default=2,
        ge=0,
        le=10,
        description="kind http: calls answered 429 or 5xx (or not answered) are tried again "
        "this many times, with exponential backoff (Retry-After honoured).",
    )

    @model_validator(mode="after")
    def _source_of_kind(self) -> Implementation:
        openapi = self.kind == ImplementationKind.OPENAPI
        if openapi and self.openapi is None:
            raise PydanticCustomError("implementation", "openapi: required for kind openapi", {})
        if openapi and self.ref is not None:
            raise PydanticCustomError(
                "implementation", "ref: kind openapi takes implementation.openapi, not ref", {}
            )
        if not openapi and self.openapi is not None:
            raise PydanticCustomError(
                "implementation",
                "openapi: only for kind openapi, not {kind}",
                {"kind": str(self.kind)},
            )
        if (self.kind == ImplementationKind.MCP) != (self.mcp is not None):
            raise PydanticCustomError("implementation", "mcp: required for kind mcp, only", {})
        if (self.kind == ImplementationKind.COMPOSITE) != (self.composite is not None):
            raise PydanticCustomError(
                "implementation", "composite: required for kind composite, and only for it", {}
            )
        if self.kind in _REF_KINDS and self.ref is None:
            raise PydanticCustomError(
                "implementation", "ref: required for kind {kind}", {"kind": str(self.kind)}
            )
        return self


_REF_KINDS = {ImplementationKind.BUILTIN, ImplementationKind.HTTP, ImplementationKind.PYTHON}


class MigrationOp(StrEnum):
    RENAME = "rename"
    DEFAULT = "default"
    DROP = "drop"
    TRANSFORM = "transform"
    MAP = "map"


class Transform(StrEnum):
    TO_STRING = "to-string"
    TO_INTEGER = "to-integer"
    TO_NUMBER = "to-number"
    TO_LIST = "to-list"
    LOWERCASE = "lowercase"
    UPPERCASE = "uppercase"
    SPLIT_COMMA = "split-comma"
    JOIN_COMMA = "join-comma"


class MigrationStep(HiveModel):
    """One declarative change applied to the arguments of a call made against the old version."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel("self.op != 'rename' || has(self.to)", "a rename step needs 'to'", ".to"),
                cel(
                    "self.op != 'transform' || has(self.transform)",
                    "a transform step needs 'transform'",
                    ".transform",
                ),
            ]
        }
    )

    op: MigrationOp = Field(description="rename, default, drop or transform.")
    field: str = Field(
        min_length=1,
        max_length=256,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description="Dotted path of the argument the step changes, e.g. 'query' or 'opts.limit'.",
    )
    to: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$",
        description="rename: the new dotted path.",
    )
    value: Any = Field(
        default=None,
        description="default: the value set when the argument is absent.",
        json_schema_extra=JSON_SCHEMA,
    )
    transform: Transform | None = Field(default=None, description="transform: the conversion.")
    values: dict[str, Any] | None = Field(
        default=None,
        description="map: old value (as text) -> new value; values not listed are kept.",
        json_schema_extra=JSON_SCHEMA,
    )

    @model_validator(mode="after")
    def _needs_its_operand(self) -> MigrationStep:
        needs = {"rename": "to", "default": "value", "transform": "transform", "map": "values"}.get(
            str(self.op)
        )
        if needs and getattr(self, needs) is None:
            raise ValueError(f"a {self.op} step needs '{needs}'")
        return self


class Migration(HiveModel):
    """How a call written for the previous version becomes a call to this one."""

    from_version: str = Field(
        alias="from",
        pattern=SEMVER,
        description="The version this migration starts from: the tool's next older version, "
        "which must exist: until it does, this version is Ready=False (MigrationChainBroken).",
    )
    steps: list[MigrationStep] = Field(
        default_factory=list, max_length=100, description="Steps, applied in order."
    )
    reverse: list[MigrationStep] = Field(
        default_factory=list,
        max_length=100,
        description="Steps applied, in order, to this version's result so that a caller "
        "written for the previous version gets the result it expects.",
    )


class Deprecation(HiveModel):
    """Whether agents should stop asking for this version."""

    deprecated: bool = Field(default=False, description="Agents get a warning when they use it.")
    message: str | None = Field(default=None, max_length=1024, description="What to use instead.")
    sunset: dt.datetime | None = Field(default=None, description="When it stops being served.")


class ToolCacheSpec(HiveModel):
    """Results of this version reused by the agents' caches (of teams with spec.cache)."""

    ttl_seconds: int = Field(
        default=300,
        ge=1,
        le=7 * 24 * 3600,
        description="How long a result of the same arguments is reused.",
    )


class ToolVersionSpec(HiveModel):
    """One version of a tool."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "!has(self.cache) || (has(self.sideEffects) && !self.sideEffects)",
                    "cache: only for a tool declared sideEffects: false",
                    ".cache",
                )
            ]
        }
    )

    tool: str = Field(min_length=1, max_length=63, pattern=TOOL_NAME, description="Tool name.")
    version: str = Field(pattern=SEMVER, max_length=128, description="Semantic version.")
    description: str = Field(
        default="", max_length=4096, description="What the tool does, shown to the model."
    )
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="JSON Schema of the arguments (kind openapi takes each function's from "
        "its document instead).",
        json_schema_extra=JSON_SCHEMA,
    )
    output_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object"},
        description="JSON Schema of the result.",
        json_schema_extra=JSON_SCHEMA,
    )
    implementation: Implementation = Field(description="Where calls go.")
    migration: Migration | None = Field(
        default=None, description="Migration from the previous version; none for the first."
    )
    deprecation: Deprecation = Field(default_factory=Deprecation, description="Deprecation.")
    side_effects: bool = Field(
        default=True,
        description="Whether a call changes anything beyond answering (writes, sends, buys); "
        "false: calls may be cached (cache) and started early by predictive prefetch.",
    )
    cache: ToolCacheSpec | None = Field(
        default=None,
        description="Reuse results of the same arguments (needs sideEffects: false); any change "
        "to this ToolVersion starts a new cache, so old results are never read again.",
    )

    def config_map_names(self) -> list[str]:
        """The ConfigMaps the implementation reads (an OpenAPI document's ``configMapRef``):
        an agent's Role may get exactly these."""
        source = self.implementation.openapi
        ref = source.config_map_ref if source is not None else None
        return [ref.name] if ref is not None else []

    def endpoint_ports(self) -> list[int]:
        """TCP ports of the endpoints the spec names (http ``ref``, an OpenAPI ``server`` or
        document ``url``, an MCP ``url``): what an agent's NetworkPolicy must let it reach. A
        server named only inside an OpenAPI document is not known here."""
        implementation = self.implementation
        urls = [
            implementation.ref if implementation.kind == ImplementationKind.HTTP else None,
            implementation.openapi.server if implementation.openapi else None,
            implementation.openapi.url if implementation.openapi else None,
            implementation.mcp.url if implementation.mcp else None,
        ]
        ports: set[int] = set()
        for url in urls:
            if not url:
                continue
            parsed = urlsplit(url)
            try:
                port = parsed.port
            except ValueError:
                continue
            if parsed.scheme in ("http", "https"):
                ports.add(port or (443 if parsed.scheme == "https" else 80))
        return sorted(ports)

    def secret_refs(self) -> list[tuple[str, str]]:
        """(secret, key) of every Secret key the implementation names, whatever its kind (http
        auth, an OpenAPI credential, MCP headers): its ``secretRef`` fields."""
        refs: set[tuple[str, str]] = set()
        pending: list[Any] = [self.implementation.model_dump(mode="json", by_alias=True)]
        while pending:
            value = pending.pop()
            if isinstance(value, dict):
                ref = value.get("secretRef")
                if isinstance(ref, dict) and isinstance(ref.get("name"), str):
                    refs.add((ref["name"], str(ref.get("key"))))
                pending += value.values()
            elif isinstance(value, list):
                pending += value
        return sorted(refs)

    @model_validator(mode="after")
    def _schema_of_kind(self) -> ToolVersionSpec:
        openapi = self.implementation.kind == ImplementationKind.OPENAPI
        if openapi and "input_schema" in self.model_fields_set:
            raise PydanticCustomError(
                "input_schema",
                "inputSchema: kind openapi takes each function's schema from its document",
                {},
            )
        return self

    @model_validator(mode="after")
    def _cache_without_side_effects(self) -> ToolVersionSpec:
        if self.cache is not None and self.side_effects:
            raise PydanticCustomError(
                "cache", "cache: only for a tool declared sideEffects: false", {}
            )
        return self


class ToolFunction(HiveModel):
    """One function the version offers (kind openapi: one per selected operation)."""

    name: str = Field(description="Name the model calls it by.")
    method: str = Field(description="HTTP method.")
    path: str = Field(description="Path template in the document.")


class DiscoveredTool(HiveModel):
    """kind mcp: one tool the server lists, as the operator last saw it."""

    name: str = Field(description="The tool's name on the server.")
    description: str = Field(default="", description="What the server says it does.")
    input_schema: dict[str, Any] = Field(
        default_factory=dict,
        description="JSON Schema of its arguments.",
        json_schema_extra=JSON_SCHEMA,
    )


class ToolConsumer(HiveModel):
    """One agent that uses this version: its range selects it, or it called it recently."""

    agent: str = Field(description="team/agent.")
    selects: bool = Field(
        default=False, description="The agent's range resolves to this version now."
    )
    calls: int = Field(default=0, ge=0, description="Calls within the recent window.")
    last_call: dt.datetime | None = Field(default=None, description="The latest call.")


class ToolVersionStatus(HiveModel):
    """What the operator found about this version among the tool's versions."""

    observed_generation: int | None = Field(default=None, ge=0, description="Last reconciled.")
    latest: bool | None = Field(default=None, description="This is the newest version.")
    latest_version: str | None = Field(default=None, description="The tool's newest version.")
    deprecated: bool | None = Field(default=None, description="This version is deprecated.")
    migration_path_valid: bool | None = Field(
        default=None, description="A migration chain reaches this version from the oldest one."
    )
    migration_path: list[str] = Field(
        default_factory=list, description="Versions from the oldest to this one."
    )
    consumers: list[ToolConsumer] = Field(
        default_factory=list,
        description="Agents (team/agent) whose range selects this version, and those that "
        "called it within the recent window, with their calls.",
    )
    functions: list[ToolFunction] = Field(
        default_factory=list,
        description="kind openapi: the functions made from the document's operations.",
        json_schema_extra=list_map("name"),
    )
    discovered_tools: list[DiscoveredTool] = Field(
        default_factory=list,
        description="kind mcp: the tools the server lists now (kept in step with its changes).",
        json_schema_extra=list_map("name"),
    )
    function_count: int | None = Field(
        default=None,
        ge=0,
        description="The functions agents get from this version: the document's operations "
        "made into functions (openapi) or the server's tools offered (mcp).",
    )
    consumer_count: int | None = Field(
        default=None, ge=0, description="Agents in status.consumers."
    )
    calls: int | None = Field(
        default=None, ge=0, description="Calls of this version by all its consumers in the window."
    )
    conditions: list[Condition] = Field(
        default_factory=list, description="Ready.", json_schema_extra=list_map("type")
    )
