"""One agent: a loop of model calls and tool calls within budgets, publishing typed events.

Each step asks the model; tool calls are checked against the registry and their schemas, run,
and their results (or the problem with them) go back to the model; an answer without tool
calls ends the run. Budgets on steps, tokens and wall time end a run that would go on too long,
and bad tool calls are fed back to the model a bounded number of times before the run fails.
What each request holds is the agent's working memory (hive.runtime.memory.working): within
the agent's context budget in tokens, dropping, cutting and summarising what matters least.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from hive.errors import HiveError, InvalidInput
from hive.runtime.debug.clock import run_clock
from hive.runtime.events import Event, EventBus, EventKind
from hive.runtime.memory.tokens import TokenCounter, counter_for
from hive.runtime.memory.working import SUMMARY_PROMPT, Optimised, WorkingMemory, default_budget
from hive.runtime.models import Message, Reply
from hive.runtime.tools import ToolRegistry

if TYPE_CHECKING:  # numpy and the ONNX runtime load only where embeddings are used
    from hive.runtime.memory.embeddings import Embedder


class BudgetExceeded(HiveError):
    """A run used up its steps, tokens or time."""


class ChatModel(Protocol):
    async def complete(
        self,
        messages: Sequence[Message],
        tools: Sequence[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> Reply: ...


@dataclass(frozen=True)
class Budget:
    max_steps: int = 12
    max_tokens: int | None = None
    deadline_s: float | None = None
    max_tool_errors: int = 3


class Outcome(StrEnum):
    FINISHED = "finished"
    FAILED = "failed"


@dataclass
class ContextReport:
    """What the working memory took out of the agent's requests to keep them in budget."""

    optimisations: int = 0  # requests that needed dropping, cutting or summarising
    dropped: int = 0  # segments dropped without a summary
    cut: int = 0  # segments cut short
    summarised: int = 0  # segments of history a summary replaced
    tokens_saved: int = 0  # tokens the requests would have held more

    def add(self, optimised: Optimised) -> None:
        self.optimisations += 1
        self.dropped += sum(optimised.dropped.values())
        self.cut += optimised.cut
        self.summarised += optimised.summarised
        self.tokens_saved += optimised.before - optimised.tokens


@dataclass
class AgentResult:
    outcome: Outcome
    output: str
    steps: int
    tokens: int
    tool_calls: int
    error: str | None = None
    transcript: list[Message] = field(default_factory=list)
    context: ContextReport = field(default_factory=ContextReport)


