"""Reading a Secret the operator was pointed at (one by one, never listed)."""

from __future__ import annotations

import base64
import binascii

from lightkube import ApiError
from lightkube.resources.core_v1 import Secret

from hive.kube.client import ApiClient
from hive.kube.errors import api_errors


async def read_secret(client: ApiClient, namespace: str, name: str) -> dict[str, str] | None:
    """The Secret's keys with their values decoded as UTF-8 text (`stringData` is folded into
    `data` by the API server), or None when the Secret does not exist. A value that is not
    valid base64 or UTF-8 is left out."""
    try:
        secret = await client.get(Secret, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        with api_errors(f"Secret {namespace}/{name}"):
            raise
    decoded: dict[str, str] = {}
    for key, value in (secret.data or {}).items():
        try:
            decoded[key] = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
    return decoded
