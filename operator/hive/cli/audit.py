"""`hive audit`: check a team's audit log."""

from __future__ import annotations

from pathlib import Path

import click

from hive.cli.errors import one_line_errors


@click.group()
def audit() -> None:
    """The audit log: hash-chained JSON lines, one file per team."""


@audit.command("verify")
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@one_line_errors
def audit_verify(file: Path) -> None:
    """Exit 0 when FILE is intact; else name the changed, removed or reordered record (exit 1)."""
    from hive.runtime.identity.auditcheck import verify

    count = verify(file)
    click.echo(f"{file}: {count} records, intact")
