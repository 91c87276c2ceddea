"""`hive agent`: the pod entrypoint, wiring the agent runtime to its team's status."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import signal
import socket
import uuid
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from hive.api.agentteam import AgentPhase, AgentStatus, Provider, coordinator_of
from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.cli.clustertools import ClusterTools
from hive.cli.debugcmd import attach_pod_debugger, pod_debugger
from hive.cli.swarmcmd import pod_swarm_jobs
from hive.errors import HiveError, InvalidInput
from hive.kube.client import async_client
from hive.kube.lease import TeamRunLease
from hive.kube.reporter import StatusReporter, field_manager_for
from hive.reconcile.vault import identity_name, pseudonym_key
from hive.runtime.cache.middleware import CallCache
from hive.runtime.cache.wiring import call_cache
from hive.runtime.debug.stacks import dump_stacks_on_signal
from hive.runtime.identity.audit import AuditLog, team_log_path
from hive.runtime.identity.auditcalls import AuditCalls
from hive.runtime.identity.delegation import Authority
from hive.runtime.identity.peerauth import PeerSigner, PeerVerifier
from hive.runtime.identity.transit import TransitKeys, TransitSigner, team_key
from hive.runtime.identity.vault import AgentVault
from hive.runtime.models import OpenAICompatible
from hive.runtime.pod import AgentPod, PodConfig
from hive.runtime.prefetch.prefetcher import Prefetcher
from hive.runtime.prefetch.wiring import prefetcher
from hive.runtime.privacy.keyring import Keyring, TransitKeyring
from hive.runtime.privacy.wiring import (
    PrivacyNotStarted,
    ScrubbedStatus,
    install_privacy,
    pod_guard,
    privacy_reporter,
)
from hive.runtime.reporting import heartbeat
from hive.runtime.resilience.calls import Chain
from hive.runtime.resilience.chain import ChainParts
from hive.runtime.resilience.faultfiles import FaultFolder
from hive.runtime.resilience.faults import FaultInjector
from hive.runtime.resilience.faultspec import dependencies_of
from hive.runtime.resilience.wiring import Resilience, fallback_models, learning_store
from hive.runtime.toolbox import Toolbox
from hive.runtime.tooling.catalog import CallCounts, publish_to, reported_calls
from hive.runtime.tracing.calls import CallMetrics, TracedCalls
from hive.runtime.tracing.setup import Tracing, install, tracing_from
from hive.runtime.workqueue.peers import QueuedPeer, replica_handler
from hive.runtime.workqueue.queue import WorkQueue
from hive.settings import Settings

if TYPE_CHECKING:
    from hive.runtime.memory.sessions import SessionMemory
    from hive.runtime.memory.team import TeamMemory


def load_pod_config(path: Path, agent: str) -> PodConfig:
    return PodConfig.load(path, agent)


def vault_session(config: PodConfig, settings: Settings) -> AgentVault:
    """This agent's Vault session: its own role, its ServiceAccount token."""
    return AgentVault(
        settings.vault,
        role=settings.vault.role or identity_name(config.namespace, config.team, config.agent),
        jwt_file=settings.vault.jwt_file or settings.kube.service_account_dir / "token",
    )


def vault_model_key(config: PodConfig, settings: Settings) -> SecretStr:
    """The model key at spec.model.vaultRef, read after logging in as this agent's role."""
    ref = config.spec.model.vault_ref
    assert ref is not None
    if not settings.vault.address:
        raise InvalidInput("model.vaultRef", "needs HIVE_VAULT__ADDRESS (the agent's Vault)")
    return vault_session(config, settings).read(ref.path, ref.key)


class _FreshClient:
    """The session's hvac client, its token renewed (or a new login) before each use."""

    def __init__(self, session: AgentVault) -> None:
        self.session = session

    def __getattr__(self, name: str) -> Any:
        return getattr(self.session.fresh(), name)


def vault_authority(config: PodConfig, settings: Settings) -> Authority:
    """Delegation certificates signed with the team's transit key, as this agent."""
    client = _FreshClient(vault_session(config, settings))
    key = team_key(config.namespace, config.team)
    mount = settings.vault.transit_mount
    return Authority.of_team(
        config.agent,
        config.spec,
        f"{config.namespace}/{config.team}",
        coordinator_of(config.spec),
        TransitSigner.latest(client, key, mount),
        TransitKeys(client, key, mount),
        require=settings.agent.require_certificates,
        root_ttl_s=settings.agent.certificate_ttl_s,
    )


