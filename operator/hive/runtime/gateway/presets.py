"""Task presets: model names a client may ask for that become a chat call on the team's routes.

``summarize`` asks for a short summary of the user's text; ``translate:<language>`` (or
``translate``, to English) for a translation. The preset adds its instruction as the first
system message; everything else in the request is kept.
"""

from __future__ import annotations

from typing import Any

SUMMARIZE = "summarize"
TRANSLATE = "translate"


def preset_names() -> list[str]:
    return [SUMMARIZE, f"{TRANSLATE}:<language>"]


def instruction(model: str) -> str | None:
    """The preset's system instruction for a requested model name, or None (no preset)."""
    if model == SUMMARIZE:
        return (
            "Summarise the user's text in a few sentences. Keep names, figures and conclusions; "
            "answer with the summary only."
        )
    if model == TRANSLATE or model.startswith(f"{TRANSLATE}:"):
        language = model.partition(":")[2].strip() or "English"
        return (
            f"Translate the user's text into {language}. Keep its meaning, tone and formatting; "
            "answer with the translation only."
        )
    return None


def apply(body: dict[str, Any], text: str) -> dict[str, Any]:
    messages = list(body.get("messages") or [])
    return {**body, "messages": [{"role": "system", "content": text}, *messages]}
