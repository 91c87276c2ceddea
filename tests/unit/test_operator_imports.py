"""The operator's process starts without the heavy libraries only some resources need: the MCP
SDK (an mcp ToolVersion), the OpenAPI validator (an openapi one), numpy and the ONNX runtime
(embeddings, which only agents compute). Each is loaded by the code path that needs it, so an
operator with no such resource keeps their ~100 MiB out of its resident memory."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("mcp", "mcp_types", "openapi_spec_validator", "jsonschema_path", "numpy", "onnxruntime")


def test_starting_the_operator_loads_none_of_the_heavy_optional_libraries() -> None:
    probe = (
        "import json, sys; import hive.operator.runner; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert json.loads(out.stdout) == []
