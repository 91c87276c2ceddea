"""Privacy detection on the labelled evaluation set, and its bad inputs (1 MB, binary)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from hive.api.privacy import Boundary, DetectionMode, PrivacySpec
from hive.runtime.privacy.detect import CHUNK, Detector
from hive.runtime.privacy.evaluation import evaluate, load
from hive.runtime.privacy.guard import Guard

EVAL = Path(__file__).resolve().parents[1] / "data" / "privacy" / "eval.jsonl"
PATTERN_TARGETS = ("EMAIL_ADDRESS", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return load(EVAL)


def test_the_set_is_large_enough_with_hard_negatives(rows: list[dict]) -> None:
    assert len(rows) >= 300
    assert sum(len(r["entities"]) for r in rows) >= 500
    assert sum(1 for r in rows if not r["entities"]) >= 50


@pytest.mark.parametrize("mode", [DetectionMode.FAST, DetectionMode.NER])
def test_pattern_entities_meet_their_targets(rows: list[dict], mode: DetectionMode) -> None:
    scores = evaluate(Detector(mode), rows)
    for entity in PATTERN_TARGETS:
        assert scores[entity].recall >= 0.99, scores[entity]
        assert scores[entity].precision >= 0.95, scores[entity]


def test_names_and_places_meet_their_targets_with_ner(rows: list[dict]) -> None:
    scores = evaluate(Detector(DetectionMode.NER), rows)
    assert scores["PERSON"].recall >= 0.85, scores["PERSON"]
    assert scores["LOCATION"].recall >= 0.85, scores["LOCATION"]


def test_a_megabyte_is_chunked_and_entities_on_chunk_edges_are_found() -> None:
    detector = Detector(DetectionMode.FAST)
    filler = "lorem ipsum dolor sit amet " * 400
    email = "edge.case@example.com"
    text = filler[: CHUNK - 11] + " " + email + " " + filler
    text = (text * (1_048_576 // len(text) + 1))[:1_048_576]
    started = time.monotonic()
    findings = detector.analyze(text)
    assert time.monotonic() - started < 120  # bounded: linear in the length, chunk by chunk
    assert any(f.text(text) == email and f.start == CHUNK - 10 for f in findings)
    assert all(f.text(text) == email for f in findings if f.entity == "EMAIL_ADDRESS")


def test_a_megabyte_dense_with_entities_stays_linear(rows: list[dict]) -> None:
    joined = " ".join(r["text"] for r in rows)
    text = (joined * (1_048_576 // len(joined) + 1))[:1_048_576]
    started = time.monotonic()
    findings = Detector(DetectionMode.FAST).analyze(text)
    assert time.monotonic() - started < 60  # ~1 s on an idle core; quadratic took ~30 s
    assert len(findings) > 10_000
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


def test_binary_and_invalid_utf8_tool_output_is_scrubbed_not_a_crash() -> None:
    guard = Guard(PrivacySpec(mode=DetectionMode.FAST), key="a test key of some length")
    raw = b"\x00\xff\xfe\x80 card 4111 1111 1111 1111 \xc3\x28 mail a.b@example.com \x00"
    scrubbed = guard.scrub(raw, Boundary.TOOL_OUTPUTS, "tool:x")
    assert isinstance(scrubbed, str)
    assert "4111" not in scrubbed
    assert "a.b@example.com" not in scrubbed
    assert "<CREDIT_CARD>" in scrubbed
    assert "<EMAIL_ADDRESS>" in scrubbed
    nested = guard.scrub({"rows": [raw, 3, None]}, Boundary.TOOL_OUTPUTS, "tool:x")
    assert "4111" not in nested["rows"][0]
    assert nested["rows"][1:] == [3, None]
