"""The error hierarchy: what went wrong, and whether trying again can help.

::

    HiveError                    base; `retryable` says if the same call may succeed later
    ├── InvalidInput             a resource, file or argument is wrong; names the field
    ├── NotInstalled             a binary or package is missing; names the command that installs it
    ├── Conflict                 something holds what we need (a port, a running instance)
    ├── Unavailable              a dependency is not reachable or not ready yet (retryable)
    └── ExternalFailure          a dependency answered, but with an error we cannot fix here

Every message is one line that a person can act on. The CLI prints it as it is, without a
traceback; the operator copies it into a condition's message.
"""

from __future__ import annotations


class HiveError(Exception):
    """Base of every error Hive raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(HiveError):
    """Input that can never work as given; the message names the field or argument."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


class NotInstalled(HiveError):
    """A binary or package the command needs is missing."""

    def __init__(self, what: str, install_hint: str) -> None:
        super().__init__(f"{what} is not installed; install it with: {install_hint}")
        self.what = what
        self.install_hint = install_hint


class Conflict(HiveError):
    """Something else already holds what this call needs."""


class Unavailable(HiveError):
    """A dependency is not reachable or not ready yet; trying again later may work."""

    retryable = True


class ExternalFailure(HiveError):
    """A dependency answered with an error that this side cannot repair."""
