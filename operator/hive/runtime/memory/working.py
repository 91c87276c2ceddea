"""Working memory: what an agent puts in front of its model, kept within a token budget.

An agent's context is a list of :class:`Segment` s — the system prompt and the task (pinned:
always sent verbatim), recalled memories, earlier turns of its own history and tool results —
each with a token count (see :mod:`hive.runtime.memory.tokens`), a priority, its recency and
its relevance to the task (cosine similarity of embeddings when an embedder is configured, else
word overlap — "lexical" in the events). :func:`plan` is the pure, fast part: when the next
request would exceed the budget it takes the segments with the lowest score first and either
cuts a long one just enough (tool results, long replies), or drops it (a recalled memory; a
whole old turn: the assistant's tool calls with their results). A plan never exceeds the
budget; when even the pinned segments and the smallest forms of the rest do not fit it raises
:class:`ContextOverflow` instead of sending a request that would. :class:`WorkingMemory` applies
the plan: cuts text with the model's tokenizer, and summarises the dropped history with the
model into a summary that takes the dropped turns' place, within the room the plan left.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from hive.errors import HiveError, InvalidInput
from hive.runtime.memory.tokens import TokenCounter, message_text, tools_text
from hive.runtime.models import Message

if TYPE_CHECKING:  # numpy and the ONNX runtime load only where embeddings are used
    from hive.runtime.memory.embeddings import Embedder

log = logging.getLogger(__name__)

EMBEDDED_CONTEXT_WINDOW = 2048  # the n_ctx Hive starts the embedded model's server with
DEFAULT_CONTEXT_WINDOW = 8192  # other models: most have at least this much
DEFAULT_ANSWER_TOKENS = 512  # room kept for the answer when the client sets no limit
MIN_CUT_TOKENS = 16  # a cut keeps at least this much of a message's content
MIN_SUMMARY_TOKENS = 24  # a summary shorter than this is not worth asking for
CUT_MARK = "\n[... {n} more tokens cut to fit the context]"
RECALLED_HEADER = "What you remember that may help:"
SUMMARY_HEADER = "Summary of earlier work on this task (older turns were summarised):\n"
SUMMARY_PROMPT = (
    "Summarise the following work of an agent on its task for the agent itself: what it did, "
    "what it found (keep numbers, names and errors), and what is still open. Be brief."
)


class SegmentKind(StrEnum):
    SYSTEM = "system"
    TASK = "task"
    RECALLED = "recalled"
    HISTORY = "history"
    TOOL_RESULT = "tool-result"
    SUMMARY = "summary"


# How much a kind of segment is worth keeping, before relevance and recency.
PRIORITY = {
    SegmentKind.SYSTEM: 1.0,
    SegmentKind.TASK: 1.0,
    SegmentKind.SUMMARY: 0.8,
    SegmentKind.HISTORY: 0.6,
    SegmentKind.RECALLED: 0.5,
    SegmentKind.TOOL_RESULT: 0.4,
}
WEIGHTS = {"priority": 0.4, "relevance": 0.35, "recency": 0.25}


class ContextOverflow(InvalidInput):
    """Even the pinned segments and the smallest forms of the rest exceed the budget."""

    def __init__(self, needed: int, budget: int) -> None:
        super().__init__(
            "context.maxTokens",
            f"the system prompt, the task and what cannot be cut take {needed} tokens, more "
            f"than the budget of {budget}",
        )
        self.needed = needed
        self.budget = budget


@dataclass
class Segment:
    """A part of the context: one message, or one line of the recalled memories' message."""

    id: int
    kind: SegmentKind
    message: Message  # the chat message (a recalled memory: its line, as the content)
    tokens: int  # the message's tokens with its framing (a recalled memory: its line's only)
    order: int  # position in the conversation; higher is more recent
    pinned: bool = False
    priority: float = 0.0
    relevance: float = 0.0
    turn: int | None = None  # segments of one turn (tool calls and their results) go together
    floor: int | None = None  # smallest size a cut leaves; None: cannot be cut

    @property
    def text(self) -> str:
        return str(self.message.get("content") or "")


@dataclass
class Plan:
    """What to send: kept segments (some cut to a size) and what was dropped."""

    kept: list[Segment]
    cut: dict[int, int]  # segment id -> tokens it may keep
    dropped: list[Segment]
    tokens: int  # the request's tokens under this plan
    before: int  # the request's tokens before


