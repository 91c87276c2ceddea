"""Properties of privacy handling: reversible strategies restore exactly, redaction leaves no
character of a detected span, offsets stay valid on any unicode text."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hive.api.privacy import Boundary, DetectionMode, PrivacySpec
from hive.runtime.privacy.detect import Detector
from hive.runtime.privacy.guard import Guard

DETECTOR = Detector(DetectionMode.FAST)
REVERSIBLE = PrivacySpec.model_validate(
    {
        "mode": "fast",
        "rules": [
            {"entity": e, "strategy": "pseudonymise"}
            for e in ("EMAIL_ADDRESS", "CREDIT_CARD", "PHONE_NUMBER", "IBAN_CODE", "API_KEY")
        ],
    }
)
REDACT = PrivacySpec(mode=DetectionMode.FAST)
GUARDS = {
    "reversible": Guard(REVERSIBLE, key="property test key 0123", detector=DETECTOR),
    "redact": Guard(REDACT, key="property test key 0123", detector=DETECTOR),
}

words = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="<>"), max_size=30
)
values = st.sampled_from(
    [
        "jane.doe@example.com",
        "k.tanaka@corp.example.net",
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "+1 415 555 0132",
        "DE89370400440532013000",
        "GB82 WEST 1234 5698 7654 32",
        "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
    ]
)
texts = st.lists(st.tuples(words, values), min_size=1, max_size=4).map(
    lambda parts: "".join(f"{w} {v} " for w, v in parts)
)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(texts)
def test_pseudonymise_then_restore_is_the_identity(text: str) -> None:
    guard = GUARDS["reversible"]
    hidden = guard.scrub_text(text, Boundary.MODEL_PROMPTS, "model:m")
    for finding in DETECTOR.analyze(text):
        if finding.entity != "IP_ADDRESS":
            assert finding.text(text) not in hidden
    assert guard.restore(hidden) == text


@SETTINGS
@given(texts)
def test_redaction_leaves_no_detected_span(text: str) -> None:
    guard = GUARDS["redact"]
    findings = DETECTOR.analyze(text)
    redacted = guard.scrub_text(text, Boundary.MODEL_PROMPTS, "model:m")
    for finding in findings:
        assert finding.text(text) not in redacted
    assert DETECTOR.analyze(redacted) == []


@SETTINGS
@given(st.text(max_size=300), values, st.text(max_size=50))
def test_offsets_are_valid_on_unicode_text(before: str, value: str, after: str) -> None:
    text = f"{before} {value} {after}"
    for finding in DETECTOR.analyze(text):
        assert 0 <= finding.start < finding.end <= len(text)
        assert finding.text(text).strip() == finding.text(text)
    assert any(f.text(text) == value for f in DETECTOR.analyze(text)) or any(
        value in f.text(text) or f.text(text) in value for f in DETECTOR.analyze(text)
    )
