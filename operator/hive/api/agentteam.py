"""AgentTeam: a team of agents working towards one goal."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from hive.api.autoscale import AutoscaleSpec
from hive.api.common import Condition, HiveModel, LocalRef, SecretKeyRef, list_map
from hive.api.gateway import GatewaySpec, GatewayUsage
from hive.api.graph import depth, find_cycle, unknown_subordinates
from hive.api.privacy import PrivacySpec
from hive.api.semver import is_range, is_version
from hive.api.swarmjobs import SwarmJobsSpec

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
AgentName = Annotated[str, Field(min_length=1, max_length=50, pattern=DNS_LABEL)]


class Role(StrEnum):
    SENIOR = "senior"
    JUNIOR = "junior"
    SPECIALIST = "specialist"


class Pattern(StrEnum):
    HIERARCHICAL = "hierarchical"
    SWARM = "swarm"
    NEGOTIATION = "negotiation"


class Reasoning(StrEnum):
    DIRECT = "direct"  # the agent loop alone
    CHAIN_OF_THOUGHT = "chain-of-thought"  # a reasoning trace first (hive.runtime.reasoning)


class Planning(StrEnum):
    MODEL = "model"  # one model answer proposes the subtasks
    MCTS = "mcts"  # Monte Carlo tree search over model-proposed, model-scored steps


class Provider(StrEnum):
    OPENAI_COMPATIBLE = "openai-compatible"
    EMBEDDED = "embedded"
    SCRIPTED = "scripted"


class FallbackModelSpec(HiveModel):
    """A model the agents call when the team's model fails or its circuit breaker is open."""

    provider: Provider = Field(
        default=Provider.OPENAI_COMPATIBLE,
        description="openai-compatible (the only provider a fallback may use).",
    )
    endpoint: str = Field(
        pattern=r"^https?://",
        description="Base URL of the fallback's chat-completions API, e.g. http://vllm:8000/v1.",
    )
    name: str = Field(min_length=1, description="Model name sent in each request.")
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description="Secret key holding the fallback's API key; none for keyless servers.",
    )

    @field_validator("provider")
    @classmethod
    def _served_over_http(cls, value: Provider) -> Provider:
        if value != Provider.OPENAI_COMPATIBLE:
            raise ValueError("a fallback model must be openai-compatible")
        return value


class VaultKeyRef(HiveModel):
    """A key of a secret in Vault's KV version 2 engine (the mount the operator is set up with)."""

    path: str = Field(
        min_length=1,
        max_length=512,
        pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$",
        description="Secret path under the KV mount, e.g. hive/default/research/model.",
    )
    key: str = Field(default="api-key", min_length=1, description="Key within the secret.")

    @field_validator("path")
    @classmethod
    def _no_parent_segments(cls, value: str) -> str:
        if any(part in (".", "..") for part in value.split("/")):
            raise PydanticCustomError("vault_path", "'.' and '..' are not path segments here")
        return value


class ModelSpec(HiveModel):
    """Which language model the agents call."""

    provider: Provider = Field(
        default=Provider.OPENAI_COMPATIBLE,
        description=(
            "openai-compatible: any chat-completions server (OpenAI, vLLM, Ollama, llama.cpp); "
            "embedded: a small local model Hive runs for the team; scripted: replays for tests."
        ),
    )
    endpoint: str | None = Field(
        default=None,
        pattern=r"^https?://",
        description="Base URL of the chat-completions API, e.g. http://vllm:8000/v1.",
    )
    name: str = Field(min_length=1, description="Model name sent in each request.")
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the API key; none for keyless servers."
    )
    vault_ref: VaultKeyRef | None = Field(
        default=None,
        description="Vault KV key holding the API key, read by each agent with its own Vault "
        "identity (an alternative to secretRef; needs an operator set up with Vault).",
    )
    fallbacks: list[FallbackModelSpec] = Field(
        default_factory=list,
        max_length=5,
        description="Models tried in order when this one fails or its circuit breaker is open "
        "(each has its own breaker); at a reduced capability level they are tried first.",
    )
    gateway: GatewaySpec | None = Field(
        default=None,
        description="Routes of the team's model calls through the namespace's model gateway "
        "(hive gateway serve): agents call the gateway, which picks a route by strategy, "
        "limits rates, falls back and counts spend. None: agents call endpoint directly.",
    )

    @model_validator(mode="after")
    def _one_key_source(self) -> ModelSpec:
        if self.secret_ref is not None and self.vault_ref is not None:
            raise PydanticCustomError(
                "model_key_source",
                "vaultRef: give the API key's place once, either secretRef or vaultRef",
            )
        return self

    @model_validator(mode="after")
    def _fallbacks_are_other_models(self) -> ModelSpec:
        seen = {self.name}
        for i, fallback in enumerate(self.fallbacks):
            if fallback.name in seen:
                raise PydanticCustomError(
                    "fallback_name",
                    "fallbacks[{i}].name: '{name}' is already a model of this team; each model "
                    "has its own circuit breaker, named by the model",
                    {"i": i, "name": fallback.name},
                )
            seen.add(fallback.name)
        return self


