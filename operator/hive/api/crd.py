"""CustomResourceDefinitions generated from the pydantic models.

Pydantic writes JSON Schema; Kubernetes wants a *structural* OpenAPI v3 schema. The conversion
inlines ``$ref``s, turns ``Optional[X]`` into ``X``, drops what the API server refuses
(``title``, ``additionalProperties: false``, ``$defs``) and keeps descriptions, bounds, patterns,
enums, defaults and ``x-kubernetes-*`` extensions.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from hive.api import CATEGORY, GROUP, VERSION

JSON = dict[str, Any]
_DROP = {"title", "$defs", "discriminator"}


@dataclass(frozen=True)
class PrinterColumn:
    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0

    def wire(self) -> JSON:
        out: JSON = {"name": self.name, "type": self.type, "jsonPath": self.json_path}
        if self.description:
            out["description"] = self.description
        if self.priority:
            out["priority"] = self.priority
        return out


READY_COLUMNS = (
    PrinterColumn(
        "Ready", '.status.conditions[?(@.type=="Ready")].status', description="Ready condition."
    ),
    PrinterColumn(
        "Reason", '.status.conditions[?(@.type=="Ready")].reason', description="Why (or why not)."
    ),
)
AGE_COLUMN = PrinterColumn("Age", ".metadata.creationTimestamp", type="date")


@dataclass(frozen=True)
class Kind:
    """Everything needed to write one kind's CRD."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    columns: tuple[PrinterColumn, ...] = ()
    validations: tuple[JSON, ...] = field(default_factory=tuple)

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def _resolve(node: Any, defs: JSON) -> Any:
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[1]])
        extra = {k: v for k, v in node.items() if k != "$ref"}
        target.update(extra)  # a field's own description wins over its type's
        return _resolve(target, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) == 1:
            merged = {k: v for k, v in node.items() if k != "anyOf"}
            inner = _resolve(options[0], defs)
            merged = {**inner, **{k: v for k, v in merged.items() if k not in ("default",)}}
            if node.get("default") is not None:
                merged["default"] = node["default"]
            return _resolve(merged, defs)
    out: JSON = {}
    for key, value in node.items():
        if key in _DROP:
            continue
        if key == "additionalProperties" and value is False:
            continue
        if key == "additionalProperties" and (value is True or value == {}):
            out["x-kubernetes-preserve-unknown-fields"] = True  # free-form JSON
            continue
        if key == "default" and value is None:
            continue
        if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020-12 gives the bound; OpenAPI 3.0 wants minimum + a flag.
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
            continue
        if key == "const":
            out["enum"] = [value]
            continue
        if key == "properties":
            out[key] = {name: _resolve(prop, defs) for name, prop in value.items()}
        else:
            out[key] = _resolve(value, defs)
    if (
        "x-kubernetes-preserve-unknown-fields" in out
        and "type" not in out
        and "properties" not in out
    ):
        out.pop("default", None)
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    if out.get("format") == "date-time":
        out["type"] = "string"
    return out


def openapi_schema(model: type[BaseModel]) -> JSON:
    """The structural OpenAPI v3 schema of `model`."""
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.pop("$defs", {})
    schema: JSON = _resolve(raw, defs)
    return schema


def crd_manifest(kind: Kind) -> JSON:
    """The CustomResourceDefinition of `kind`, as a dict ready for YAML or the API server."""
    spec_schema = openapi_schema(kind.spec)
    status_schema = openapi_schema(kind.status)
    spec_schema["description"] = kind.spec.__doc__ or ""
    status_schema["description"] = kind.status.__doc__ or ""
    if kind.validations:
        spec_schema["x-kubernetes-validations"] = list(kind.validations)
    root: JSON = {
        "type": "object",
        "description": kind.description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string", "description": "Versioned schema of this object."},
            "kind": {"type": "string", "description": "REST resource this object represents."},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.crd_name, "labels": {"app.kubernetes.io/part-of": "hive"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.singular,
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        c.wire() for c in (*READY_COLUMNS, *kind.columns, AGE_COLUMN)
                    ],
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }
