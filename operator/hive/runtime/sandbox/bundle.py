"""Where runsc and the sandbox's root filesystem are, and the OCI bundle a sandbox runs from.

The bundle's root is the read-only root filesystem built by ``sandbox-images/build-rootfs.sh``
(the same recipe as ``sandbox-images/Dockerfile``), never the host's: the sandbox sees none of
the host's files. The zygote (``bootstrap.py``) is bind-mounted read-only at
`BOOTSTRAP_PATH`, where the image also puts it; ``/tmp`` is a private tmpfs, writable only when
the filesystem mode is ``temp``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from hive.api.sandboxpolicy import FilesystemMode
from hive.errors import NotInstalled
from hive.runtime.sandbox import bootstrap
from hive.runtime.sandbox.limits import OPEN_FILES, SandboxLimits

BOOTSTRAP_PATH = "/opt/hive/bootstrap.py"
# The whole sandbox (gVisor's kernel, the zygote, the spare and the run) gets a host memory
# cgroup of the run's limit plus this; it stops what per-process RLIMIT_AS cannot, several
# processes that each stay under the limit.
SANDBOX_OVERHEAD_BYTES = 256 << 20
CPU_PERIOD_US = 100_000
INTERPRETER = "/usr/bin/python3"
INSTALL_HINT = "make testbin (or bash sandbox-images/build-rootfs.sh)"
# The zygote needs these inside the sandbox (gVisor's own, not the host's) to make each run's
# folder, drop to the sandbox user and kill what a run left behind; the child drops them all.
ZYGOTE_CAPABILITIES = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
]


def rootfs_cache_dir() -> Path:
    """``~/.cache/hive/sandbox-rootfs`` (or under $XDG_CACHE_HOME), as build-rootfs.sh uses it."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hive" / "sandbox-rootfs"


def find_rootfs(rootfs: Path | None = None) -> Path:
    """The root filesystem to run, checked; NotInstalled naming `make testbin` if it is missing.

    Without an argument: the one build-rootfs.sh last built, ``<cache>/current/rootfs``.
    """
    path = rootfs or rootfs_cache_dir() / "current" / "rootfs"
    if not (path / INTERPRETER.lstrip("/")).exists():
        raise NotInstalled(f"the sandbox root filesystem ({path})", INSTALL_HINT)
    return path.resolve()


def find_runsc(runsc: str | Path | None = None) -> str:
    """The runsc binary; NotInstalled naming `make testbin` if it is missing."""
    found = shutil.which(str(runsc or "runsc"))
    if not found:
        raise NotInstalled("runsc (gVisor)", "make testbin (Debian package runsc)")
    return found


def bootstrap_source() -> Path:
    return Path(bootstrap.__file__).resolve()


def oci_config(rootfs: Path, limits: SandboxLimits, hostname: str = "sandbox") -> dict[str, Any]:
    """The OCI runtime spec of one sandbox whose first process is the zygote."""
    caps = list(ZYGOTE_CAPABILITIES)
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {
            "destination": BOOTSTRAP_PATH,
            "type": "bind",
            "source": str(bootstrap_source()),
            "options": ["ro", "rbind"],
        },
    ]
    # runsc mounts a writable tmpfs at /tmp unless the spec has one, so there always is one:
    # writable (the temp area) only when the policy allows it.
    writable = limits.filesystem == FilesystemMode.TEMP
    mounts.append(
        {
            "destination": "/tmp",  # noqa: S108 (a tmpfs inside the sandbox)
            "type": "tmpfs",
            "source": "tmpfs",
            "options": [
                "nosuid",
                "nodev",
                "noexec",
                f"size={limits.temp_bytes if writable else 4096}",
                "mode=755",
                "rw" if writable else "ro",
            ],
        }
    )
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [INTERPRETER, "-I", "-B", BOOTSTRAP_PATH, str(limits.filesystem)],
            "env": ["PATH=/usr/bin:/bin", "LANG=C.UTF-8"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": OPEN_FILES, "soft": OPEN_FILES}],
            "noNewPrivileges": True,
        },
        "root": {"path": str(rootfs), "readonly": True},
        "hostname": hostname,
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "resources": {
                "memory": {"limit": limits.memory_bytes + SANDBOX_OVERHEAD_BYTES},
                "cpu": {
                    "quota": max(1000, int(limits.cpus * CPU_PERIOD_US)),
                    "period": CPU_PERIOD_US,
                },
            },
        },
    }


def write_bundle(folder: Path, rootfs: Path, limits: SandboxLimits) -> Path:
    """A bundle folder holding config.json; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(oci_config(rootfs, limits), indent=1))
    return folder