class ToolRequirement(HiveModel):
    """A tool an agent may call, by name and a semver range of ToolVersions."""

    @field_validator("version")
    @classmethod
    def _is_a_range(cls, value: str) -> str:
        if not is_range(value):
            raise ValueError(f"'{value}' is not a semver range (e.g. '^1.2', '>=1.0 <2', '*')")
        return value

    @field_validator("pinned")
    @classmethod
    def _is_a_version(cls, value: str | None) -> str | None:
        if value is not None and not is_version(value):
            raise ValueError(f"'{value}' is not a semantic version (e.g. '1.0.0')")
        return value

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL, description="Tool name.")
    version: str = Field(
        default="*",
        min_length=1,
        description="Semver range the ToolVersion must satisfy, e.g. '^1.2', '>=1.0 <2', '*'.",
    )
    pinned: str | None = Field(
        default=None,
        max_length=128,
        description="The version the agent was written against: the model sees its schema and "
        "calls are migrated from it to the version resolved. Default: the oldest version "
        "present that the range allows.",
    )
    alternatives: list[Annotated[str, Field(max_length=63, pattern=DNS_LABEL)]] = Field(
        default_factory=list,
        max_length=8,
        description="Tools of the same agent called, in order and with the same arguments, "
        "when this one fails; when they fail too the call is skipped with a note.",
    )


class Resources(HiveModel):
    """Compute resources of one agent pod, as Kubernetes quantities."""

    cpu: str = Field(default="250m", description="CPU request and limit, e.g. 500m.")
    memory: str = Field(default="256Mi", description="Memory request and limit, e.g. 512Mi.")


class ContextSpec(HiveModel):
    """How much an agent may put in front of its model in one request."""

    max_tokens: int | None = Field(
        default=None,
        ge=256,
        le=2_000_000,
        description="Most tokens one request of the agent may hold (messages and tool schemas, "
        "counted with the model's own tokenizer where Hive has it, else estimated). Past it the "
        "least relevant recalled memories and old turns are dropped, long tool results cut and "
        "old history summarised by the model; the system prompt and the task stay verbatim. "
        "Unset: the model's context window less its answer limit (2048 - 384 = 1664 for the "
        "embedded model; 8192 less the answer limit, or less 512, for other models).",
    )


class MctsSpec(HiveModel):
    """The search budget of a senior that plans with MCTS."""

    iterations: int = Field(default=24, ge=1, le=10_000, description="Search iterations.")
    time_s: float = Field(
        default=60.0, gt=0, le=3600, description="Seconds the search may take at most."
    )
    horizon: int = Field(default=4, ge=1, le=12, description="Most subtasks in a plan.")
    branching: int = Field(
        default=3, ge=1, le=8, description="Next steps the model proposes per plan state."
    )


class AgentSpec(HiveModel):
    """One agent of the team."""

    name: AgentName = Field(description="Agent name, unique in the team; a DNS label.")
    role: Role = Field(description="senior (plans, delegates, reviews), junior or specialist.")
    capabilities: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="What the agent is good at; delegation matches tasks against these.",
    )
    subordinates: list[AgentName] = Field(
        default_factory=list,
        max_length=64,
        description="Agents this one may delegate to; together they must form a DAG.",
    )
    tools: list[ToolRequirement] = Field(
        default_factory=list, max_length=64, description="Tools the agent may call."
    )
    memory_ref: LocalRef | None = Field(
        default=None,
        description="MemoryStore this agent remembers into and recalls from, instead of the "
        "team's spec.memory.storeRef.",
    )
    sandbox_policy_ref: LocalRef | None = Field(
        default=None, description="SandboxPolicy that governs the code the agent runs."
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=100,
        description="Pods running this agent (unused with autoscale: its HPA sets them).",
    )
    autoscale: AutoscaleSpec | None = Field(
        default=None,
        description="A HorizontalPodAutoscaler on the agent's work queue depth (needs a "
        "metrics adapter serving hive_agent_queue_depth as an External metric); the agent "
        "shares its work through its queue as with replicas > 1.",
    )
    resources: Resources = Field(
        default_factory=Resources, description="CPU and memory of each pod."
    )
    max_concurrent_tasks: int = Field(
        default=1, ge=1, le=1000, description="Tasks one agent works on at once."
    )
    work_visibility_seconds: int | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="An agent with several pods: a replica renews its hold on the task it runs "
        "every third of this, and one that dies mid-task (killed, its node lost) loses the task "
        "to another replica after this long; unset: the pods' HIVE_AGENT__WORK_VISIBILITY_S.",
    )
    context: ContextSpec = Field(
        default_factory=ContextSpec,
        description="The agent's working memory: the token budget of each request to its model.",
    )
    reasoning: Reasoning = Field(
        default=Reasoning.DIRECT,
        description="chain-of-thought: the agent reasons through a recorded trace of steps, "
        "branches and self-corrections before it acts; direct: it acts at once.",
    )
    planning: Planning = Field(
        default=Planning.MODEL,
        description="How a senior splits a task: model (one answer) or mcts (a tree search over "
        "model-proposed and model-scored plans, within spec.agents[].mcts).",
    )
    mcts: MctsSpec = Field(
        default_factory=MctsSpec, description="The search budget when planning is mcts."
    )

    @property
    def shares_work(self) -> bool:
        """Whether several pods may run the agent: its tasks go through its work queue and,
        as a coordinator, its replicas claim the team's run."""
        return self.replicas > 1 or self.autoscale is not None

    @model_validator(mode="after")
    def _mcts_plans_for_subordinates(self) -> AgentSpec:
        if self.planning == Planning.MCTS and not self.subordinates:
            raise PydanticCustomError(
                "planning_without_subordinates",
                "planning: mcts plans work for subordinates; agent '{name}' has none",
                {"name": self.name},
            )
        return self

    @model_validator(mode="after")
    def _alternatives_are_own_tools(self) -> AgentSpec:
        names = {t.name for t in self.tools}
        for i, tool in enumerate(self.tools):
            for alternative in tool.alternatives:
                if alternative == tool.name or alternative not in names:
                    raise PydanticCustomError(
                        "tool_alternative",
                        "tools[{i}].alternatives: '{alt}' is not another tool of this agent",
                        {"i": i, "alt": alternative},
                    )
        return self