def score(segment: Segment, newest: int) -> float:
    recency = segment.order / newest if newest > 0 else 1.0
    return (
        WEIGHTS["priority"] * segment.priority
        + WEIGHTS["relevance"] * segment.relevance
        + WEIGHTS["recency"] * recency
    )


def request_tokens(segments: Sequence[Segment], fixed: int, header: int) -> int:
    """Tokens of a request made of `segments`: `fixed` (framing, tool schemas), each segment,
    and the recalled memories' message header once when any memory is there."""
    recalled = any(s.kind is SegmentKind.RECALLED for s in segments)
    return fixed + sum(s.tokens for s in segments) + (header if recalled else 0)


def plan(
    segments: Sequence[Segment],
    budget: int,
    *,
    fixed: int = 0,
    recalled_header: int = 0,
    protect_turn: int | None = None,
) -> Plan:
    """Fit `segments` into `budget` tokens, the least valuable going first.

    A segment that can be cut (it has a `floor`) is cut just enough when that suffices, else
    dropped when it may be (with its whole turn), else cut to its floor. Pinned segments, the
    turns holding one, and the turn `protect_turn` (the latest: the model must see what its
    last calls returned) are never dropped. Raises ContextOverflow when nothing left to take
    makes it fit.
    """
    before = request_tokens(segments, fixed, recalled_header)
    if before <= budget:
        return Plan(list(segments), {}, [], before, before)
    newest = max((s.order for s in segments), default=0)
    sizes = {s.id: s.tokens for s in segments}
    dropped: set[int] = set()
    units: list[list[Segment]] = []  # what was dropped together, in the order it was
    by_turn: dict[int, list[Segment]] = {}
    for s in segments:
        if s.turn is not None:
            by_turn.setdefault(s.turn, []).append(s)
    held = {s.turn for s in segments if s.pinned and s.turn is not None} | {protect_turn}
    recalled_left = sum(1 for s in segments if s.kind is SegmentKind.RECALLED)
    total = before
    for segment in sorted((s for s in segments if not s.pinned), key=lambda s: score(s, newest)):
        if total <= budget:
            break
        if segment.id in dropped:
            continue
        excess = total - budget
        size = sizes[segment.id]
        can_cut = segment.floor is not None and size > segment.floor
        if segment.turn is None:  # a tool result without its call stays (cut, at most)
            may_drop = segment.kind is not SegmentKind.TOOL_RESULT
        else:  # a turn goes whole, unless it is the latest or holds a pinned segment
            may_drop = segment.turn not in held
        if can_cut and segment.floor is not None and size - excess >= segment.floor:
            sizes[segment.id] = size - excess
            total -= excess
        elif may_drop:
            group = by_turn[segment.turn] if segment.turn is not None else [segment]
            unit = [member for member in group if member.id not in dropped]
            units.append(unit)
            for member in unit:
                dropped.add(member.id)
                total -= sizes[member.id]
                if member.kind is SegmentKind.RECALLED:
                    recalled_left -= 1
                    if recalled_left == 0:
                        total -= recalled_header
        elif can_cut and segment.floor is not None:
            total -= size - segment.floor
            sizes[segment.id] = segment.floor
    if total > budget:
        raise ContextOverflow(total, budget)
    # A drop may free more than needed: take back what fits, the most valuable first.
    for unit in reversed(units):
        size = sum(sizes[member.id] for member in unit)
        recalled = sum(1 for member in unit if member.kind is SegmentKind.RECALLED)
        header = recalled_header if recalled and recalled_left == 0 else 0
        if total + size + header <= budget:
            total += size + header
            recalled_left += recalled
            dropped.difference_update(member.id for member in unit)
    kept = [s for s in segments if s.id not in dropped]
    cut = {s.id: sizes[s.id] for s in kept if sizes[s.id] != s.tokens}
    return Plan(kept, cut, [s for s in segments if s.id in dropped], total, before)


def default_budget(model: object) -> int:
    """The context budget of an agent whose spec sets none: the model's window less its
    answer limit."""
    from hive.runtime.embedded import MODEL_NAME

    window = EMBEDDED_CONTEXT_WINDOW if getattr(model, "model", None) == MODEL_NAME else 0
    window = window or DEFAULT_CONTEXT_WINDOW
    answer = getattr(model, "max_tokens", None) or DEFAULT_ANSWER_TOKENS
    return max(window - int(answer), 256)


_WORD = re.compile(r"[a-z0-9]{3,}")


