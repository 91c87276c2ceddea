"""Translating API server errors into Hive's error hierarchy, with the object named."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx2
from lightkube import ApiError

from hive.errors import Conflict, ExternalFailure, HiveError, InvalidInput, Unavailable


def from_api_error(exc: ApiError, what: str) -> HiveError:
    status = exc.status
    message = status.message or str(exc)
    code = status.code or 0
    if code == 404:
        return InvalidInput(what, "not found")
    if code in (400, 422):
        return InvalidInput(what, message)
    if code == 409:
        return Conflict(f"{what}: {message}")
    if code in (401, 403):
        return ExternalFailure(f"{what}: forbidden: {message}")
    if code >= 500 or code == 429:
        return Unavailable(f"{what}: {message}")
    return ExternalFailure(f"{what}: {message}")


@contextlib.contextmanager
def api_errors(what: str) -> Iterator[None]:
    """Raise Hive errors naming `what` instead of lightkube's and httpx's."""
    try:
        yield
    except ApiError as exc:
        raise from_api_error(exc, what) from exc
    except httpx2.TransportError as exc:
        raise Unavailable(f"{what}: API server unreachable ({exc.__class__.__name__})") from exc
    except httpx2.HTTPStatusError as exc:  # an answer that is not a Status, e.g. no such kind
        code = exc.response.status_code
        if code == 404:
            kind = what.split(" ", 1)[0]
            raise InvalidInput(what, f"not found (is the {kind} CRD installed?)") from exc
        if code >= 500:
            raise Unavailable(f"{what}: HTTP {code}") from exc
        raise ExternalFailure(f"{what}: HTTP {code}") from exc
