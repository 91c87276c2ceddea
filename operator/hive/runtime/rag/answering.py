"""Answers from the retrieved chunks, citing them inline as ``[n]``.

The model sees the chunks numbered 1..k and is told to cite the one each statement comes from,
or to say "not found in the documents". Its answer is checked: a citation that names no
chunk (``[7]`` of five), or an answer with no citation at all, goes back to the model with
what was wrong, at most ``rag.max_repairs`` times. Citations still dangling after that are
taken out of the text and listed in :attr:`Answer.unresolved`, so a printed ``[n]`` always
maps to a chunk. When retrieval found nothing relevant (:attr:`Retrieved.found`), no model is
asked and the answer is "not found in the documents".
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hive.runtime.models import Message, Reply
from hive.runtime.rag.chunking import Chunk
from hive.runtime.rag.retrieval import Retrieved, Retriever
from hive.settings import RagSettings

NOT_FOUND = "not found in the documents"
CITATION = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")

SYSTEM = (
    "You answer questions using only the numbered excerpts you are given. After each sentence, "
    "cite the excerpt it comes from by its number in square brackets, like [1] or [2]. Cite "
    "only numbers of excerpts you were given. If the excerpts do not contain the answer, reply "
    f"exactly: {NOT_FOUND}."
)


CLOSING = (
    "Answer in one sentence, then write the number of the excerpt you used in square brackets, "
    "like [1]."
)


class ChatModel(Protocol):
    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply: ...


@dataclass(frozen=True)
class Citation:
    number: int
    chunk: Chunk


@dataclass
class Answer:
    question: str
    text: str
    found: bool
    citations: list[Citation] = field(default_factory=list)  # cited chunks, by number
    excerpts: list[Chunk] = field(default_factory=list)  # what the model was shown, 1..k
    unresolved: list[int] = field(default_factory=list)  # dangling numbers removed
    repairs: int = 0
    relevance: float | None = None


def cited_numbers(text: str) -> list[int]:
    """Every number cited in `text` (``[2]``, ``[1, 3]``), in order of appearance."""
    return [int(n) for group in CITATION.findall(text) for n in group.split(",")]


def says_not_found(text: str) -> bool:
    return NOT_FOUND in " ".join(text.lower().split())


def strip_citations(text: str, dangling: set[int]) -> str:
    """`text` without the numbers in `dangling` (a bracket left empty goes with the space
    before it)."""

    def keep(match: re.Match[str]) -> str:
        numbers = [n.strip() for n in match.group(2).split(",")]
        kept = [n for n in numbers if int(n) not in dangling]
        return f"{match.group(1)}[{', '.join(kept)}]" if kept else ""

    return re.sub(r"(\s*)\[(\d+(?:\s*,\s*\d+)*)\]", keep, text).strip()


def excerpts_prompt(question: str, chunks: Sequence[Chunk]) -> str:
    parts = [f"[{n}] ({chunk.title}) {chunk.text.strip()}" for n, chunk in enumerate(chunks, 1)]
    # The instruction comes again last: small models follow the end of a prompt best (with it,
    # SmolLM2-135M cited in 6 of 8 answers instead of 1 of 8; bench/rag_quality.py).
    return "Excerpts:\n\n" + "\n\n".join(parts) + f"\n\nQuestion: {question}\n{CLOSING}\nAnswer:"


def repair_prompt(count: int, dangling: list[int]) -> str:
    if dangling:
        wrong = ", ".join(f"[{n}]" for n in dangling)
        return (
            f"Your answer cites {wrong}, but there are only excerpts [1] to [{count}]. Answer "
            f"again, citing only excerpts 1 to {count}, or reply: {NOT_FOUND}."
        )
    return (
        "Your answer cites no excerpt. Answer again and put the number of the excerpt each "
        f"sentence comes from in square brackets, from [1] to [{count}], or reply: {NOT_FOUND}."
    )


class Answerer:
    """Retrieval, then the model's cited answer, checked and repaired."""

    def __init__(self, retriever: Retriever, model: ChatModel, settings: RagSettings) -> None:
        self.retriever = retriever
        self.model = model
        self.settings = settings

    async def ask(self, question: str, k: int | None = None) -> Answer:
        retrieved = await self.retriever.retrieve(question, k)
        return await self.answer(retrieved)

    async def answer(self, retrieved: Retrieved) -> Answer:
        chunks = [hit.chunk for hit in retrieved.hits]
        if not retrieved.found or not chunks:
            return Answer(retrieved.question, NOT_FOUND, False, relevance=retrieved.relevance)
        messages: list[Message] = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": excerpts_prompt(retrieved.question, chunks)},
        ]
        repairs = 0
        while True:
            reply = await self.model.complete(
                messages, max_tokens=self.settings.answer_tokens, temperature=0
            )
            text = (reply.content or "").strip()
            if says_not_found(text) or not text:
                answer = Answer(retrieved.question, NOT_FOUND, False, excerpts=chunks)
                answer.repairs, answer.relevance = repairs, retrieved.relevance
                return answer
            numbers = cited_numbers(text)
            dangling = sorted({n for n in numbers if not 1 <= n <= len(chunks)})
            if (numbers and not dangling) or repairs >= self.settings.max_repairs:
                break
            repairs += 1
            messages += [
                {"role": "assistant", "content": text},
                {"role": "user", "content": repair_prompt(len(chunks), dangling)},
            ]
        text = strip_citations(text, set(dangling)) if dangling else text
        used = sorted({n for n in cited_numbers(text)})
        return Answer(
            retrieved.question,
            text,
            True,
            citations=[Citation(n, chunks[n - 1]) for n in used],
            excerpts=chunks,
            unresolved=dangling,
            repairs=repairs,
            relevance=retrieved.relevance,
        )
