"""`hive run --debug` driven as a user drives it: in a real terminal (a detached tmux session of
a fixed size), keys sent with send-keys, the screen read with capture-pane, against the
scripted model on loopback; then the session it wrote replayed by `hive run --replay`."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.scripted_model import Script, scripted_model

pytestmark = pytest.mark.integration

TEAM_YAML = """\
apiVersion: hive.dev/v1alpha1
kind: AgentTeam
metadata: {name: bees}
spec:
  goal: Count the bees
  pattern: hierarchical
  model: {provider: openai-compatible, endpoint: "http://127.0.0.1:1/v1", name: m}
  delegation: {qualityThreshold: 0.7, maxRevisions: 1}
  agents:
    - {name: lead, role: senior, subordinates: [worker]}
    - {name: worker, role: junior}
"""

SCRIPT: Script = {
    "lead": [
        {"json": {"subtasks": [{"description": "Survey the meadow"}]}},
        {"when": "Rate the result", "json": {"score": 0.4, "feedback": "count again"}},
        {"when": "final answer", "content": "42 bees."},
    ],
    "worker": [{"content": "42 bees by the river"}],
}


@dataclass
class Terminal:
    """A tmux session of its own (a private server socket), 160x48."""

    socket: str
    session: str = "hive"

    def tmux(self, *args: str) -> str:
        # COLUMNS and LINES (pytest's) would override the terminal's own size
        env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        ran = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, env=env
        )
        return ran.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-J", "-S", "-200", "-t", self.session)

    def shows(self, pattern: str, within_s: float = 90) -> str:
        """The screen once it matches `pattern` (fails with the screen after `within_s`)."""
        deadline = time.monotonic() + within_s
        while True:
            text = self.screen()
            if re.search(pattern, text):
                return text
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {pattern!r}:\n{text}")
            time.sleep(0.2)

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", self.session, *keys)

    def type(self, text: str) -> None:
        self.tmux("send-keys", "-t", self.session, "-l", text)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    assert shutil.which("tmux"), "tmux is missing: bash hack/testbin.sh installs it"
    term = Terminal(f"hive-debug-test-{os.getpid()}")
    yield term
    subprocess.run(["tmux", "-L", term.socket, "kill-server"], capture_output=True, check=False)


def hive(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hive", *args], capture_output=True, text=True, timeout=120
    )


def test_hive_run_debug_pauses_inspects_changes_steps_and_replays(
    terminal: Terminal, tmp_path: Path
) -> None:
    team = tmp_path / "team.yaml"
    team.write_text(TEAM_YAML)
    report, session, ended = tmp_path / "run.json", tmp_path / "session.json", tmp_path / "rc"
    with scripted_model(SCRIPT) as server:
        command = shlex.join(
            [
                sys.executable, "-m", "hive", "run", str(team), "--endpoint", server.url,
                "--debug", "--break", "delegate:worker", "--break", "score<0.6",
                "--report", str(report), "--debug-session", str(session),
            ]
        )  # fmt: skip
        terminal.tmux(
            "new-session", "-d", "-s", terminal.session, "-x", "160", "-y", "48",
            f"cd {shlex.quote(str(tmp_path))} && {command}; echo $? > {ended}; exec sleep 600",
        )  # fmt: skip

        screen = terminal.shows(r"PAUSED at step \d+ · delegated · lead · delegate:worker")
        assert "lead delegates to worker: Survey the meadow" in screen
        terminal.keys("t")  # the delegation tree
        terminal.shows(r"└ worker: Survey the meadow \(unreviewed, 0 revision")
        terminal.keys("u")  # the budgets
        terminal.shows(r'"tokens_by_agent"')
        terminal.keys("e")  # edit the task the worker gets
        terminal.shows(r"the next message \(enter sets it\)")  # the prompt has the keys now
        terminal.keys("C-u")
        terminal.type("Survey the meadow by the river")
        terminal.keys("Enter")
        terminal.shows("changed next message: Survey the meadow by the river")
        terminal.keys("c")

        screen = terminal.shows(r"PAUSED at step \d+ · reviewed · lead · score<0\.6")
        assert "lead reviewed worker: score 0.4 (count again)" in screen
        terminal.keys("o")
        terminal.shows(r"the review score, 0 to 1")
        terminal.type("0.9")
        terminal.keys("Enter")
        terminal.shows("changed score: 0.9")
        terminal.keys("b")  # a breakpoint set from inside the UI
        terminal.shows(r"a breakpoint: delegate\[:AGENT\]")
        terminal.type("model:lead")
        terminal.keys("Enter")
        terminal.shows(r"breakpoints: delegate:worker, score<0\.6, model:lead")
        terminal.keys("c")

        terminal.shows(r"PAUSED at step \d+ · model-call · lead · model:lead")
        terminal.keys("r")  # the last model request and response
        terminal.shows(r'"content": "42 bees\."')
        terminal.keys("n")  # step to the next stop point
        terminal.shows(r"PAUSED at step \d+ · model-called · lead · step")
        terminal.keys("x")
        terminal.shows(f"session exported to {re.escape(str(session))}")
        terminal.keys("c")
        terminal.shows(r"FINISHED: Succeeded")
        terminal.keys("q")
        screen = terminal.shows(r"debug session written to")

    deadline = time.monotonic() + 30
    while not (ended.exists() and ended.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)  # the shell writes hive's exit status once hive has ended
    assert ended.read_text().strip() == "0"
    assert "hive run: report" in screen
    data = json.loads(report.read_text())
    assert (data["outcome"], data["output"]) == ("Succeeded", "42 bees.")
    (delegation,) = data["delegations"]
    assert (delegation["review"], delegation["revisions"]) == (0.9, 0)
    worker_asked = server.requests_of("worker")[0]["messages"][-1]["content"]
    assert worker_asked == "Survey the meadow by the river"

    recorded = json.loads(session.read_text())
    done = [(a["action"], a["value"]) for a in recorded["actions"]]
    assert done == [
        ("inspect", "tree"),
        ("inspect", "budgets"),
        ("edit", "Survey the meadow by the river"),
        ("continue", None),
        ("score", 0.9),
        ("break", "model:lead"),
        ("continue", None),
        ("inspect", "model"),
        ("step", None),
        ("continue", None),
    ]

    # the model server is gone: the replay answers from the session, to the same report
    replayed = hive("run", str(team), "--replay", str(session), "--no-live")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert "replay: the same report as the recorded run" in replayed.stdout
    final = next(
        s["index"]
        for s in recorded["steps"]
        if s["kind"] == "model-call" and s["data"]["content"] == "42 bees."
    )
    rewound = hive(
        "run", str(team), "--replay", str(session), "--rewind", f"{final}:edit=Forty-two.",
        "--no-live", "--report", str(tmp_path / "rewound.json"),
    )  # fmt: skip
    assert rewound.returncode == 0, rewound.stdout + rewound.stderr
    assert "replay: a different report (differs in output)" in rewound.stdout
    assert json.loads((tmp_path / "rewound.json").read_text())["output"] == "Forty-two."


def test_breakpoints_without_debug_and_bad_ones_are_refused(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text(TEAM_YAML)
    alone = hive("run", str(team), "--break", "error", "--endpoint", "http://127.0.0.1:1/v1")
    assert alone.returncode != 0
    assert "--break: breakpoints pause the run: give --debug too" in alone.stderr
    bad = hive("run", str(team), "--debug", "--break", "delegated:x", "--check")
    assert bad.returncode != 0
    assert "--break: 'delegated:x' is not a breakpoint" in bad.stderr
