"""Text cut into overlapping windows of tokens, each knowing where it sits in the text.

Tokens are the embedding model's own (all-MiniLM-L6-v2's WordPiece tokenizer.json, read with
``tokenizers``), so a chunk of `chunk_tokens` tokens is exactly what the model reads of it. A
chunk is ``text[start:end]`` verbatim, from the first character of its first token to the last
of its last. Consecutive chunks share at most `overlap` tokens: the next one starts `overlap`
tokens before the previous one ended. A window ends after the last full stop, question or
exclamation mark in its second half when there is one, so chunks tend to end with sentences.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hive.errors import InvalidInput, NotInstalled
from hive.runtime.memory.embeddings import TOKENIZER_FILE, find_embedding_model

if TYPE_CHECKING:
    import tokenizers

SENTENCE_ENDS = frozenset({".", "?", "!"})


@dataclass(frozen=True)
class Chunk:
    source: str
    title: str
    index: int  # position among the document's chunks
    start: int  # character offsets in the document's text: text[start:end] == self.text
    end: int
    text: str
    tokens: int


def load_tokenizer(model_dir: str | Path | None = None) -> tokenizers.Tokenizer:
    """The embedding model's tokenizer, without its padding and truncation."""
    try:
        import tokenizers
    except ImportError as exc:
        raise NotInstalled("tokenizers", "make venv") from exc
    tokenizer = tokenizers.Tokenizer.from_file(
        str(find_embedding_model(model_dir) / TOKENIZER_FILE)
    )
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


class TokenChunker:
    """Cuts texts into chunks of at most `chunk_tokens` tokens sharing at most `overlap`."""

    def __init__(self, tokenizer: tokenizers.Tokenizer, chunk_tokens: int, overlap: int) -> None:
        if chunk_tokens < 2:
            raise InvalidInput("rag.chunk_tokens", f"{chunk_tokens} must be at least 2")
        if not 0 <= overlap < chunk_tokens // 2:
            raise InvalidInput(
                "rag.chunk_overlap",
                f"{overlap} must be at least 0 and below half of chunk_tokens ({chunk_tokens})",
            )
        self.tokenizer = tokenizer
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap

    def spans(self, text: str) -> list[tuple[int, int, int]]:
        """(start character, end character, tokens) of each chunk of `text`, in order."""
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        offsets = [(s, e) for s, e in encoding.offsets if e > s]
        count = len(offsets)
        spans: list[tuple[int, int, int]] = []
        first = 0
        while first < count:
            last = min(first + self.chunk_tokens, count)  # exclusive
            if last < count:
                last = self._sentence_end(text, offsets, first, last)
            spans.append((offsets[first][0], offsets[last - 1][1], last - first))
            if last >= count:
                break
            first = max(last - self.overlap, first + 1)
        return spans

    def _sentence_end(
        self, text: str, offsets: list[tuple[int, int]], first: int, last: int
    ) -> int:
        """`last`, moved back to just after a sentence's end in the window's second half."""
        floor = first + max(self.chunk_tokens // 2, self.overlap + 1)
        for index in range(last - 1, floor - 1, -1):
            start, end = offsets[index]
            if text[start:end] in SENTENCE_ENDS:
                return index + 1
        return last

    def chunks(self, source: str, title: str, text: str) -> list[Chunk]:
        return [
            Chunk(source, title, index, start, end, text[start:end], tokens)
            for index, (start, end, tokens) in enumerate(self.spans(text))
        ]
