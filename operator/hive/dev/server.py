"""A server binary that `hive dev` and the tests run on loopback: one tracked process per state
folder, started without waiting, then waited for (bounded) until it answers.

Subclasses say what differs: the command line and environment (`command`), the URL that answers
200 once the server is ready (`ready_url`), and the ports it binds (`ports`), which are checked
free before it starts so that a taken port is a clear error naming the setting that moves it.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from hive.dev.processes import ProcessTable
from hive.errors import Conflict, NotInstalled, Unavailable
from hive.settings import DevSettings


@dataclass(frozen=True)
class ServerUp:
    already_running: bool
    seconds: float  # from the start until ready


@dataclass(frozen=True)
class Port:
    setting: str  # the setting's name below the server's prefix, e.g. HTTP_PORT
    number: int
    address: str  # where it binds: the loopback host, or "" for every interface


class LocalServer:
    """One server, owned by one state folder (`name` is its process and folder name)."""

    name: str
    binary_name: str
    install_hint: str
    settings_prefix: str  # e.g. HIVE_DEV__WEAVIATE__
    ready_timeout_s: float = 60.0

    def __init__(self, settings: DevSettings) -> None:
        self.settings = settings
        self.folder = settings.state_dir / self.name
        self.processes = ProcessTable(settings.state_dir)

    # --- what differs ----------------------------------------------------------------------
    def command(self, binary: Path) -> tuple[list[str], dict[str, str]]:
        """The command line and the whole environment (nothing inherited)."""
        raise NotImplementedError

    def ready_url(self) -> str:
        raise NotImplementedError

    def ports(self) -> list[Port]:
        raise NotImplementedError

    # --- the same for every server ---------------------------------------------------------
    def binary(self) -> Path:
        candidate = self.settings.testbin_dir / self.binary_name
        if candidate.is_file():
            return candidate
        found = shutil.which(self.binary_name)
        if found:
            return Path(found)
        raise NotInstalled(
            f"{self.binary_name} (looked in {self.settings.testbin_dir} and PATH)",
            self.install_hint,
        )

    def running(self) -> bool:
        record = self.processes.get(self.name)
        return record is not None and record.alive()

    def start(self) -> bool:
        """Start the server unless it runs; True if this call started it. Does not wait."""
        if self.running():
            return False
        binary = self.binary()
        self._check_ports_free()
        self.folder.mkdir(parents=True, exist_ok=True)
        argv, env = self.command(binary)
        self.processes.start(self.name, argv, env=env, cwd=self.folder)
        return True

    def wait_ready(self) -> float:
        """Wait until `ready_url` answers 200 (at most `ready_timeout_s`); returns the seconds
        this call waited."""
        since = time.monotonic()
        deadline = since + self.ready_timeout_s
        url = self.ready_url()
        with httpx.Client(timeout=1.0) as client:
            while True:
                record = self.processes.get(self.name)
                if record is None or not record.alive():
                    raise Unavailable(
                        f"{self.binary_name} exited during start; last log lines:\n"
                        f"{self.processes.log_tail(self.name)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return time.monotonic() - since
                if time.monotonic() > deadline:
                    raise Unavailable(
                        f"{self.name} at {url} was not ready in {self.ready_timeout_s:.0f}s "
                        f"(log: {self.log})"
                    )
                time.sleep(0.1)

    def up(self) -> ServerUp:
        started = time.monotonic()
        already = not self.start()
        self.wait_ready()
        return ServerUp(already, time.monotonic() - started)

    def down(self) -> bool:
        return self.processes.stop(self.name)

    @property
    def log(self) -> Path:
        return self.processes.log_dir / f"{self.name}.log"

    def _check_ports_free(self) -> None:
        for port in self.ports():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind((port.address, port.number))
                except OSError:
                    raise Conflict(
                        f"port {port.number} for {self.name} is already in use; free it or set "
                        f"{self.settings_prefix}{port.setting} to another port"
                    ) from None