class DelegationSpec(HiveModel):
    """How work moves down the hierarchy."""

    max_depth: int = Field(default=3, ge=1, le=16, description="Longest chain of delegation.")
    approval_required: bool = Field(
        default=False, description="A senior must approve a result before it counts."
    )
    quality_threshold: float = Field(
        default=0.7, ge=0, le=1, description="Review score below which work is sent back."
    )
    max_revisions: int = Field(
        default=2, ge=0, le=10, description="Times a senior may send one result back for rework."
    )


class SwarmSpec(HiveModel):
    """How a swarm splits, runs and converges."""

    max_rounds: int = Field(
        default=3, ge=1, le=20, description="Rounds of work and synthesis before stopping."
    )
    convergence_threshold: float = Field(
        default=0.9,
        ge=0,
        le=1,
        description="Similarity of two successive syntheses at which the swarm has converged.",
    )
    max_parallel: int = Field(default=4, ge=1, le=64, description="Sub-tasks run at once.")
    max_subtasks: int = Field(
        default=6, ge=1, le=50, description="Most sub-tasks one decomposition may produce."
    )
    jobs: SwarmJobsSpec | None = Field(
        default=None,
        description="Run the subgoals as Indexed Jobs, one pod per subgoal with these "
        "resources, their answers collected through the team's Redis (in a cluster); none: "
        "the team's agents work them.",
    )


class NegotiationSpec(HiveModel):
    """How negotiating agents reach, or fail to reach, agreement."""

    consensus_threshold: float = Field(
        default=0.66,
        gt=0,
        le=1,
        description="Share of accepting votes (of accept + reject) that makes a proposal agreed.",
    )
    max_rounds: int = Field(
        default=3, ge=1, le=20, description="Rounds of proposals and votes before a deadlock."
    )


class BudgetSpec(HiveModel):
    """Limits on what the team may spend."""

    max_tokens: int | None = Field(
        default=None, ge=1, description="Total model tokens the team may use."
    )
    deadline: dt.datetime | None = Field(
        default=None, description="Time (RFC 3339) by which the team must stop."
    )
    tokens_per_call: int | None = Field(
        default=None,
        ge=1,
        le=2_000_000,
        description="Estimated tokens of one model call (request and answer), for the proof "
        "before the run that maxTokens can be met; unset: HIVE_VERIFY__TOKENS_PER_CALL.",
    )
    seconds_per_call: float | None = Field(
        default=None,
        gt=0,
        le=3600,
        description="Estimated seconds of one model call, for the proof before the run that the "
        "deadline can be met; unset: HIVE_VERIFY__SECONDS_PER_CALL.",
    )


class InboundIsolation(StrEnum):
    ANY = "any"
    TEAM = "team"


class SandboxNetworkIsolation(StrEnum):
    NONE = "none"
    ALLOWLIST = "allowlist"


class PeerIsolation(HiveModel):
    """Whom one agent may open connections to inside its team."""

    agent: AgentName = Field(description="The agent.")
    peers: list[AgentName] = Field(
        default_factory=list,
        description="The team's agents it may reach (its subordinates among them); no other.",
    )


class IsolationSpec(HiveModel):
    """Isolation the team's NetworkPolicies must hold, proved with Z3 at admission: a team
    whose generated objects would not hold it is refused with the counterexample."""

    peers: list[PeerIsolation] = Field(
        default_factory=list,
        description="Per agent, the peers it may reach; an agent not listed reaches every agent "
        "of the team. Its NetworkPolicy opens only these (and the team's own servers).",
    )
    inbound: InboundIsolation = Field(
        default=InboundIsolation.ANY,
        description="team: no pod outside the team may connect to an agent (refuses, e.g., "
        "the interactive debugger's port); any: not checked.",
    )
    outbound_ports: list[Annotated[int, Field(ge=1, le=65535)]] | None = Field(
        default=None,
        description="The only ports agents may open outside the team (DNS to kube-dns aside); "
        "unset: not checked.",
    )
    sandbox_network: SandboxNetworkIsolation = Field(
        default=SandboxNetworkIsolation.ALLOWLIST,
        description="none: no agent's sandbox (its SandboxPolicy) may reach the network; "
        "allowlist: only what its policy's allowlist opens.",
    )