def pseudonym_keyring(config: PodConfig, settings: Settings) -> Callable[[], Keyring] | None:
    """Where a Vault is configured: the team's transit key of pseudonyms, used as this agent
    (checked once at start); None: the key from the team's Secret."""
    if not settings.vault.address:
        return None

    def keyring() -> Keyring:
        client = _FreshClient(vault_session(config, settings))
        name = pseudonym_key(config.namespace, config.team)
        ring = TransitKeyring(client, name, settings.vault.transit_mount)
        ring.digest("hive-start", "")  # refused or missing: the pod says so before it runs
        return ring

    return keyring


def model_of(config: PodConfig, settings: Settings) -> OpenAICompatible:
    model = config.spec.model
    if not model.endpoint:
        hint = (
            "the operator sets it for the embedded model"
            if model.provider == Provider.EMBEDDED
            else ""
        )
        raise InvalidInput("model.endpoint", f"is not set {hint}".strip())
    key = settings.model_api_key
    if model.vault_ref:  # read with the agent's own Vault identity, never from the environment
        key = vault_model_key(config, settings)
    api_key = key.get_secret_value() if key else None
    if model.secret_ref and not api_key:
        raise InvalidInput(
            "model.secretRef",
            f"HIVE_MODEL_API_KEY is empty: key {model.secret_ref.key} of Secret "
            f"{model.secret_ref.name} is missing or empty",
        )
    structured = "json_object_schema" if model.provider == Provider.EMBEDDED else "json_schema"
    return OpenAICompatible(
        model.endpoint, model.name, api_key=api_key, timeout_s=300, structured_format=structured
    )


