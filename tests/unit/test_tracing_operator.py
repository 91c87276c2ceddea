"""The operator's reconciles as spans: each one a trace of its own, naming the object, an error
when the reconcile fails. Run in a child interpreter, where installing the process's tracer
provider (once per process) touches no other test."""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import asyncio, json
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from hive.operator.handlers import measured
from hive.runtime.tracing.setup import install, tracing_from
from hive.settings import TracingSettings

exporter = InMemorySpanExporter()
tracing = tracing_from(TracingSettings(), "operator", exporter=exporter)
install(tracing)

async def ok(namespace, name):
    return "done"

async def broken(namespace, name):
    raise RuntimeError("no such thing")

async def main():
    assert await measured("AgentTeam", ok)("team-ns", "research") == "done"
    try:
        await measured("MemoryStore", broken)("store-ns", "notes")
    except RuntimeError:
        pass
asyncio.run(main())
tracing.flush()
print(json.dumps([
    {"name": s.name, "attributes": dict(s.attributes), "parent": s.parent is not None,
     "error": s.status.status_code.name, "trace": s.context.trace_id}
    for s in exporter.get_finished_spans()
]))
"""


def test_each_reconcile_is_a_span_naming_its_object() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    team, store = json.loads(done.stdout.strip().splitlines()[-1])
    assert team["name"] == "reconcile AgentTeam"
    assert team["attributes"] == {
        "k8s.namespace.name": "team-ns",
        "hive.object.kind": "AgentTeam",
        "hive.object.name": "research",
    }
    assert not team["parent"]
    assert team["error"] == "UNSET"
    assert store["name"] == "reconcile MemoryStore"
    assert store["error"] == "ERROR"
    assert store["trace"] != team["trace"]