class TolerationOperator(StrEnum):
    EXISTS = "Exists"
    EQUAL = "Equal"


class TaintEffect(StrEnum):
    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class Toleration(HiveModel):
    """A Kubernetes toleration for the team's pods."""

    key: str | None = Field(default=None, max_length=316, description="Taint key; empty: all.")
    operator: TolerationOperator = Field(
        default=TolerationOperator.EQUAL, description="Exists or Equal (to `value`)."
    )
    value: str | None = Field(default=None, max_length=63, description="Taint value.")
    effect: TaintEffect | None = Field(default=None, description="Effect; empty: all effects.")
    toleration_seconds: int | None = Field(
        default=None, ge=0, description="How long a NoExecute taint is tolerated."
    )

    @model_validator(mode="after")
    def _exists_has_no_value(self) -> Toleration:
        if self.operator == TolerationOperator.EXISTS and self.value:
            raise PydanticCustomError(
                "toleration", "value must be empty when operator is Exists", {}
            )
        if not self.key and self.operator != TolerationOperator.EXISTS:
            raise PydanticCustomError("toleration", "operator must be Exists when key is empty", {})
        return self


class SchedulingSpec(HiveModel):
    """Where the team's pods (agents, embedded model, sandboxes) may run."""

    node_selector: dict[str, str] = Field(
        default_factory=dict,
        description="Node labels the pods require; merged over the operator's defaults.",
    )
    tolerations: list[Toleration] = Field(
        default_factory=list,
        max_length=50,
        description="Taints the pods tolerate, beside the operator's defaults.",
    )


class BreakerSpec(HiveModel):
    """The circuit breaker every agent keeps per dependency (each model, tool, peer, sandbox)."""

    failure_rate_threshold: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Share of failed calls in the window at which the breaker opens.",
    )
    window_size: int = Field(
        default=10, ge=1, le=1000, description="The last calls whose outcomes are counted."
    )
    minimum_calls: int = Field(
        default=5, ge=1, le=1000, description="Calls the window must hold before it may open."
    )
    open_duration_seconds: float = Field(
        default=5.0, gt=0, le=3600, description="How long an open breaker refuses calls."
    )
    half_open_max_calls: int = Field(
        default=1, ge=1, le=100, description="Probe calls let through at a time when half-open."
    )
    half_open_successes: int = Field(
        default=1, ge=1, le=100, description="Successful probes that close the breaker."
    )

    @model_validator(mode="after")
    def _minimum_fits_the_window(self) -> BreakerSpec:
        if self.minimum_calls > self.window_size:
            raise PydanticCustomError(
                "breaker_minimum", "minimumCalls must not exceed windowSize", {}
            )
        return self


class DegradationSpec(HiveModel):
    """When an agent steps down from full capability, and what it may answer with instead."""

    cached_answers: bool = Field(
        default=False,
        description="When no model answers, give the last good answer to the same prompt "
        "(kept in the agent's memory, not across restarts).",
    )
    partial_answers: bool = Field(
        default=False,
        description="When no model answers and nothing is cached, give a partial answer marked "
        "as degraded instead of failing the call.",
    )
    latency_p99_ms: int | None = Field(
        default=None,
        ge=1,
        le=3_600_000,
        description="Model-call latency (p99 over the last minute) above which the agent "
        "works at reduced capability; unset: latency is not considered.",
    )
    min_tokens_left: int | None = Field(
        default=None,
        ge=1,
        description="Tokens left of budget.maxTokens below which the agent works at reduced "
        "capability; unset, or no budget: not considered.",
    )
    max_cpu_percent: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="CPU use of the agent process (percent of the pod's CPU) above which it "
        "works at reduced capability; unset: not considered.",
    )
    max_memory_percent: int | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Memory of the agent process (percent of the pod's limit) above which it "
        "works at reduced capability; unset: not considered.",
    )
    reduced_max_tokens: int | None = Field(
        default=None,
        ge=1,
        description="Answer length limit (max_tokens) of model calls at reduced capability; "
        "unset: answers are not shortened.",
    )


class LearningSpec(HiveModel):
    """Where the team's agents share the recoveries they learn from errors."""

    memory_ref: LocalRef | None = Field(
        default=None,
        description="MemoryStore of backend redis where the team's pods share their error "
        "patterns and learned recoveries, kept across restarts; unset: the operator's "
        "errorsRedisUrl if set, else each pod learns alone, in memory.",
    )


class ResilienceSpec(HiveModel):
    """How the team's agents protect themselves from failing dependencies."""

    learning: LearningSpec = Field(
        default_factory=LearningSpec, description="Error-pattern learning shared by the pods."
    )
    breaker: BreakerSpec = Field(
        default_factory=BreakerSpec, description="Circuit breakers, one per dependency."
    )
    degradation: DegradationSpec = Field(
        default_factory=DegradationSpec,
        description="Capability levels (full, reduced, minimal) and the fallbacks below the "
        "models: cached and partial answers.",
    )


