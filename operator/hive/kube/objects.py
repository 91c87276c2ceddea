"""Applying manifests and waiting on conditions, for the CLI and the tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml
from lightkube import ApiError, Client, codecs
from lightkube.generic_resource import load_in_cluster_generic_resources
from lightkube.resources.admissionregistration_v1 import ValidatingWebhookConfiguration

from hive.errors import Unavailable
from hive.kube.errors import api_errors, from_api_error
from hive.kube.resources import resource


def apply_file(client: Client, path: Path, *, field_manager: str = "hive-cli") -> list[str]:
    """Server-side apply every object in a YAML file; returns 'Kind/name' for each."""
    load_in_cluster_generic_resources(client)
    applied = []
    for obj in codecs.load_all_yaml(path.read_text()):
        what = f"{obj.kind}/{obj.metadata.name if obj.metadata else '?'}"
        with api_errors(what):
            client.apply(obj, field_manager=field_manager, force=True)
        applied.append(what)
    return applied


def condition_of(obj: Any, type_: str) -> dict[str, Any] | None:
    status = (obj.get("status") if isinstance(obj, dict) else obj.status) or {}
    for cond in status.get("conditions", []) or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def wait_for_condition(
    client: Client,
    kind: str,
    namespace: str,
    name: str,
    *,
    type_: str = "Ready",
    status: str = "True",
    timeout_s: float = 60.0,
) -> dict[str, Any]:
    """Wait until the object's condition `type_` has `status`; returns the condition."""
    deadline = time.monotonic() + timeout_s
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        try:
            obj = client.get(resource(kind), name, namespace=namespace)
        except ApiError as exc:
            if exc.status.code != 404:  # not created yet counts as not ready
                raise from_api_error(exc, f"{kind} {namespace}/{name}") from exc
            obj = None
        if obj is not None:
            last = condition_of(obj, type_)
            if last and last.get("status") == status:
                return last
        time.sleep(0.25)
    seen = yaml.safe_dump(last).strip() if last else "no such condition"
    raise Unavailable(
        f"{kind} {namespace}/{name}: {type_} not {status} after {timeout_s:.0f}s ({seen})"
    )


def delete_webhook_configuration(client: Client, name: str) -> bool:
    """Remove a ValidatingWebhookConfiguration (True if it existed)."""
    try:
        client.delete(ValidatingWebhookConfiguration, name)
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise from_api_error(exc, f"ValidatingWebhookConfiguration {name}") from exc
    return True


def get_hive_status(client: Client, kind: str, namespace: str, name: str) -> dict[str, Any]:
    """The status of one Hive object (empty when it has none yet)."""
    with api_errors(f"{kind} {namespace}/{name}"):
        obj = client.get(resource(kind), name, namespace=namespace)
    status = obj.get("status") if isinstance(obj, dict) else getattr(obj, "status", None)
    return dict(status or {})
