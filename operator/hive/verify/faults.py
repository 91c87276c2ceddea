"""The faults `hive test` draws into its scenarios, by the names a properties file gives them
(`faults:`): the simulated model's HTTP 503 on a work call, and the runtime's own resilience
faults (hive.runtime.resilience.faults) aimed at one agent's model calls."""

from __future__ import annotations

from hive.api.chaos import Fault, FaultTarget, FaultType, ResourceKind

WORK_503 = "work-503"  # the simulated model answers a work call with HTTP 503
# the runtime's faults, by the name a properties file gives them (`faults:`)
RESILIENCE_FAULTS: dict[str, Fault] = {
    "model-error": Fault(type=FaultType.ERROR, target=FaultTarget.LLM, http_status=500),
    "model-timeout": Fault(type=FaultType.TIMEOUT, target=FaultTarget.LLM),
    "empty-answer": Fault(type=FaultType.EMPTY_ANSWER, target=FaultTarget.LLM),
    "malformed-json": Fault(type=FaultType.MALFORMED_JSON, target=FaultTarget.LLM),
    "answer-cut": Fault(
        type=FaultType.RESOURCE, target=FaultTarget.LLM, resource=ResourceKind.TOKENS, max_tokens=2
    ),
    "agent-lost": Fault(type=FaultType.UNAVAILABLE, target=FaultTarget.LLM),
}
FAULT_KINDS = (WORK_503, *RESILIENCE_FAULTS)