class DocumentsSpec(HiveModel):
    """Documents the team's agents search and cite."""

    store_ref: LocalRef = Field(
        description="MemoryStore (backend weaviate) whose collection holds the chunks `hive rag "
        "index PATH --store` indexed. The team's agents that list the tool search-documents "
        "answer questions from it with citations [n] mapping to source file and offsets."
    )
    top_k: int | None = Field(
        default=None,
        ge=1,
        le=50,
        description="Chunks an answer is written from; unset: HIVE_RAG__TOP_K (3).",
    )


class TeamMemorySpec(HiveModel):
    """Long-term (semantic) memory of the team's agents."""

    store_ref: LocalRef | None = Field(
        default=None,
        description="MemoryStore the team's agents remember into and recall from (an agent's "
        "own memoryRef wins). Such an agent gets the tools remember and recall, and before each "
        "task its most relevant memories; what it stored in one run is there in the next.",
    )
    recall_k: int = Field(
        default=5,
        ge=0,
        le=20,
        description="Memories (at or above the store's retention.decay.minScore) put into an "
        "agent's context before each task, most relevant first; 0: only the recall tool.",
    )
    session: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$",
        description="Session (a user's or caller's id) the team's runs continue: the "
        "coordinator gives the goal the notes of the session's earlier runs most similar to it "
        "and saves each run to the session (task, answer, key facts, decisions, open "
        "questions). Kept in the coordinator's MemoryStore (its memoryRef, else storeRef), "
        "which must be a redis one, under <collection>.sessions; `hive sessions show ID "
        "--collection C --team NAMESPACE/NAME` prints the history.",
    )
    documents: DocumentsSpec | None = Field(
        default=None,
        description="Indexed documents behind the search_documents tool of the agents that "
        "list search-documents.",
    )

    @model_validator(mode="after")
    def _session_has_a_store(self) -> TeamMemorySpec:
        if self.session is not None and self.store_ref is None:
            raise PydanticCustomError(
                "session_store",
                "session: needs storeRef, the redis MemoryStore that keeps the session",
            )
        return self


def memory_store_ref(team: AgentTeamSpec, agent: AgentSpec) -> LocalRef | None:
    """The MemoryStore `agent` uses: its own memoryRef, else the team's memory.storeRef."""
    return agent.memory_ref or team.memory.store_ref


def coordinator_of(spec: AgentTeamSpec) -> str:
    """Who runs the team's work: the top senior of a hierarchy, else the first senior or agent."""
    led = {s for a in spec.agents for s in a.subordinates}
    if spec.pattern == Pattern.HIERARCHICAL:
        for agent in spec.agents:
            if agent.name not in led and agent.subordinates:
                return agent.name
    for agent in spec.agents:
        if agent.role == "senior":
            return agent.name
    return spec.agents[0].name


class ObservabilitySpec(HiveModel):
    """What the team's traces hold beyond timings, token counts and errors."""

    record_content: bool = Field(
        default=False,
        description="Record prompts, completions and tool results on the model and tool call "
        "spans (gen_ai.input.messages, gen_ai.output.messages, gen_ai.tool.call.result). Off: "
        "spans carry no conversation content.",
    )


BREAKPOINT = r"^((delegate|model|tool)(:[A-Za-z0-9_.-]+)?|score\s*<\s*[0-9]*\.?[0-9]+|error)$"


class DebugSpec(HiveModel):
    """Debugging aids for the team's agent pods; each is off by default."""

    cpu_profiling: bool = Field(
        default=False,
        description="Agent containers get the SYS_PTRACE capability, so py-spy run in the pod "
        "(kubectl exec POD -- hive profile --cpu 1) can sample the agent's Python stacks. "
        "Off: no capability at all.",
    )
    interactive: bool = Field(
        default=False,
        description="The coordinator serves the interactive debugger of the team's run on port "
        "8092 (hive debug TEAM attaches through the API server's pod proxy): its pod spec "
        "declares the port and its NetworkPolicy admits it. Only a caller allowed to patch the "
        "team may attach (the API server reviews the caller's own token). Off: no port, no "
        "debugger.",
    )
    breakpoints: list[Annotated[str, Field(max_length=80, pattern=BREAKPOINT)]] = Field(
        default_factory=list,
        max_length=50,
        description="Where the coordinator's run pauses until a debugger continues it (needs "
        "interactive): delegate[:AGENT] before a delegation, model[:AGENT] after a model call, "
        "tool[:NAME] before a tool call, score<X on a review below X, error on an error.",
    )

    @model_validator(mode="after")
    def _breakpoints_need_a_debugger(self) -> DebugSpec:
        if self.breakpoints and not self.interactive:
            raise PydanticCustomError(
                "debug_breakpoints",
                "debug.breakpoints pause the run until a debugger continues it: set "
                "debug.interactive too",
            )
        return self


