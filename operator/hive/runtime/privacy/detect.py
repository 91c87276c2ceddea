"""Finding personal data in text with Microsoft Presidio's recognisers (and, in ``ner`` mode, the
spaCy English model's named entities).

Presidio and spaCy are imported when the first detector is built, never at module import, so a
``hive`` command or an agent without a privacy policy does not pay for them. Nothing here
touches the network: ``tldextract`` (which Presidio's email recogniser uses) is given its
bundled suffix list instead of the one it would download, and the spaCy model is loaded from a
folder (``hack/models.sh`` extracts it, verified by SHA-256).

Long texts are analysed in chunks of `CHUNK` characters that overlap by `OVERLAP`, so a 1 MB
text takes time in proportion to its length and an entity on a chunk's edge is still found.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hive.api.privacy import NER_ENTITIES, Checksum, CustomRecognizer, DetectionMode
from hive.errors import InvalidInput, NotInstalled

CHUNK = 8192
OVERLAP = 256
NER_LABELS = {"PERSON": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION", "ORG": "ORGANIZATION"}
# Tokens with a known prefix: OpenAI/Anthropic, GitHub, GitLab, Slack, AWS access keys, Stripe,
# Google API keys, JWTs.
API_KEY_PATTERN = (
    r"\b(?:sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|glpat-[A-Za-z0-9_-]{20,}|xox[abprs]-[A-Za-z0-9-]{10,}|AKIA[0-9A-Z]{16}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|AIza[0-9A-Za-z_-]{35}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
)


PHONE_INTERNATIONAL = r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?)(?:[ .-]?\d{2,4}){2,4}\b"
PHONE_NATIONAL = r"(?<![\w.-])(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}\b(?![-.]\d)"
PHONE_CONTEXT = ["phone", "call", "tel", "mobile", "cell", "contact", "reach", "text", "number"]
VERSION_BEFORE = re.compile(
    r"\b(?:version|release|build|ver)\b\.?(?:\s+\w+)?\s*$|\bv$", re.IGNORECASE
)
CONTEXT_WINDOW = 48
CONTEXT_BOOST = 0.35


# A text without these cannot hold the entity: its recogniser (a slower regex engine with a
# timeout) is skipped. Most prompts hold no card, IBAN or key at all.
MAY_HOLD = {
    "EMAIL_ADDRESS": re.compile(r"@"),
    "CREDIT_CARD": re.compile(r"\d[\d -]{11,}\d"),
    "IBAN_CODE": re.compile(r"[A-Za-z]{2}\d{2}"),
    "IP_ADDRESS": re.compile(r"\d\.\d|[0-9a-fA-F]:[0-9a-fA-F:]"),
    "US_SSN": re.compile(r"\d{3}[ .-]?\d{2}[ .-]?\d{4}"),
}


@dataclass(frozen=True)
class Finding:
    """One entity found: its type, where it is (character offsets) and how sure."""

    entity: str
    start: int
    end: int
    score: float

    def text(self, source: str) -> str:
        return source[self.start : self.end]


_LOCK = threading.Lock()
_NLP: dict[str, Any] = {}


def _offline_tldextract() -> None:
    import tldextract.tldextract as tld

    tld.TLD_EXTRACTOR = tld.TLDExtract(suffix_list_urls=(), cache_dir=None)


MODEL_DIR = "en_core_web_sm-3.8.0"
REPO_ROOT = Path(__file__).resolve().parents[4]


def default_model_dir() -> Path:
    """The configured folder, else ``.models/en_core_web_sm-3.8.0`` in the repository or the
    working directory (``make models``)."""
    from hive.settings import get_settings

    configured = get_settings().privacy.model_dir
    if configured is not None:
        return configured.expanduser()
    for root in (REPO_ROOT, Path.cwd()):
        if (root / ".models" / MODEL_DIR / "config.cfg").is_file():
            return root / ".models" / MODEL_DIR
    return REPO_ROOT / ".models" / MODEL_DIR


def load_nlp(model_dir: Path) -> Any:
    """The spaCy pipeline in `model_dir`, loaded once per process (NER only)."""
    key = str(model_dir)
    with _LOCK:
        if key not in _NLP:
            if not (model_dir / "config.cfg").is_file():
                raise NotInstalled(f"the spaCy English model ({model_dir})", "make models")
            import spacy

            _NLP[key] = spacy.load(
                model_dir, exclude=["parser", "lemmatizer", "tagger", "attribute_ruler", "senter"]
            )
        return _NLP[key]


def _luhn(digits: str) -> bool:
    numbers = [int(c) for c in digits if c.isdigit()]
    if len(numbers) < 2:
        return False
    total = 0
    for index, n in enumerate(reversed(numbers)):
        if index % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _mod97(text: str) -> bool:
    compact = re.sub(r"[^A-Za-z0-9]", "", text).upper()
    if len(compact) < 5:
        return False
    moved = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in moved)) % 97 == 1
    except ValueError:
        return False


CHECKS = {Checksum.LUHN: _luhn, Checksum.MOD97: _mod97}


def _pattern_recognizers(custom: Sequence[CustomRecognizer]) -> list[Any]:
    from presidio_analyzer import Pattern, PatternRecognizer
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        UsSsnRecognizer,
    )

    class Declared(PatternRecognizer):
        def __init__(self, spec: CustomRecognizer) -> None:
            super().__init__(
                supported_entity=spec.entity,
                name=f"custom-{spec.entity}",
                patterns=[Pattern(spec.entity, spec.regex, spec.score)],
                context=list(spec.context),
                global_regex_flags=re.MULTILINE,
            )
            self.check = CHECKS.get(Checksum(spec.checksum))

        def validate_result(self, pattern_text: str) -> bool | None:
            return None if self.check is None else self.check(pattern_text)

    class Phone(PatternRecognizer):
        """Phone numbers by pattern (Presidio's libphonenumber matcher is ~15 ms per KB):
        with a leading + they score 0.6; national forms score 0.4 and need a context word."""

        def __init__(self) -> None:
            super().__init__(
                supported_entity="PHONE_NUMBER",
                name="phones",
                patterns=[
                    Pattern("intl", PHONE_INTERNATIONAL, 0.6),
                    Pattern("national", PHONE_NATIONAL, 0.4),
                ],
                context=PHONE_CONTEXT,
                global_regex_flags=re.MULTILINE,
            )

        def validate_result(self, pattern_text: str) -> bool | None:
            return 7 <= sum(c.isdigit() for c in pattern_text) <= 15 or False

    class Ip(IpRecognizer):
        """IP addresses, but not a dotted version (``v1.2.3.4``, ``version 1.2.3.4``)."""

        def analyze(
            self,
            text: str,
            entities: list[str],
            nlp_artifacts: Any = None,
            regex_flags: int | None = None,
        ) -> list[Any]:
            results = super().analyze(text, entities, nlp_artifacts, regex_flags) or []
            return [
                r
                for r in results
                if not VERSION_BEFORE.search(text[max(0, r.start - 24) : r.start])
            ]

    api_key = PatternRecognizer(
        supported_entity="API_KEY",
        name="api-keys",
        patterns=[Pattern("API_KEY", API_KEY_PATTERN, 0.9)],
        global_regex_flags=re.MULTILINE,
    )
    return [
        EmailRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        Ip(context=["ip", "address", "host", "server", "from"]),
        Phone(),
        UsSsnRecognizer(),
        api_key,
        *(Declared(spec) for spec in custom),
    ]


def _best_of(group: list[Finding]) -> list[Finding]:
    ordered = sorted(group, key=lambda f: (-f.score, -(f.end - f.start), f.start))
    kept: list[Finding] = []
    for finding in ordered:
        if all(finding.end <= k.start or finding.start >= k.end for k in kept):
            kept.append(finding)
    return kept


def _without_overlaps(findings: list[Finding]) -> list[Finding]:
    """Of overlapping findings the higher-scored (then the longer) one wins; a sweep over runs
    of overlapping findings, so a text with thousands of findings stays linear."""
    kept: list[Finding] = []
    group: list[Finding] = []
    group_end = -1
    for finding in sorted(findings, key=lambda f: (f.start, f.end)):
        if group and finding.start >= group_end:
            kept.extend(_best_of(group))
            group = []
        group.append(finding)
        group_end = max(group_end, finding.end) if len(group) > 1 else finding.end
    kept.extend(_best_of(group))
    return sorted(kept, key=lambda f: f.start)


class Detector:
    """Finds `entities` (all it knows when empty) scored at least `min_score`."""

    def __init__(
        self,
        mode: DetectionMode = DetectionMode.FAST,
        min_score: float = 0.5,
        custom: Sequence[CustomRecognizer] = (),
        model_dir: Path | None = None,
    ) -> None:
        try:
            _offline_tldextract()
            self._recognizers = _pattern_recognizers(custom)
        except ImportError as exc:
            raise NotInstalled(
                "Presidio (privacy policies)", "pip install 'hive[privacy]'"
            ) from exc
        self.mode = mode
        self.min_score = min_score
        self._nlp = (
            load_nlp(model_dir or default_model_dir())
            if DetectionMode(mode) == DetectionMode.NER
            else None
        )

    def analyze(self, text: str, entities: Sequence[str] = ()) -> list[Finding]:
        if not text:
            return []
        found: list[Finding] = []
        step = CHUNK - OVERLAP
        for base in range(0, max(len(text) - OVERLAP, 1), step):
            found.extend(self._chunk(text[base : base + CHUNK], base, entities))
        return _without_overlaps(sorted(set(found), key=lambda f: f.start))

    def _chunk(self, text: str, base: int, entities: Sequence[str]) -> list[Finding]:
        wanted = set(entities)
        out: list[Finding] = []
        for recognizer in self._recognizers:
            supported = recognizer.supported_entities
            if wanted and not wanted.intersection(supported):
                continue
            hint = MAY_HOLD.get(supported[0])
            if hint is not None and not hint.search(text):
                continue
            context = [w.lower() for w in (recognizer.context or ())]
            for r in recognizer.analyze(text, supported, None) or ():
                if r.score < 1 and context:
                    before = text[max(0, r.start - CONTEXT_WINDOW) : r.start].lower()
                    if any(word in before for word in context):
                        r.score = min(1.0, r.score + CONTEXT_BOOST)
                if r.score >= self.min_score:
                    out.append(Finding(r.entity_type, base + r.start, base + r.end, r.score))
        if self._nlp is not None and (not wanted or wanted & NER_ENTITIES):
            for ent in self._nlp(text).ents:
                entity = NER_LABELS.get(ent.label_)
                if entity and (not wanted or entity in wanted) and self.min_score <= 0.85:
                    out.append(Finding(entity, base + ent.start_char, base + ent.end_char, 0.85))
        return out


def validate_regex(regex: str, field: str) -> None:
    """Raises InvalidInput naming `field` and the position when `regex` does not compile."""
    try:
        re.compile(regex)
    except re.error as exc:
        raise InvalidInput(
            field, f"invalid regular expression at position {exc.pos}: {exc.msg}"
        ) from exc