def run_agent(
    settings: Settings,
    namespace: str,
    team: str,
    agent: str,
    once: bool,
    config_path: Path | None = None,
) -> None:
    """Run one agent pod. A configuration that cannot work is reported into the agent's status
    entry (phase Failed, with the reason) before the one-line error, so a restarting pod shows
    why in `kubectl get agentteam -o yaml`, not only in its log."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for chatty in ("httpx", "httpx2", "aiohttp.access"):
        logging.getLogger(chatty).setLevel(logging.WARNING)

    async def main() -> None:
        try:
            config = load_pod_config(config_path, agent) if config_path else None
        except InvalidInput as exc:
            await report_failure(settings, namespace, team, agent, str(exc))
            raise
        client = async_client(settings.kube, field_manager=field_manager_for(agent))
        reporter = StatusReporter(client, namespace, team, agent)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        dump_stacks_on_signal(loop)  # kill -USR1 1: where every thread and task is, in the log
        try:
            if once or config is None:
                if once:
                    stop.set()
                role = config.agent_spec(agent).role if config else None
                await heartbeat(
                    reporter, agent, role, interval_s=settings.agent.heartbeat_s, stop=stop
                )
                return
            try:
                injector = FaultInjector()
                store = learning_store(settings.agent.errors_redis_url, namespace, team)
                resilience = Resilience.of(config.spec.resilience, store)
                parts = ChainParts(
                    errors=resilience.errors, breakers=resilience.breakers, faults=injector
                )
                parts.cache = cache = pod_cache(config, agent, settings)  # spec.cache
                tracing = pod_tracing(config, agent, settings, parts)
                keyring = pseudonym_keyring(config, settings)  # the team's, in Vault transit
                privacy = pod_guard(config.spec.privacy, agent, settings.privacy, keyring)
                if privacy is not None:  # spec.privacy: after the debugger; traces, logs too
                    install_privacy(parts, privacy, tracing)  # every exported span too
                    reporter = ScrubbedStatus(reporter, privacy)  # type: ignore[assignment]
                fallbacks = fallback_models(
                    config.spec, settings.fallback_model_api_keys, parts.chain(agent)
                )
                parts.degradation = resilience.degrade(config.spec, fallbacks, agent)
                debugging = pod_debugger(config, settings, parts)  # spec.debug.interactive
                tools = ClusterTools(client, namespace)
                following = asyncio.create_task(tools.follow())
                await tools.listed()
                toolbox, pod = build_pod(config, agent, settings, reporter, parts, tools)
                attach_pod_debugger(pod, debugging)
                if privacy is not None:
                    privacy.audit = pod.audit  # findings recorded with the team's audit log
                    pod.report_privacy = privacy_reporter(reporter, privacy)  # status.privacy
                prefetch = pod_prefetch(config, agent, settings, pod)  # spec.cache.prefetch
                await toolbox.started()  # its catalog tools built, and followed from now on
                resilience.publish_to(pod.bus)
                pod.resilience = resilience.report
                pod.tracer = tracing.tracer if tracing is not None else None
                if config.is_coordinator and config.agent_spec(agent).shares_work:
                    # replicas take turns to run the goal, by the team's run Lease
                    pod.claim = TeamRunLease(
                        client, namespace, team, socket.gethostname(), settings.agent.run_claim_s
                    )
                own_queue = replica_queues(config, agent, settings, pod)  # several pods
                pod.swarm_jobs = pod_swarm_jobs(config, settings, client)  # spec.swarm.jobs
                if own_queue is not None:
                    pod.queue_depth = own_queue.depth  # in its status entry, each report
            except (InvalidInput, PrivacyNotStarted) as exc:  # in its status entry, then exit
                await report_failure(settings, namespace, team, agent, str(exc))
                raise
            watching = watch_faults(config, agent, injector, pod, stop)
            degrading = asyncio.create_task(parts.degradation.watch(stop))
            consuming = None
            if own_queue is not None:  # this replica takes its share of the agent's tasks
                handler = replica_handler(f"http://127.0.0.1:{settings.agent.port}", 3600.0)
                consuming = asyncio.create_task(
                    own_queue.consume(socket.gethostname(), handler, stop)
                )
            try:
                await pod.serve(stop)
            finally:
                stop.set()
                if consuming is not None and own_queue is not None:
                    await asyncio.gather(consuming, return_exceptions=True)
                    await own_queue.close()
                for queued in pod.peer_queues.values():
                    await queued.close()
                following.cancel()
                await degrading
                await toolbox.close()
                if pod.audit is not None:
                    pod.audit.close()
                await resilience.close()
                if prefetch is not None:
                    await prefetch.close()
                if cache is not None:
                    await cache.close()
                if watching is not None:
                    await watching
                if tracing is not None:
                    tracing.shutdown()  # the last spans exported
        finally:
            await client.close()

    asyncio.run(main())


def pod_cache(config: PodConfig, agent: str, settings: Settings) -> CallCache | None:
    """The agent's call cache where its team has spec.cache: L3 in the team's Redis (the one
    its pods learn error patterns in), the semantic index on the pod's embeddings."""
    spec = config.spec.cache
    if spec is None:
        return None
    embedder = None
    if spec.semantic is not None:
        from hive.runtime.memory.embeddings import embedder_from_settings

        embedder = embedder_from_settings(settings.agent.embeddings)
    return call_cache(
        spec,
        namespace=config.namespace,
        team=config.team,
        agent=agent,
        folder=settings.agent.cache_dir,
        redis_url=settings.agent.errors_redis_url,
        embedder=embedder,
    )


def replica_queues(
    config: PodConfig, agent: str, settings: Settings, pod: AgentPod
) -> WorkQueue | None:
    """With the team's Redis (HIVE_AGENT__ERRORS_REDIS_URL): tasks to peers with replicas go
    to their work queues; this agent's own queue where it has replicas itself (else None)."""
    url = settings.agent.errors_redis_url
    if not url:
        return None
    visibility = settings.agent.work_visibility_s
    for spec in config.spec.agents:
        if spec.shares_work and spec.name != agent:
            queue = WorkQueue(
                url, config.namespace, config.team, spec.name, visibility_s=visibility
            )
            pod.peer_queues[spec.name] = QueuedPeer(queue)
    if not config.agent_spec(agent).shares_work:  # replicas > 1, or autoscale
        return None
    own = config.agent_spec(agent).work_visibility_seconds  # spec.agents[].workVisibilitySeconds
    return WorkQueue(
        url,
        config.namespace,
        config.team,
        agent,
        visibility_s=own or visibility,
        max_deliveries=settings.agent.work_max_deliveries,
    )