class SemanticCacheSpec(HiveModel):
    """Model answers reused for conversations similar in meaning (opt-in: an answer to a
    similar question is not always the answer to this one)."""

    threshold: float = Field(
        default=0.92,
        ge=0.5,
        le=1.0,
        description="Least cosine similarity of the conversation's embedding to a cached one "
        "for its answer to be reused (marked in the answer's metadata cache.kind semantic).",
    )
    max_entries: int = Field(
        default=10_000, ge=1, le=1_000_000, description="Conversations remembered per model."
    )


class PrefetchSpec(HiveModel):
    """Tool calls started before the agent asks for them, when its team's past calls predict
    them (a Markov model of which call follows which, kept in the team's Redis)."""

    confidence: float = Field(
        default=0.6,
        ge=0.0,
        le=1.0,
        description="Least probability of the predicted next call (seen at least minSamples "
        "times after the current one) for it to be started early; only tools declared "
        "cacheable and sideEffects: false are.",
    )
    min_samples: int = Field(
        default=3, ge=1, le=1000, description="Times the current call must have been seen."
    )


class CacheSpec(HiveModel):
    """Caches of the agents' calls: L1 in each agent's memory, L2 on its local disk, L3 the
    team's Redis (spec.resilience.learning's store, else the operator's default Redis; none:
    L1 and L2 only). Tools are cached where their ToolVersion declares cache."""

    ttl_seconds: int = Field(
        default=3600, ge=1, le=30 * 24 * 3600, description="How long a model answer is reused."
    )
    deterministic_model: bool = Field(
        default=False,
        description="The team's model answers the same request the same way (temperature 0 "
        "on the server): reuse every answer. false: only requests at temperature 0 or seeded.",
    )
    memory_mib: int = Field(
        default=16,
        ge=1,
        le=4096,
        description="L1 size per agent, MiB (within the agent's memory limit).",
    )
    disk_mib: int = Field(
        default=256,
        ge=1,
        le=65536,
        description="L2 size per agent, MiB (the agent pod's /tmp grows by as much).",
    )
    semantic: SemanticCacheSpec | None = Field(
        default=None, description="Reuse answers of similar conversations too (opt-in)."
    )
    prefetch: PrefetchSpec | None = Field(
        default=None,
        description="Start the agents' predicted next tool calls early, into the cache (opt-in).",
    )


class AgentTeamSpec(HiveModel):
    """The desired team."""

    goal: str = Field(min_length=1, max_length=4096, description="What the team works towards.")
    model: ModelSpec = Field(description="The language model every agent of the team calls.")
    agents: list[AgentSpec] = Field(
        min_length=1,
        max_length=200,
        description="The agents, keyed by name.",
        json_schema_extra=list_map("name"),
    )
    pattern: Pattern = Field(
        default=Pattern.HIERARCHICAL,
        description="hierarchical (seniors delegate and review), swarm, or negotiation.",
    )
    delegation: DelegationSpec = Field(
        default_factory=DelegationSpec, description="Delegation limits."
    )
    swarm: SwarmSpec = Field(default_factory=SwarmSpec, description="Swarm settings.")
    negotiation: NegotiationSpec = Field(
        default_factory=NegotiationSpec, description="Negotiation settings."
    )
    budget: BudgetSpec = Field(default_factory=BudgetSpec, description="Spending limits.")
    resilience: ResilienceSpec = Field(
        default_factory=ResilienceSpec,
        description="Circuit breakers and graceful degradation of the agents' calls.",
    )
    memory: TeamMemorySpec = Field(
        default_factory=TeamMemorySpec, description="Long-term memory of the team's agents."
    )
    cache: CacheSpec | None = Field(
        default=None,
        description="Caches of the agents' model and tool calls; none: every call is made.",
    )
    scheduling: SchedulingSpec = Field(
        default_factory=SchedulingSpec, description="Where the team's pods may run."
    )
    observability: ObservabilitySpec = Field(
        default_factory=ObservabilitySpec, description="What the team's traces record."
    )
    debug: DebugSpec = Field(
        default_factory=DebugSpec, description="Debugging aids for the agent pods."
    )
    privacy: PrivacySpec | None = Field(
        default=None,
        description="Personal data found and handled before it reaches a model, a tool, a "
        "memory or a log; unset: none is looked for (unless the cluster's floor requires it).",
    )
    isolation: IsolationSpec | None = Field(
        default=None,
        description="Who the agents and their sandboxes may reach, proved at admission; "
        "unset: nothing declared.",
    )
    suspend: bool = Field(
        default=False, description="Scale every agent to zero and stop work, keeping state."
    )

    @model_validator(mode="after")
    def _delegation_graph_is_sound(self) -> AgentTeamSpec:
        edges = {a.name: a.subordinates for a in self.agents}
        index = {a.name: i for i, a in enumerate(self.agents)}
        for agent, sub in unknown_subordinates(edges):
            raise PydanticCustomError(
                "unknown_subordinate",
                "agents[{i}].subordinates: '{sub}' is not an agent of this team",
                {"i": index[agent], "sub": sub},
            )
        cycle = find_cycle(edges)
        if cycle:
            raise PydanticCustomError(
                "delegation_cycle",
                "agents: delegation cycle {path}; subordinates must form a DAG",
                {"path": " -> ".join(cycle)},
            )
        longest, chain = depth(edges)
        if longest > self.delegation.max_depth:
            raise PydanticCustomError(
                "delegation_too_deep",
                "delegation.maxDepth: chain {path} is {n} delegations deep, more than {m}",
                {"path": " -> ".join(chain), "n": longest, "m": self.delegation.max_depth},
            )
        return self


