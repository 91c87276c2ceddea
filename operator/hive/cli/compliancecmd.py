"""`hive compliance report`: what personal data a team met, where, and what was done with it."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from hive.cli.errors import one_line_errors


@click.group()
def compliance() -> None:
    """Compliance reports of teams with a privacy policy (spec.privacy)."""


@compliance.command("report")
@click.option("--team", required=True, help="The team (for `hive run`: run).")
@click.option("--namespace", "-n", default="local", show_default=True)
@click.option("--since", default="7d", show_default=True, help="Window: 30m, 12h, 7d, ...")
@click.option("-o", "--output", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option(
    "--audit-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder of the audit logs (default HIVE_AGENT__AUDIT_DIR).",
)
@one_line_errors
def report(team: str, namespace: str, since: str, output: str, audit_dir: Path | None) -> None:
    """Findings by entity type, source and handling over the window, and the destinations that
    received personal data in clear, from the team's audit log."""
    from hive.runtime.identity.audit import team_log_path
    from hive.runtime.memory.records import parse_duration
    from hive.runtime.privacy.report import build, markdown, read_records
    from hive.settings import get_settings

    folder = audit_dir or get_settings().agent.audit_dir
    now = dt.datetime.now(dt.UTC)
    start = now - dt.timedelta(seconds=parse_duration(since, "--since"))
    records = read_records(team_log_path(folder, namespace, team))
    content = build(f"{namespace}/{team}", records, start, now)
    click.echo(json.dumps(content, indent=2) if output == "json" else markdown(content), nl=False)
    if output == "json":
        click.echo()