def pod_prefetch(
    config: PodConfig, agent: str, settings: Settings, pod: AgentPod
) -> Prefetcher | None:
    """The agent's prefetcher where its team has spec.cache.prefetch: it learns from the
    pod's events into the team's Redis and calls ahead through the agent's tools."""
    spec = config.spec.cache.prefetch if config.spec.cache is not None else None
    if spec is None:
        return None
    found = prefetcher(
        spec,
        namespace=config.namespace,
        team=config.team,
        redis_url=settings.agent.errors_redis_url,
        registry_of=lambda name: pod.tools if name == agent else None,
    )
    found.attach(pod.bus)
    return found


def pod_tracing(
    config: PodConfig, agent: str, settings: Settings, parts: ChainParts
) -> Tracing | None:
    """The agent's calls counted for Prometheus, and with HIVE_TRACING__OTLP_ENDPOINT traced:
    the process's tracer provider (service hive-agent-<agent>), each call a span (prompts and
    completions only with spec.observability.recordContent); None when tracing is off."""
    parts.metrics = CallMetrics()
    tracing = tracing_from(
        settings.tracing,
        f"agent-{agent}",
        attributes={"hive.team": config.team, "hive.namespace": config.namespace},
    )
    install(tracing)
    if tracing is not None:
        parts.tracing = TracedCalls(tracing.tracer, config.spec.observability.record_content)
    return tracing


def watch_faults(
    config: PodConfig, agent: str, injector: FaultInjector, pod: AgentPod, stop: asyncio.Event
) -> asyncio.Task[None] | None:
    """Keep the faults of the team's mounted fault ConfigMap in force, reported in the agent's
    status entry and published on its bus; None when the pod has no fault folder."""
    if config.faults_path is None:
        return None
    injector.bus = pod.bus
    pod.faults = injector.report
    folder = FaultFolder(config.faults_path, injector, [agent], dependencies_of(config.spec))
    return asyncio.create_task(folder.run(stop))


def pod_memory(config: PodConfig, settings: Settings, chain: Chain) -> TeamMemory | None:
    """The agent's semantic memory: the MemoryStore of its ConfigMap (``memoryStore``), its
    credential from HIVE_AGENT__MEMORY__SECRET, vectors from HIVE_AGENT__EMBEDDINGS__ENDPOINT
    when set, else the local model in the image; None when the agent has no store."""
    entry = config.memory_store
    if entry is None:
        return None
    from hive.runtime.memory.embeddings import embedder_for_store
    from hive.runtime.memory.semantic import store_spec
    from hive.runtime.memory.team import TeamMemory

    name = str(entry.get("name") or "")
    spec = store_spec(entry.get("spec") or {}, f"memoryStore {name}")
    embedding = spec.embedding  # the embeddings endpoint is asked for the store's model
    memory = TeamMemory(
        team=config.spec,
        stores={name: spec},
        embedder=lambda: embedder_for_store(
            settings.agent.embeddings, embedding.model, embedding.dimensions
        ),
        run=f"{config.team}-{uuid.uuid4().hex[:8]}",
        settings=settings.agent.memory,
        chain=chain,
    )
    memory.memory_of(config.agent_spec(config.agent))  # a wrong embedder fails the pod now
    return memory


def pod_session(config: PodConfig, settings: Settings) -> SessionMemory:
    """The coordinator's session (spec.memory.session): kept in its redis MemoryStore (the
    ConfigMap's ``memoryStore``, its credential from HIVE_AGENT__MEMORY__SECRET) under
    ``<collection>.sessions``, for the team ``<namespace>/<team>``."""
    from hive.runtime.memory.embeddings import embedder_from_settings
    from hive.runtime.memory.semantic import store_spec
    from hive.runtime.memory.sessions import SessionMemory, store_for

    session = config.spec.memory.session
    entry = config.memory_store
    assert session is not None
    if entry is None:
        raise InvalidInput(
            "spec.memory.session", "needs spec.memory.storeRef: a redis MemoryStore to keep it"
        )
    name = str(entry.get("name") or "")
    memory, options = settings.agent.memory, settings.agent.sessions
    store = store_for(
        name,
        store_spec(entry.get("spec") or {}, f"memoryStore {name}"),
        password=memory.secret.get_secret_value() if memory.secret else None,
        username=memory.username,
        timeout_s=memory.timeout_s,
        keep_runs=options.keep_runs,
    )
    return SessionMemory(
        store,
        embedder_from_settings(settings.agent.embeddings),
        f"{config.namespace}/{config.team}",
        session,
        recall_k=options.recall_k,
        min_similarity=options.min_similarity,
        max_chars=options.max_chars,
    )


