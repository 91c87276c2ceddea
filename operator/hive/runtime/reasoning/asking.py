"""One structured question to a ChatModel, with a bounded number of repair rounds.

The answer text goes through a parser that raises `InvalidInput` on anything unusable; the
problem is sent back to the model, and after `repairs` more answers the question fails with
`InvalidModelOutput`, one line naming what was asked and the last problem. Only `complete` of
the ChatModel protocol is used, so a plain fake model serves as well as a real server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from hive.errors import InvalidInput
from hive.runtime.agent import ChatModel
from hive.runtime.models import InvalidModelOutput, Message, answer_until_parsed, json_text

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def loads_json(text: str, field: str) -> Any:
    """Parse JSON from model text (fenced or not, prose around it or not); else an InvalidInput
    naming `field`."""
    try:
        return json.loads(json_text(text))
    except json.JSONDecodeError as exc:
        raise InvalidInput(field, f"not JSON ({exc.msg} at line {exc.lineno})") from exc


def describe(exc: ValidationError, field: str) -> InvalidInput:
    """The first problem of a pydantic validation error, as an InvalidInput naming its place."""
    first = exc.errors()[0]
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in first["loc"])
    return InvalidInput(f"{field}{where}", first["msg"])


def pydantic_parser(schema: type[M], field: str) -> Callable[[str], M]:
    """A parser for `ask` that validates the answer's JSON as `schema`."""

    def parse(text: str) -> M:
        data = loads_json(text, field)
        try:
            return schema.model_validate(data)
        except ValidationError as exc:
            raise describe(exc, field) from exc

    return parse


async def ask(
    model: ChatModel,
    messages: Sequence[Message],
    parse: Callable[[str], T],
    *,
    what: str,
    schema: dict[str, Any],
    repairs: int = 2,
) -> T:
    """Ask `model`, parse its answer, send the problem back up to `repairs` times."""
    if repairs < 0:
        raise InvalidInput("repairs", f"must be 0 or more, not {repairs}")
    answer, problem = await answer_until_parsed(
        model.complete,
        messages,
        parse,
        schema=schema,
        repairs=repairs,
        adjective="usable",
        options={"response_format": {"type": "json_object"}},
    )
    if answer is not None:
        return answer
    name = getattr(model, "model", type(model).__name__)
    raise InvalidModelOutput(
        f"model '{name}': no usable {what} after {repairs + 1} answers (last problem: {problem})"
    )
