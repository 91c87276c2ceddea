"""`hive profile REPORT`: where a team run's time, tokens and cost went, from the profile its
report holds (`hive run --report`); `hive profile --cpu PID`: CPU samples of an agent process
with py-spy. Both write speedscope JSON (open it at https://www.speedscope.app)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from hive.cli.errors import one_line_errors
from hive.errors import HiveError, InvalidInput

SHORTEST_SEGMENT_MS = 0.5  # critical path segments shorter than this are not listed


def load_report(path: Path) -> dict[str, Any]:
    """A run report with its profile, or a clear error naming the file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InvalidInput(str(path), "no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(str(path), f"cannot be read ({exc.__class__.__name__})") from exc
    except json.JSONDecodeError as exc:
        raise InvalidInput(str(path), f"not JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("profile"), dict):
        raise InvalidInput(str(path), "is not a run report with a profile (hive run --report)")
    profile = data["profile"]
    for key in ("wall_ms", "agents", "steps", "critical_path", "samples"):
        if key not in profile:
            raise InvalidInput(f"{path}: profile.{key}", "is missing")
    return data


def _ms(value: float) -> str:
    return f"{value / 1000:.3f} s" if value >= 1000 else f"{value:.1f} ms"


def agents_table(profile: dict[str, Any]) -> Table:
    wall = float(profile["wall_ms"]) or 1.0
    on_path: dict[str, float] = {}
    for segment in profile["critical_path"]:
        agent = segment["agent"] or "(team)"
        on_path[agent] = on_path.get(agent, 0.0) + float(segment["ms"])
    table = Table(title="by agent", title_justify="left")
    for heading in ("agent", "tasks", "busy", "model", "tool", "other", "queued"):
        table.add_column(heading, justify="left" if heading == "agent" else "right")
    for heading in ("tokens", "cost", "critical path"):
        table.add_column(heading, justify="right")
    for row in profile["agents"]:
        table.add_row(
            row["agent"],
            str(row["tasks"]),
            _ms(row["busy_ms"]),
            _ms(row["model_ms"]),
            _ms(row["tool_ms"]),
            _ms(row["other_ms"]),
            _ms(row["queued_ms"]),
            str(row["tokens"]),
            f"{row['cost']:.4f}",
            f"{100 * on_path.get(row['agent'], 0.0) / wall:.0f}%",
        )
    table.add_row(
        "(team)",
        "",
        _ms(profile["team_ms"]),
        "",
        "",
        "",
        "",
        "",
        "",
        f"{100 * on_path.get('(team)', 0.0) / wall:.0f}%",
        style="dim",
    )
    return table


def steps_table(profile: dict[str, Any], count: int) -> Table:
    slowest = sorted(
        profile["steps"], key=lambda s: float(s["model_ms"]) + float(s["tool_ms"]), reverse=True
    )[:count]
    table = Table(title=f"slowest {len(slowest)} steps", title_justify="left")
    for heading in ("agent", "step", "start", "model", "tool", "tools", "tokens", "cost"):
        table.add_column(
            heading, justify="left" if heading in ("agent", "step", "tools") else "right"
        )
    for step in slowest:
        table.add_row(
            step["agent"],
            str(step["step"]),
            _ms(step["start_ms"]),
            _ms(step["model_ms"]),
            _ms(step["tool_ms"]),
            ", ".join(step["tools"]),
            str(step["tokens"]),
            f"{step['cost']:.4f}",
        )
    return table


def print_profile(profile: dict[str, Any], console: Console, steps: int) -> None:
    console.print(
        f"wall {_ms(profile['wall_ms'])}, agents busy {_ms(profile['busy_ms'])} "
        f"(parallelism {profile['parallelism']:.2f}), team's own time {_ms(profile['team_ms'])}"
    )
    console.print(agents_table(profile))
    if steps and profile["steps"]:
        console.print(steps_table(profile, steps))
    console.print("critical path (start, duration, what):", style="bold")
    shown = [s for s in profile["critical_path"] if s["ms"] >= SHORTEST_SEGMENT_MS]
    for segment in shown:
        what = segment["stack"][-1]
        console.print(f"  {_ms(segment['start_ms']):>10}  {_ms(segment['ms']):>10}  {what}")
    left_out = len(profile["critical_path"]) - len(shown)
    if left_out:
        console.print(
            f"  ({left_out} segments under {SHORTEST_SEGMENT_MS} ms not shown)", style="dim"
        )


def py_spy() -> str:
    found = shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))
    if found is None:
        raise HiveError("py-spy is not installed (pip install py-spy); hive profile --cpu needs it")
    return found