class TeamPhase(StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"


class AgentPhase(StrEnum):
    PENDING = "Pending"
    IDLE = "Idle"
    WORKING = "Working"
    DONE = "Done"
    FAILED = "Failed"


class FaultCount(HiveModel):
    """Faults of one type from one ChaosExperiment that the agent injected into its calls."""

    experiment: str = Field(description="The ChaosExperiment.")
    type: str = Field(description="Fault type.")
    count: int = Field(ge=0, description="Injections so far (since the agent started).")
    first_time: dt.datetime = Field(description="First injection.")
    last_time: dt.datetime = Field(description="Latest injection.")


class FaultProblem(HiveModel):
    """A fault the agent skipped, and why."""

    experiment: str = Field(description="The ChaosExperiment (its key in the fault ConfigMap).")
    message: str = Field(max_length=1024, description="What is wrong, naming the field.")


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class BreakerStatus(HiveModel):
    """One circuit breaker of an agent."""

    dependency: str = Field(
        max_length=256, description="What the agent calls: kind:name (model:..., tool:...)."
    )
    state: BreakerState = Field(description="closed, open or half-open.")
    failures: int = Field(default=0, ge=0, description="Failed calls in the breaker's window.")
    since: dt.datetime = Field(description="When the breaker entered this state.")


class ErrorPatternStatus(HiveModel):
    """A kind of failure the team met, and the recovery that worked best for it."""

    fingerprint: str = Field(max_length=64, description="The pattern's fingerprint.")
    dependency: str = Field(max_length=256, description="Where it happens (kind:name).")
    category: str = Field(description="transient, rate-limit, bad-output, auth, resource or logic.")
    message: str = Field(max_length=300, description="The error, numbers and ids taken out.")
    count: int = Field(ge=0, description="How often the team met it.")
    last_seen: dt.datetime = Field(description="When it last happened.")
    fix: str | None = Field(default=None, description="The recovery that worked best.")
    success_rate: float | None = Field(
        default=None, ge=0, le=1, description="How often that recovery worked."
    )


class CapabilityLevel(StrEnum):
    FULL = "full"
    REDUCED = "reduced"
    MINIMAL = "minimal"


class CapabilityStatus(HiveModel):
    """The capability level an agent works at, chosen from what it observes."""

    level: CapabilityLevel = Field(description="full, reduced or minimal.")
    reason: str = Field(max_length=512, description="What brought it below full (empty at full).")
    since: dt.datetime = Field(description="When the agent entered this level.")


class ToolCallCount(HiveModel):
    """Calls the agent made to one version of a tool within the recent window (the operator
    sums them into the ToolVersion's status.consumers)."""

    tool: str = Field(description="Tool name.")
    version: str = Field(description="The version called.")
    calls: int = Field(ge=0, description="Calls within the window.")
    last_call: dt.datetime = Field(description="The latest call.")


class AgentStatus(HiveModel):
    """One agent's own report. Each agent writes only its entry, under its own field manager."""

    name: AgentName = Field(description="The agent this entry belongs to.")
    role: Role | None = Field(default=None, description="The agent's role.")
    phase: AgentPhase = Field(default=AgentPhase.PENDING, description="What the agent is doing.")
    tasks_completed: int = Field(default=0, ge=0, description="Tasks finished so far.")
    tasks_active: int = Field(default=0, ge=0, description="Tasks in progress now.")
    last_heartbeat: dt.datetime | None = Field(
        default=None, description="When the agent last reported."
    )
    breakers: list[BreakerStatus] = Field(
        default_factory=list,
        max_length=200,
        description="The agent's circuit breakers, one per dependency it called.",
        json_schema_extra=list_map("dependency"),
    )
    error_patterns: list[ErrorPatternStatus] = Field(
        default_factory=list,
        max_length=10,
        description="The team's most frequent error patterns with their learned fix "
        "(reported by the coordinator).",
    )
    last_error: str | None = Field(default=None, description="The last error the agent met.")
    current_task: str | None = Field(
        default=None, max_length=256, description="What the agent works on now, shortened."
    )
    tokens_used: int = Field(default=0, ge=0, description="Model tokens the agent used so far.")
    step_latency_p95_ms: int | None = Field(
        default=None,
        ge=0,
        description="95th percentile of the agent's last steps (model calls), in ms; unset "
        "before its first step.",
    )
    faults: list[FaultCount] = Field(
        default_factory=list,
        max_length=64,
        description="Faults of ChaosExperiments the agent injected into its own calls.",
    )
    fault_problems: list[FaultProblem] = Field(
        default_factory=list, max_length=20, description="Faults the agent skipped, and why."
    )
    tool_calls: list[ToolCallCount] = Field(
        default_factory=list,
        max_length=100,
        description="Calls per tool version within the recent window (HIVE_TOOLS__CALLS_WINDOW_S).",
    )
    capability: CapabilityStatus | None = Field(
        default=None,
        description="The capability level the agent works at (full, reduced, minimal) and why.",
    )
    queue_depth: int | None = Field(
        default=None,
        ge=0,
        description="An agent with replicas: tasks in its work queue not yet done (as its "
        "replica last read it); none without replicas.",
    )


class RunOutcome(StrEnum):
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    DEADLOCKED = "Deadlocked"


class PlanStep(HiveModel):
    """One subgoal of the team's plan and how far it got."""

    name: str = Field(min_length=1, max_length=128, description="Subgoal name.")
    phase: str = Field(description="pending, running, done, failed or skipped.")
    depends_on: list[str] = Field(
        default_factory=list, description="Subgoals that must be done first."
    )
    effort: float = Field(default=1.0, ge=0, description="Estimated effort (minutes).")


class RunStatus(HiveModel):
    """The team's work on its goal, written by the agent that coordinates it."""

    outcome: RunOutcome = Field(description="Running, Succeeded, Failed or Deadlocked.")
    coordinator: AgentName = Field(description="The agent that runs the team's work.")
    generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation of the spec this run worked on."
    )
    started_at: dt.datetime | None = Field(default=None, description="When the work started.")
    finished_at: dt.datetime | None = Field(default=None, description="When it ended.")
    rounds: int = Field(default=0, ge=0, description="Swarm or negotiation rounds so far.")
    delegations: int = Field(default=0, ge=0, description="Tasks handed to other agents.")
    tokens: int = Field(default=0, ge=0, description="Model tokens the whole team used.")
    result: str | None = Field(
        default=None, max_length=2048, description="The team's answer, shortened."
    )
    message: str | None = Field(
        default=None, max_length=1024, description="Why the run failed or deadlocked."
    )
    plan: list[PlanStep] = Field(
        default_factory=list,
        max_length=100,
        description="The subgoals of a swarm's plan, with their progress.",
    )
    trace_id: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{32}$",
        description="The OpenTelemetry trace of this run (hive trace show --team), when traced.",
    )


