"""A tool that needs real values, named in spec.privacy.restoreForTools, run by `hive run` with
a real HTTP tool service: the CRM lookup gets the customer's real email and finds the customer,
its answer reaches the model pseudonymised again; a tool not named gets the pseudonym only; the
model never sees the email; the compliance summary names the tool as a destination in clear."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from hive.runtime.privacy.handling import Pseudonyms, derive_key
from tests.scripted_model import Script, scripted_model
from tests.tools_servers.http_tool import http_tool_server

pytestmark = pytest.mark.integration

KEY = "team key for the tools privacy test 0123"
EMAIL = "jane.doe@example.com"
TASK = f"Find the customer number of {EMAIL} in the CRM."


def write_files(folder: Path, url: str) -> Path:
    tools = folder / "tools"
    tools.mkdir()
    for tool in ("crm-lookup", "crm-search"):  # the same service; only one gets real values
        (tools / f"{tool}.yaml").write_text(
            f"""apiVersion: hive.dev/v1alpha1
kind: ToolVersion
metadata: {{name: {tool}-1.0.0}}
spec:
  tool: {tool}
  version: 1.0.0
  description: The customer with this email.
  inputSchema:
    type: object
    properties: {{email: {{type: string}}}}
    required: [email]
  implementation: {{kind: http, ref: "{url}/customers"}}
"""
        )
    team = folder / "team.yaml"
    team.write_text(
        """apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata: {name: support}
spec:
  goal: Answer customers
  model: {provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}
  privacy:
    mode: fast
    rules:
      - {entity: EMAIL_ADDRESS, strategy: pseudonymise}
    restoreForTools: [crm-lookup]
  agents:
    - name: clerk
      role: senior
      tools:
        - {name: crm-lookup, version: "^1.0"}
        - {name: crm-search, version: "^1.0"}
"""
    )
    return team


def test_only_the_named_tool_gets_the_real_email_and_the_model_never_does(
    tmp_path: Path,
) -> None:
    pseudonym = Pseudonyms(derive_key(KEY)).make("EMAIL_ADDRESS", EMAIL)
    steps: Script = {
        "clerk": [
            {"tool_calls": [{"name": "crm-search", "arguments": {"email": pseudonym}}]},
            {"tool_calls": [{"name": "crm-lookup", "arguments": {"email": pseudonym}}]},
            {"content": f"{pseudonym} is customer C-1042."},
        ]
    }
    env = {**os.environ, "HIVE_PRIVACY__KEY": KEY, "HIVE_AGENT__AUDIT_DIR": str(tmp_path)}
    with http_tool_server() as server, scripted_model(steps) as model:
        team = write_files(tmp_path, server.url)
        tools = str(tmp_path / "tools")
        hive_run = [sys.executable, "-m", "hive", "run", str(team), TASK]
        run = subprocess.run(
            [*hive_run, "--endpoint", model.url, "--tools", tools],
            capture_output=True,
            text=True,
            timeout=300,
            env=env,
        )
    assert run.returncode == 0, run.stdout + run.stderr
    last = model.requests[-1]["messages"]  # the whole conversation, as the model saw it
    told = [m["content"] for m in last if m["role"] == "tool"]
    assert len(told) == 2, told
    # crm-search got the pseudonym: the CRM knows no such customer
    assert "crm-search 1.0.0" in told[0]
    assert "answered 404" in told[0]
    # crm-lookup got the real email (the CRM found the customer); its answer came back with
    # the email pseudonymised again
    assert json.loads(told[1]) == {"customer": "C-1042", "email": pseudonym}
    sent = json.dumps(model.requests)
    assert EMAIL not in sent
    assert EMAIL not in run.stderr
    assert f"{EMAIL} is customer C-1042." in run.stdout  # restored for the requester
    summary = " ".join(run.stdout.split())
    assert "in clear: toolInputs:tool:crm-lookup 1" in summary, run.stdout
    report_command = [sys.executable, "-m", "hive", "compliance", "report", "--team", "run"]
    report = subprocess.run(
        [*report_command, "--audit-dir", str(tmp_path), "--since", "1h", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(report.stdout)["receivedInClear"] == {"toolInputs:tool:crm-lookup": 1}
