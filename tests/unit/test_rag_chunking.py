"""Chunking by the embedding model's tokens: every chunk is its text's slice, none is longer
than asked, consecutive chunks share at most the overlap, and together they cover the text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hive.errors import InvalidInput
from hive.runtime.rag.chunking import TokenChunker, load_tokenizer

TOKENIZER = load_tokenizer()

WORDS = st.sampled_from(
    [
        "bee",
        "hive",
        "winter",
        "café",
        "naïve",
        "Zürich",
        "42",
        "3.5",
        "—",
        "😀",
        "中文",
        "x",
        "well-known",
        "(note)",
        "end.",
        "Why?",
        "Stop!",
        "\n",
        "\n\n",
        "\t",
        "  ",
    ]
)
TEXTS = st.lists(WORDS, max_size=400).map(" ".join) | st.text(max_size=600)


def token_offsets(text: str) -> list[tuple[int, int]]:
    return [(s, e) for s, e in TOKENIZER.encode(text, add_special_tokens=False).offsets if e > s]


@settings(max_examples=150, deadline=None)
@given(text=TEXTS, size=st.integers(4, 64), overlap_share=st.floats(0, 0.49))
def test_chunks_are_exact_slices_within_size_sharing_at_most_the_overlap(
    text: str, size: int, overlap_share: float
) -> None:
    overlap = min(int(size * overlap_share), size // 2 - 1)
    chunker = TokenChunker(TOKENIZER, size, overlap)
    chunks = chunker.chunks("/doc.md", "Doc", text)
    offsets = token_offsets(text)
    starts = {s: i for i, (s, _) in enumerate(offsets)}
    ends = {e: i for i, (_, e) in enumerate(offsets)}
    if not offsets:
        assert chunks == []
        return
    covered: set[int] = set()
    previous: tuple[int, int] | None = None
    for index, chunk in enumerate(chunks):
        assert chunk.index == index
        assert chunk.text == text[chunk.start : chunk.end]  # offsets map back exactly
        first, last = starts[chunk.start], ends[chunk.end]  # chunk edges are token edges
        assert last - first + 1 == chunk.tokens <= size
        covered.update(range(first, last + 1))
        if previous is not None:
            shared = previous[1] - first + 1
            assert 0 <= shared <= overlap  # overlap bounded
            assert first > previous[0]  # progress
        previous = (first, last)
    assert covered == set(range(len(offsets)))  # nothing left out


def test_a_window_ends_after_a_sentence_in_its_second_half() -> None:
    text = "One two three four five six seven. Eight nine ten eleven twelve thirteen."
    chunks = TokenChunker(TOKENIZER, 12, 2).chunks("/d.txt", "D", text)
    assert chunks[0].text == "One two three four five six seven."
    assert chunks[1].text.endswith("thirteen.")


def test_overlap_must_leave_room_for_progress() -> None:
    with pytest.raises(InvalidInput, match=r"rag\.chunk_overlap"):
        TokenChunker(TOKENIZER, 10, 5)
    with pytest.raises(InvalidInput, match=r"rag\.chunk_tokens"):
        TokenChunker(TOKENIZER, 1, 0)
