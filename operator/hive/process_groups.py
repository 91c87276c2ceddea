"""Signalling a child process together with the children it started."""

from __future__ import annotations

import contextlib
import os
import signal


def signal_group(pid: int, sig: signal.Signals) -> None:
    """Send `sig` to the process group `pid` leads (a child started in its own session), so
    it reaches the process and its children once each; to the process alone if it leads none."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