def lexical_relevance(task: str, texts: Sequence[str]) -> list[float]:
    """Share of the task's words each text contains (the fallback without an embedder)."""
    words = set(_WORD.findall(task.lower()))
    if not words:
        return [0.0 for _ in texts]
    return [len(words & set(_WORD.findall(t.lower()))) / len(words) for t in texts]


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


Summarize = Callable[[str, int], Awaitable[str]]  # (history text, most tokens) -> summary


@dataclass
class Optimised:
    """One optimisation's outcome, for events and the run report."""

    messages: list[Message]
    tokens: int
    before: int
    budget: int
    dropped: dict[str, int] = field(default_factory=dict)  # segment kind -> count
    cut: int = 0
    summarised: int = 0  # history segments a summary replaced

    @property
    def changed(self) -> bool:
        return bool(self.dropped or self.cut or self.summarised)

    def event(self, counter: TokenCounter, relevance: str) -> dict[str, Any]:
        return {
            "budget": self.budget,
            "tokens_before": self.before,
            "tokens": self.tokens,
            "dropped": dict(self.dropped),
            "cut": self.cut,
            "summarised": self.summarised,
            "tokenizer": counter.name,
            "exact": counter.exact,
            "relevance": relevance,
        }


@dataclass
class WorkingMemory:
    """An agent's context for one task, kept within `budget` tokens a request."""

    task: str
    counter: TokenCounter
    budget: int
    embedder: Embedder | None = None
    summarize: Summarize | None = None
    segments: list[Segment] = field(default_factory=list)
    summary_share: float = 0.25  # of the budget, at most, for a summary of dropped history
    _next: int = 0
    _turns: int = 0
    _task_vector: list[float] | None = None
    _recalled_header: int = 0

    @property
    def relevance_source(self) -> str:
        return f"embeddings ({self.embedder.model})" if self.embedder is not None else "lexical"

    async def start(self, system_prompt: str, recalled: Sequence[str]) -> None:
        """The opening context: system prompt, recalled memories, the task."""
        await self._add(SegmentKind.SYSTEM, {"role": "system", "content": system_prompt})
        if recalled:
            header = await self.counter.count([RECALLED_HEADER])
            self._recalled_header = header[0] + self.counter.framing("system")
            for memory in recalled:
                await self._add(SegmentKind.RECALLED, {"role": "system", "content": memory})
        await self._add(SegmentKind.TASK, {"role": "user", "content": self.task})

    def begin_turn(self) -> int:
        self._turns += 1
        return self._turns

    async def add(self, message: Message, *, turn: int | None = None) -> None:
        """A message of the conversation: the assistant's, or a tool's result."""
        kind = SegmentKind.TOOL_RESULT if message.get("role") == "tool" else SegmentKind.HISTORY
        await self._add(kind, message, turn=turn)

    async def _add(self, kind: SegmentKind, message: Message, *, turn: int | None = None) -> None:
        recalled = kind is SegmentKind.RECALLED
        text = f"\n- {message['content']}" if recalled else message_text(message)
        counted = (await self.counter.count([text]))[0]
        framing = 0 if recalled else self.counter.framing(str(message.get("role") or "user"))
        pinned = kind in (SegmentKind.SYSTEM, SegmentKind.TASK)
        floor = None
        if kind in (SegmentKind.TOOL_RESULT, SegmentKind.HISTORY) and not message.get("tool_calls"):
            floor = framing + min(MIN_CUT_TOKENS, counted)
        segment = Segment(
            id=self._next,
            kind=kind,
            message=dict(message),
            tokens=counted + framing,
            order=self._next,
            pinned=pinned,
            priority=PRIORITY[kind],
            turn=turn,
            floor=floor,
        )
        self._next += 1
        if not pinned:
            segment.relevance = await self._relevance(segment.text)
        self.segments.append(segment)

    async def _relevance(self, text: str) -> float:
        if self.embedder is None:
            return lexical_relevance(self.task, [text])[0]
        if self._task_vector is None:
            self._task_vector = (await self.embedder.embed([self.task]))[0]
        vector = (await self.embedder.embed([text[:4000]]))[0]
        return max(cosine(self._task_vector, vector), 0.0)

    def messages(self) -> list[Message]:
        """The context as chat messages, the recalled memories in one system message."""
        out: list[Message] = []
        memories: list[str] = []
        for s in self.segments:
            if s.kind is SegmentKind.RECALLED:
                memories.append(f"- {s.text}")
                continue
            if memories:
                out.append({"role": "system", "content": "\n".join([RECALLED_HEADER, *memories])})
                memories = []
            out.append(dict(s.message))
        return out

    async def fit(self, tools: Sequence[dict[str, Any]] | None = None) -> Optimised:
        """Make the next request fit the budget; returns the messages to send."""
        schema = tools_text(tools)
        fixed = self.counter.request_framing
        if schema:
            fixed += (await self.counter.count([schema]))[0]
        options: dict[str, Any] = {
            "fixed": fixed,
            "recalled_header": self._recalled_header,
            "protect_turn": self._turns or None,
        }
        chosen = plan(self.segments, self.budget, **options)
        if self.summarize is not None and any(s.kind in _SUMMARISED for s in chosen.dropped):
            reserve = int(self.budget * self.summary_share)  # room for the summary
            with contextlib.suppress(ContextOverflow):  # no room for one: drop without
                chosen = plan(self.segments, self.budget - reserve, **options)
        await self._apply_cuts(chosen.cut)
        dropped_ids = {s.id for s in chosen.dropped}
        kept = [s for s in self.segments if s.id not in dropped_ids]
        history = [s for s in chosen.dropped if s.kind in _SUMMARISED]
        summary = None
        if history and self.summarize is not None:
            summary = await self._summary(history, self.budget - chosen.tokens)
        if summary is not None:
            at = next((i for i, s in enumerate(kept) if s.order > history[0].order), len(kept))
            kept.insert(at, summary)
        self.segments = kept
        tokens = request_tokens(self.segments, fixed, self._recalled_header)
        if tokens > self.budget:  # the plan's sizes are upper bounds: this cannot happen
            raise ContextOverflow(tokens, self.budget)
        result = Optimised(self.messages(), tokens, chosen.before, self.budget)
        result.cut = len(chosen.cut)
        result.summarised = len(history) if summary is not None else 0
        for s in chosen.dropped:
            if summary is None or s.kind not in _SUMMARISED:
                result.dropped[str(s.kind)] = result.dropped.get(str(s.kind), 0) + 1
        return result

    async def _apply_cuts(self, cut: dict[int, int]) -> None:
        for segment in self.segments:
            keep = cut.get(segment.id)
            if keep is None:
                continue
            framing = self.counter.framing(str(segment.message.get("role") or "user"))
            mark = CUT_MARK.format(n=segment.tokens - keep)
            mark_tokens = (await self.counter.count([mark]))[0]
            head = await self.counter.truncate(segment.text, keep - framing - mark_tokens)
            text = head + mark
            tokens = (await self.counter.count([text]))[0] + framing
            if tokens > keep:  # the mark does not fit: the head alone, cut to size
                text = await self.counter.truncate(segment.text, keep - framing)
                tokens = (await self.counter.count([text]))[0] + framing
            segment.message["content"] = text
            segment.tokens = tokens
            segment.floor = min(segment.floor or tokens, tokens)

    async def _summary(self, history: Sequence[Segment], room: int) -> Segment | None:
        """The model's summary of dropped history in at most `room` tokens, framing included."""
        assert self.summarize is not None
        framing = self.counter.framing("user")
        header = (await self.counter.count([SUMMARY_HEADER]))[0]
        limit = room - framing - header
        if limit < MIN_SUMMARY_TOKENS:
            return None
        lines = [f"{s.message.get('role', 'user')}: {message_text(s.message)}" for s in history]
        source = await self.counter.truncate("\n".join(lines), self.budget // 2)
        try:
            answer = await self.summarize(source, limit)
        except HiveError as exc:  # no summary: the history is dropped without one
            log.warning("summarising %d segments of history failed: %s", len(history), exc)
            return None
        text = await self.counter.truncate(answer.strip(), limit)
        while text:
            content = SUMMARY_HEADER + text
            tokens = (await self.counter.count([content]))[0] + framing
            if tokens <= room:
                return Segment(
                    id=self._next_id(),
                    kind=SegmentKind.SUMMARY,
                    message={"role": "user", "content": content},
                    tokens=tokens,
                    order=history[0].order,
                    priority=PRIORITY[SegmentKind.SUMMARY],
                    relevance=1.0,
                    floor=framing + min(MIN_CUT_TOKENS, tokens - framing),
                )
            limit -= tokens - room
            text = await self.counter.truncate(text, limit)
        return None

    def _next_id(self) -> int:
        self._next += 1
        return self._next - 1


_SUMMARISED = (SegmentKind.HISTORY, SegmentKind.TOOL_RESULT, SegmentKind.SUMMARY)
