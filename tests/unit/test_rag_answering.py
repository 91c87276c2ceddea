"""Cited answers with a scripted model: citations map to the excerpts shown, dangling ones go
back to the model (a bounded number of times) and are removed when still dangling, and nothing
relevant means "not found in the documents" without asking the model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hive.runtime.models import Message, Reply
from hive.runtime.rag.answering import (
    NOT_FOUND,
    Answerer,
    cited_numbers,
    strip_citations,
)
from hive.runtime.rag.chunking import Chunk
from hive.runtime.rag.index import Hit
from hive.runtime.rag.retrieval import Retrieved
from hive.runtime.rag.tool import answer_payload
from hive.settings import RagSettings


class ScriptedModel:
    """Replies with the given texts in order and keeps what it was asked."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.asked: list[list[Message]] = []

    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply:
        self.asked.append(list(messages))
        return Reply(content=self.replies.pop(0), tool_calls=[], finish_reason="stop")


def chunk(n: int) -> Chunk:
    text = f"Passage number {n}."
    return Chunk(f"/docs/{n}.md", f"Doc {n}", 0, 10 * n, 10 * n + len(text), text, 4)


def retrieved(count: int = 3, found: bool = True) -> Retrieved:
    hits = [Hit(chunk(n), 1.0 / n, np.zeros(3, dtype=np.float32)) for n in range(1, count + 1)]
    return Retrieved("What is it?", hits, 0.8 if found else 0.1, found)


def answerer(model: ScriptedModel, **settings: Any) -> Answerer:
    return Answerer(retriever=None, model=model, settings=RagSettings(**settings))  # type: ignore[arg-type]


def test_citation_numbers_are_read_in_every_bracket_form() -> None:
    assert cited_numbers("A [1]. B [2, 3]. C [10]; not [x] or (4).") == [1, 2, 3, 10]
    assert strip_citations("A [1]. B [2, 7]. C [9].", {7, 9}) == "A [1]. B [2]. C."


async def test_citations_map_to_the_excerpts_shown() -> None:
    model = ScriptedModel("It is two things [2]. And one more [1, 2].")
    answer = await answerer(model).answer(retrieved())
    assert answer.found
    assert answer.repairs == 0
    assert answer.unresolved == []
    assert [(c.number, c.chunk.source) for c in answer.citations] == [
        (1, "/docs/1.md"),
        (2, "/docs/2.md"),
    ]
    prompt = model.asked[0][1]["content"]
    assert "[1] (Doc 1) Passage number 1." in prompt
    assert "[3] (Doc 3)" in prompt
    payload = answer_payload(answer)
    assert payload["citations"][1] == {
        "n": 2,
        "source": "/docs/2.md",
        "title": "Doc 2",
        "start": 20,
        "end": 37,
        "text": "Passage number 2.",
    }


async def test_a_dangling_citation_goes_back_for_repair() -> None:
    model = ScriptedModel("It is this [7].", "It is this [3].")
    answer = await answerer(model).answer(retrieved())
    assert answer.repairs == 1
    assert answer.text == "It is this [3]."
    assert [c.number for c in answer.citations] == [3]
    repair = model.asked[1][-1]["content"]
    assert "[7]" in repair
    assert "[1] to [3]" in repair
    assert model.asked[1][-2] == {"role": "assistant", "content": "It is this [7]."}


async def test_repairs_are_bounded_and_dangling_citations_removed() -> None:
    model = ScriptedModel("A [5].", "B [6] and [1].", "C [8] and [2].", "never asked")
    answer = await answerer(model, max_repairs=2).answer(retrieved())
    assert answer.repairs == 2
    assert len(model.asked) == 3
    assert answer.text == "C and [2]."
    assert answer.unresolved == [8]
    assert [c.number for c in answer.citations] == [2]


async def test_an_answer_without_citations_is_asked_again() -> None:
    model = ScriptedModel("It is blue.", "It is blue [1].")
    answer = await answerer(model).answer(retrieved())
    assert answer.repairs == 1
    assert [c.number for c in answer.citations] == [1]
    assert "cites no excerpt" in model.asked[1][-1]["content"]


async def test_nothing_relevant_is_not_found_without_asking_the_model() -> None:
    model = ScriptedModel()
    answer = await answerer(model).answer(retrieved(found=False))
    assert answer.text == NOT_FOUND
    assert not answer.found
    assert answer.citations == []
    assert model.asked == []


async def test_the_model_saying_not_found_is_taken_as_it_is() -> None:
    model = ScriptedModel("Sorry, that is Not found in the\ndocuments.")
    answer = await answerer(model).answer(retrieved())
    assert answer.text == NOT_FOUND
    assert not answer.found
    assert answer.citations == []