def build_pod(
    config: PodConfig,
    agent: str,
    settings: Settings,
    reporter: StatusReporter,
    parts: ChainParts | None = None,
    catalog: ClusterTools | None = None,
) -> tuple[Toolbox, AgentPod]:
    policy = (
        SandboxPolicySpec.model_validate(config.sandbox_policy) if config.sandbox_policy else None
    )
    parts = parts or ChainParts()
    audit = AuditLog(team_log_path(settings.agent.audit_dir, config.namespace, config.team))
    parts.audit = AuditCalls(audit)
    # With Vault, delegation certificates signed with the team's transit key.
    authority = vault_authority(config, settings) if settings.vault.address else None
    if authority is not None:
        parts.authority = authority.middleware
    chain = parts.chain(agent)
    model = replace(model_of(config, settings), chain=chain)
    toolbox = Toolbox(
        rootfs=settings.sandbox.rootfs,
        runsc=settings.sandbox.runsc,
        sandbox_url=config.sandbox_url,
        key_file=settings.agent.key_file,
        chain=chain,
    )
    if catalog is not None:  # the namespace's ToolVersions, followed while the agent runs
        toolbox.catalog, toolbox.secrets_for = catalog.catalog, catalog.secrets_for
        toolbox.kinds = catalog.kinds()  # OpenAPI documents from the ConfigMaps its Role names
        toolbox.namespace = config.namespace
        toolbox.counts = CallCounts(window_s=settings.tools.calls_window_s)
    memory = pod_memory(config, settings, chain)
    if memory is not None:
        toolbox.memory = memory.tools
    if config.documents_store is not None:  # spec.memory.documents: search_documents
        from hive.runtime.rag.agents import pod_documents

        documents = pod_documents(config, model, settings)
        if documents is not None:
            toolbox.documents = documents
            toolbox.closing.append(documents.close)
    tools = toolbox.for_agent(config.agent_spec(agent), policy)
    for name in toolbox.unavailable.get(agent, []):
        logging.getLogger("hive.agent").warning("no built-in implementation of %s", name)
    for name, url in settings.agent.peer_urls.items():
        if name in config.peer_urls:
            config.peer_urls[name] = url
    pod = AgentPod(
        config=config,
        model=model,
        status=reporter,
        tools=tools,
        host=settings.agent.host,
        port=settings.agent.port,
        heartbeat_s=settings.agent.heartbeat_s,
        peer_wait_s=settings.agent.peer_wait_s,
        chain=chain,
        audit=audit,
        authority=authority,
    )
    for live in toolbox.live:
        live.publish = publish_to(pod.bus)
    if toolbox.counts is not None:
        pod.tool_calls = reported_calls(toolbox.counts, agent)
    if memory is not None:
        pod.recall = memory.recall(config.agent_spec(agent))
        pod.embedder = memory.loaded_embedder
        toolbox.closing.append(memory.close)
    if config.is_coordinator and config.spec.memory.session is not None:
        pod.session = pod_session(config, settings)
        toolbox.closing.append(pod.session.store.close)
    if config.peer_keys is not None:  # the operator gave the team's agents their keys
        pod.signer = PeerSigner.from_file(agent, settings.agent.key_file)
        pod.callers = PeerVerifier.of_texts(agent, config.peer_keys)
    return toolbox, pod


async def report_failure(
    settings: Settings, namespace: str, team: str, agent: str, error: str
) -> None:
    """Best effort: the cluster, the team or the kubeconfig may be what is wrong."""
    log = logging.getLogger("hive.agent")
    try:
        client = async_client(settings.kube, field_manager=field_manager_for(agent))
    except HiveError as exc:  # no cluster to tell: the one-line error says it all
        log.debug("could not report the failure: %s", exc)
        return
    try:
        await StatusReporter(client, namespace, team, agent).report(
            AgentStatus(
                name=agent,
                phase=AgentPhase.FAILED,
                last_error=error[:1000],
                last_heartbeat=dt.datetime.now(dt.UTC).replace(microsecond=0),
            )
        )
    except HiveError as exc:
        log.warning("could not report the failure: %s", exc)
    finally:
        await client.close()