class PrivacyStatus(HiveModel):
    """What the team's privacy policy found and did in the coordinator's pod, written with
    each run it finishes."""

    since: dt.datetime = Field(description="Start of the window: when the pod started counting.")
    reported_at: dt.datetime = Field(description="When this report was written.")
    found: int = Field(default=0, ge=0, description="Findings in the window.")
    by_entity: dict[str, int] = Field(
        default_factory=dict, description="Findings by entity type (EMAIL_ADDRESS, PERSON...)."
    )
    by_boundary: dict[str, int] = Field(
        default_factory=dict, description="Findings by boundary (modelPrompts, toolInputs...)."
    )
    actions: dict[str, int] = Field(
        default_factory=dict, description="Findings by what was done (redact, pseudonymise...)."
    )
    in_clear: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="Destinations (boundary:source) that received personal data in clear "
        "(strategy allow): none under a redact policy.",
    )


class IdentityStatus(HiveModel):
    """An agent's Vault identity as the operator last applied it."""

    agent: AgentName = Field(description="The agent.")
    role: str = Field(description="Kubernetes-auth role the agent logs in with.")
    policy: str = Field(description="Vault policy of the agent's tokens.")
    bound: bool = Field(
        description="Whether the role and policy are in Vault, bound to the agent's "
        "ServiceAccount and namespace."
    )


class AgentTeamStatus(HiveModel):
    """What the operator and the agents observed."""

    phase: TeamPhase = Field(default=TeamPhase.PENDING, description="Overall phase of the team.")
    observed_generation: int | None = Field(
        default=None, ge=0, description="The .metadata.generation last reconciled."
    )
    agents_ready: int | None = Field(
        default=None, ge=0, description="Agents whose pods are all available."
    )
    agents_total: int | None = Field(default=None, ge=0, description="Agents in the spec.")
    breakers_open: int | None = Field(
        default=None, ge=0, description="Open circuit breakers over the agents' entries."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Progressing and Degraded.",
        json_schema_extra=list_map("type"),
    )
    agents: list[AgentStatus] = Field(
        default_factory=list,
        description="One entry per agent, written by that agent.",
        json_schema_extra=list_map("name"),
    )
    run: RunStatus | None = Field(
        default=None, description="The team's work on its goal, written by its coordinator."
    )
    privacy: PrivacyStatus | None = Field(
        default=None,
        description="What spec.privacy found and did, written by the coordinator with its runs.",
    )
    usage: GatewayUsage | None = Field(
        default=None,
        description="Model usage and cost by agent, model and route, written by the team's "
        "model gateway (spec.model.gateway).",
    )
    identities: list[IdentityStatus] = Field(
        default_factory=list,
        description="Each agent's Vault identity (role, policy, bound), written by the operator "
        "when it is set up with Vault; agents write only their own entries in agents.",
        json_schema_extra=list_map("agent"),
    )
