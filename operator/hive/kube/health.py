"""Readiness of an API server, asked over its own /readyz endpoint."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx

from hive.errors import Unavailable


def apiserver_ready(url: str, ca: Path, cert: Path, key: Path, *, timeout_s: float = 2.0) -> bool:
    """True when the API server at `url` answers /readyz with 200."""
    context = ssl.create_default_context(cafile=str(ca))
    context.load_cert_chain(str(cert), str(key))
    try:
        response = httpx.get(f"{url}/readyz", verify=context, timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def wait_apiserver_ready(
    url: str, ca: Path, cert: Path, key: Path, *, timeout_s: float, alive: object = None
) -> None:
    """Wait until /readyz answers 200, or raise Unavailable after `timeout_s`.

    `alive`, when given, is a callable that returns False once the server process has died,
    so a crash is reported at once instead of after the whole timeout.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if apiserver_ready(url, ca, cert, key):
            return
        if callable(alive) and not alive():
            raise Unavailable(f"kube-apiserver at {url} exited before it became ready")
        time.sleep(0.25)
    raise Unavailable(f"kube-apiserver at {url} not ready after {timeout_s:.0f}s")