@dataclass
class Agent:
    name: str
    model: ChatModel
    tools: ToolRegistry = field(default_factory=ToolRegistry)
    bus: EventBus = field(default_factory=EventBus)
    system_prompt: str = "You are a careful, capable agent. Use tools when they help."
    budget: Budget = field(default_factory=Budget)
    recalled: Sequence[str] = ()  # memories relevant to the task, most relevant first
    # most tokens one request may hold; None: the model's context window less its answer limit
    context_tokens: int | None = None
    counter: TokenCounter | None = None  # None: the model's own tokenizer, else an estimate
    embedder: Embedder | None = None  # relevance of context to the task; None: word overlap
    summarise_history: bool = True  # dropped history is summarised by the model
    _summary_tokens: int = field(default=0, init=False, repr=False)  # this step's summaries

    async def _emit(self, kind: EventKind, **data: Any) -> None:
        await self.bus.publish(Event(kind, self.name, data))

    async def _summarise(self, history: str, max_tokens: int) -> str:
        reply = await self.model.complete(
            [{"role": "system", "content": SUMMARY_PROMPT}, {"role": "user", "content": history}],
            max_tokens=max_tokens,
        )
        self._summary_tokens += reply.prompt_tokens + reply.completion_tokens
        return reply.content or ""

    async def _working_memory(self, task: str) -> WorkingMemory:
        counter = self.counter or await counter_for(self.model)
        memory = WorkingMemory(
            task=task,
            counter=counter,
            budget=self.context_tokens or default_budget(self.model),
            embedder=self.embedder,
            summarize=self._summarise if self.summarise_history else None,
        )
        await memory.start(self.system_prompt, self.recalled)
        return memory

    async def run(self, task: str) -> AgentResult:
        """Work on `task` until an answer, a budget or an error ends the run."""
        clock = run_clock()  # the run's budget clock: a debugger's pauses do not count
        started = clock.now()
        self._summary_tokens = 0
        context = ContextReport()
        messages: list[Message] = []  # the whole conversation, whatever the requests held
        tokens = steps = calls = tool_errors = 0
        await self._emit(EventKind.STARTED, task=task)
        try:
            memory = await self._working_memory(task)
            messages = memory.messages()
            while True:
                if steps >= self.budget.max_steps:
                    raise BudgetExceeded(f"agent {self.name}: {steps} steps, the budget's limit")
                if self.budget.max_tokens is not None and tokens >= self.budget.max_tokens:
                    raise BudgetExceeded(
                        f"agent {self.name}: {tokens} tokens used, the budget is "
                        f"{self.budget.max_tokens}"
                    )
                remaining = None
                if self.budget.deadline_s is not None:
                    remaining = self.budget.deadline_s - (clock.now() - started)
                    if remaining <= 0:
                        raise BudgetExceeded(
                            f"agent {self.name}: deadline of {self.budget.deadline_s:g}s passed"
                        )
                steps += 1
                step_started = time.monotonic()
                step_clock = clock.now()
                schemas = self.tools.schemas() or None
                try:
                    request = await clock.wait_for(memory.fit(schemas), remaining)
                    if request.changed:
                        context.add(request)
                        await self._emit(
                            EventKind.CONTEXT_OPTIMIZED,
                            step=steps,
                            **request.event(memory.counter, memory.relevance_source),
                        )
                    reply = await clock.wait_for(
                        self.model.complete(request.messages, schemas),
                        None if remaining is None else remaining - (clock.now() - step_clock),
                    )
                except TimeoutError as exc:
                    raise BudgetExceeded(
                        f"agent {self.name}: deadline of {self.budget.deadline_s:g}s passed"
                    ) from exc
                tokens += reply.prompt_tokens + reply.completion_tokens + self._summary_tokens
                self._summary_tokens = 0
                await self._emit(
                    EventKind.MODEL_CALLED,
                    step=steps,
                    tokens=tokens,
                    duration_ms=round((time.monotonic() - step_started) * 1000, 3),
                    tool_calls=[c.name for c in reply.tool_calls],
                )
                if not reply.tool_calls:
                    output = reply.content or ""
                    messages.append({"role": "assistant", "content": output})
                    await self._emit(EventKind.FINISHED, output=output, steps=steps)
                    return AgentResult(
                        Outcome.FINISHED,
                        output,
                        steps,
                        tokens,
                        calls,
                        transcript=messages,
                        context=context,
                    )
                turn = memory.begin_turn()
                calling: Message = {
                    "role": "assistant",
                    # "" rather than None: llama-cpp-python 0.3.36 refuses an assistant message
                    # whose content is null (HTTP 500), OpenAI takes either
                    "content": reply.content or "",
                    "tool_calls": [
                        {
                            "id": c.id,
                            "type": "function",
                            "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                        }
                        for c in reply.tool_calls
                    ],
                }
                messages.append(calling)
                await memory.add(calling, turn=turn)
                for call in reply.tool_calls:
                    calls += 1
                    call_started = time.monotonic()
                    try:
                        tool = self.tools.check(call.name, call.arguments)
                        try:
                            result = await self.tools.call(tool, call.arguments)
                        except Exception as exc:  # a failing tool is news for the model
                            raise InvalidInput(f"tool {call.name!r}", f"failed: {exc}") from exc
                        content = result if isinstance(result, str) else json.dumps(result)
                        await self._emit(
                            EventKind.TOOL_CALLED,
                            tool=call.name,
                            arguments=call.arguments,
                            duration_ms=round((time.monotonic() - call_started) * 1000, 3),
                        )
                    except InvalidInput as exc:
                        tool_errors += 1
                        await self._emit(
                            EventKind.TOOL_FAILED,
                            tool=call.name,
                            error=str(exc),
                            duration_ms=round((time.monotonic() - call_started) * 1000, 3),
                        )
                        if tool_errors > self.budget.max_tool_errors:
                            raise HiveError(
                                f"agent {self.name}: {tool_errors} bad tool calls, the last: {exc}"
                            ) from exc
                        content = f"error: {exc}"
                    result_message = {"role": "tool", "tool_call_id": call.id, "content": content}
                    messages.append(result_message)
                    await memory.add(result_message, turn=turn)
        except asyncio.CancelledError:
            await self._emit(EventKind.CANCELLED, steps=steps)
            raise
        except HiveError as exc:
            await self._emit(EventKind.FAILED, error=str(exc), steps=steps)
            return AgentResult(
                Outcome.FAILED,
                "",
                steps,
                tokens,
                calls,
                error=str(exc),
                transcript=messages,
                context=context,
            )
