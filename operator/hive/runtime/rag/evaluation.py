"""Measuring retrieval and citations against a question set with known source passages.

A question set is YAML (tests/data/rag/questions.yaml is the shipped one): ``questions`` with
``id``, ``question``, ``source`` (a file name in the corpus folder) and ``passages`` (text of
that document that answers it; any run of whitespace matches any other), and ``unanswerable``
questions that nothing in the corpus answers. A chunk is relevant to a question when it is of
the question's source and covers at least half of one of its passages' characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hive.errors import InvalidInput
from hive.runtime.rag.chunking import Chunk
from hive.runtime.rag.documents import read_document

MIN_COVERED = 0.5


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    source: str  # absolute path, as the index stores it
    spans: tuple[tuple[int, int], ...]  # the passages' character offsets in the document


@dataclass(frozen=True)
class QuestionSet:
    questions: list[Question]
    unanswerable: list[str]


def find_passage(text: str, passage: str) -> tuple[int, int]:
    """Offsets of the one place `passage` occurs in `text`, whitespace-insensitively."""
    pattern = r"\s+".join(re.escape(word) for word in passage.split())
    found = [m.span() for m in re.finditer(pattern, text)]
    if len(found) != 1:
        raise InvalidInput("passages", f"{passage[:60]!r} occurs {len(found)} times, not once")
    return found[0]


def load_questions(path: Path, corpus: Path) -> QuestionSet:
    data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    questions = []
    for entry in data["questions"]:
        document = read_document(corpus / entry["source"])
        spans = tuple(find_passage(document.text, p) for p in entry["passages"])
        questions.append(Question(entry["id"], entry["question"], document.source, spans))
    return QuestionSet(questions, list(data.get("unanswerable") or []))


def is_relevant(chunk: Chunk, question: Question) -> bool:
    if chunk.source != question.source:
        return False
    for start, end in question.spans:
        covered = min(end, chunk.end) - max(start, chunk.start)
        if covered >= MIN_COVERED * (end - start):
            return True
    return False


def recall_at(results: Sequence[Sequence[Chunk]], questions: Sequence[Question], k: int) -> float:
    """Share of questions with a relevant chunk among their first `k` results."""
    hits = sum(
        any(is_relevant(chunk, question) for chunk in chunks[:k])
        for chunks, question in zip(results, questions, strict=True)
    )
    return hits / len(questions) if questions else 0.0