def sample_cpu(pid: int, duration_s: float, output: Path, rate: int) -> None:
    """Record `pid`'s stacks with py-spy into speedscope JSON at `output`."""
    command = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(max(1, round(duration_s))),
        "--rate",
        str(rate),
        "--format",
        "speedscope",
        "--output",
        str(output),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not output.exists():
        detail = (done.stderr or done.stdout).strip().splitlines()
        why = detail[-1] if detail else f"exit status {done.returncode}"
        hint = " (in a pod: set spec.debug.cpuProfiling so the agent may be traced)"
        raise HiveError(f"py-spy could not sample process {pid}: {why}{hint}")
    # py-spy 0.4.3 writes nulls where the file format wants a number or nothing
    document = json.loads(output.read_text(encoding="utf-8"))
    if document.get("activeProfileIndex") is None:
        document["activeProfileIndex"] = 0
    frames = document.get("shared", {}).get("frames", [])
    document["shared"]["frames"] = [{k: v for k, v in f.items() if v is not None} for f in frames]
    output.write_text(json.dumps(document), encoding="utf-8")


@click.command()
@click.argument("report", type=click.Path(path_type=Path), required=False)
@click.option(
    "--speedscope",
    "speedscope_path",
    type=click.Path(path_type=Path),
    help="Where to write speedscope JSON (default: REPORT's name + .speedscope.json).",
)
@click.option(
    "--svg",
    "svg_path",
    type=click.Path(path_type=Path),
    help="Where to write the flame graph (default: REPORT's name + .flame.svg).",
)
@click.option("--steps", type=int, default=10, show_default=True, help="Slowest steps shown.")
@click.option(
    "--cpu",
    "pid",
    type=int,
    help="Sample process PID's CPU with py-spy instead (speedscope JSON at --speedscope, "
    "default: hive-cpu-PID.speedscope.json in the temporary folder).",
)
@click.option(
    "--duration", type=float, default=10.0, show_default=True, help="--cpu: seconds to sample."
)
@click.option("--rate", type=int, default=100, show_default=True, help="--cpu: samples a second.")
@click.option("--width", type=int, help="Wrap at this many columns (default: the terminal's).")
@one_line_errors
def profile(
    report: Path | None,
    speedscope_path: Path | None,
    svg_path: Path | None,
    steps: int,
    pid: int | None,
    duration: float,
    rate: int,
    width: int | None,
) -> None:
    """Where a team run's time, tokens and cost went: per agent, per step, the critical path.

    REPORT is the JSON `hive run --report FILE` wrote. Writes speedscope JSON (open it at
    https://www.speedscope.app) and a flame graph SVG beside it. With --cpu PID, samples that
    process's Python stacks with py-spy instead (speedscope JSON at --speedscope).
    """
    from hive.runtime.profiling import flamegraph_svg, speedscope

    console = Console(width=width, highlight=False)
    if pid is not None:
        if report is not None:
            raise click.UsageError("give a REPORT or --cpu PID, not both")
        if svg_path is not None:
            raise click.UsageError("--svg draws a REPORT's profile; open --cpu's speedscope JSON")
        # the temporary folder by default: in an agent pod it is the one writable place
        output = speedscope_path or Path(tempfile.gettempdir()) / f"hive-cpu-{pid}.speedscope.json"
        sample_cpu(pid, duration, output, rate)
        console.print(f"CPU samples of process {pid} written to {output} (speedscope JSON)")
        return
    if report is None:
        raise click.UsageError("give the run REPORT (hive run --report FILE) or --cpu PID")
    data = load_report(report)
    run_profile = data["profile"]
    print_profile(run_profile, console, steps)
    base = report.with_suffix("")
    name = f"hive run: {data.get('pattern', 'team')} team"
    scope = speedscope_path or base.with_name(base.name + ".speedscope.json")
    scope.write_text(json.dumps(speedscope(run_profile, name)) + "\n", encoding="utf-8")
    flame = svg_path or base.with_name(base.name + ".flame.svg")
    flame.write_text(flamegraph_svg(run_profile, title=name), encoding="utf-8")
    console.print(f"speedscope JSON: {scope}\nflame graph: {flame}")
