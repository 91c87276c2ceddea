"""AgentTeams at scale on KWOK: apply -> Ready latency, catch-up after a restart, operator RSS,
the requests of a resync, and the floor: the API server itself.

    python bench/teams_at_scale.py [--teams 1000] [--agents 1]

Starts its own control plane (etcd, kube-apiserver, controllers, KWOK) and the operator as a
process, creates the teams concurrently, and watches every team's Ready condition. It counts
the requests the operator sends in a resync of the unchanged teams (its
hive_kube_requests_total), times the repair of a ConfigMap deleted by hand and single teams
(one agent, then ten) applied one at a time on the warm cluster; then the floor of one 10-agent
team: exactly the children the operator makes for it (planned by the same builder, without
their owner references, so that the operator and the garbage collector leave them be) created
by a plain client, 32 at a time, in a namespace of their own, until every Deployment is
available. It kills the operator (SIGKILL), changes every team's spec while it is down, starts
it again and measures how long until every team is Ready at its new generation. Last, with the
operator stopped, the same floor for every team. The operator's times are printed as ratios of
the floor. Prints one summary line per figure, and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx
from lightkube import ApiError, AsyncClient, KubeConfig, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import ConfigMap, Namespace
from tests.operator_process import reconciles, requests_sent
from tests.support import dev_settings, free_port

from hive.dev.controlplane import ControlPlane
from hive.dev.processes import ProcessTable
from hive.kube.client import sync_client
from hive.kube.objects import delete_webhook_configuration
from hive.kube.resources import apply_crds
from hive.reconcile.agentteam import AgentPodSettings, TeamObserved, plan_team
from hive.reconcile.meta import Owner
from hive.settings import KubeSettings, OperatorSettings

AgentTeam = create_namespaced_resource("hive.dev", "v1alpha1", "AgentTeam", "agentteams")


def team_spec(agents: int, goal: str) -> dict[str, Any]:
    members = [{"name": f"a{i}", "role": "junior"} for i in range(agents)]
    return {"goal": goal, "model": {"name": "m"}, "agents": members}


def team(name: str, agents: int, goal: str) -> Any:
    return AgentTeam.from_dict(
        {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": name, "namespace": "default"},
            "spec": team_spec(agents, goal),
        }
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ready_generation(obj: Any) -> int | None:
    status = obj.status or {}
    for cond in status.get("conditions", []):
        if cond.get("type") == "Ready" and cond.get("status") == "True":
            return int(cond.get("observedGeneration", 0))
    return None


async def watch_until_ready(
    client: AsyncClient,
    names: set[str],
    generation: dict[str, int],
    done_at: dict[str, float],
    deadline: float,
) -> None:
    """Record the first moment each team is Ready at (at least) its expected generation."""
    while len(done_at) < len(names) and time.monotonic() < deadline:
        async for _, obj in client.watch(AgentTeam, namespace="default"):
            name = obj.metadata.name
            seen = ready_generation(obj)
            if (
                name in names
                and name not in done_at
                and seen is not None
                and seen >= generation.get(name, 1)
            ):
                done_at[name] = time.monotonic()
            if len(done_at) == len(names) or time.monotonic() > deadline:
                return


async def warm_up(client: AsyncClient) -> None:
    """Wait until a plain Deployment runs: nodes Ready, scheduler and controllers warm. Without
    this the first teams also wait for the fresh cluster, which is not the operator's time."""
    probe = Deployment.from_dict(
        {
            "metadata": {"name": "warm-up", "namespace": "default"},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app": "warm-up"}},
                "template": {
                    "metadata": {"labels": {"app": "warm-up"}},
                    "spec": {"containers": [{"name": "c", "image": "registry.invalid/warm-up:1"}]},
                },
            },
        }
    )
    await client.apply(probe, field_manager="bench", force=True)
    for _ in range(1200):
        dep = await client.get(Deployment, "warm-up", namespace="default")
        if dep.status and (dep.status.availableReplicas or 0) >= 1:
            break
        await asyncio.sleep(0.1)
    await client.delete(Deployment, "warm-up", namespace="default")


def rss_mb(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


async def ready_one_by_one(
    client: AsyncClient, names: list[str], agents: int, timeout_s: float
) -> list[float]:
    """Apply each team alone and wait for it to be Ready: apply -> Ready seconds, each."""
    took = []
    for name in names:
        done: dict[str, float] = {}
        watcher = asyncio.create_task(
            watch_until_ready(client, {name}, {}, done, time.monotonic() + timeout_s)
        )
        await asyncio.sleep(0.2)  # the watch is open before the team exists
        started = time.monotonic()
        await client.apply(team(name, agents, "one at a time"), force=True)
        await watcher
        took.append(done[name] - started if name in done else float("inf"))
    return took


async def repair_times(client: AsyncClient, teams: list[str]) -> list[float]:
    """Delete each team's first ConfigMap by hand; seconds until the operator made it again."""
    took = []
    for name in teams:
        config = f"{name}-a0-config"
        await client.delete(ConfigMap, config, namespace="default")
        started = time.monotonic()
        while time.monotonic() - started < 30:
            try:
                await client.get(ConfigMap, config, namespace="default")
                break
            except ApiError:
                await asyncio.sleep(0.02)
        took.append(time.monotonic() - started)
    return took


async def resync_requests(port: int, teams: int, timeout_s: float) -> tuple[int, int]:
    """Writes and reads the operator sends while it reconciles every team once more, after a
    first such round (what was still moving has settled by then)."""

    async def one_round() -> None:
        start = reconciles(port, "AgentTeam")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if reconciles(port, "AgentTeam") >= start + teams:
                break
            await asyncio.sleep(0.5)

    await one_round()
    writes, total = requests_sent(port, writes_only=True), requests_sent(port)
    await one_round()
    writes = requests_sent(port, writes_only=True) - writes
    return writes, requests_sent(port) - total - writes


def floor_children(
    names: list[str], agents: int, sandbox_key: str, namespace: str
) -> list[dict[str, Any]]:
    """What the operator makes for these teams (same builder, same settings), in `namespace`
    and without owner references."""
    operator = OperatorSettings()
    pods = AgentPodSettings(
        image=operator.agent_image,
        sandbox_image=operator.sandbox_image,
        image_pull_policy=operator.pod_pull_policy,
        sandbox_key=sandbox_key.encode(),
    )
    now = dt.datetime.now(dt.UTC)
    out = []
    for name in names:
        owner = Owner("AgentTeam", name, namespace, f"uid-{name}", 1)
        plan = plan_team(owner, team_spec(agents, "first goal"), None, TeamObserved(), pods, now)
        for child in plan.children:
            child["metadata"].pop("ownerReferences", None)
            out.append(child)
    return out


async def floor(
    client: AsyncClient, children: list[dict[str, Any]], timeout_s: float
) -> tuple[float, float]:
    """Create `children` with a plain client, 32 at a time (Deployments last, as the operator
    does); seconds until all are created, and until every Deployment is available."""
    namespace = children[0]["metadata"]["namespace"]
    await client.create(Namespace.from_dict({"metadata": {"name": namespace}}))
    gate = asyncio.Semaphore(32)

    async def create(child: dict[str, Any]) -> None:
        async with gate:
            await client.apply(codecs.from_dict(child), field_manager="bench-floor", force=True)

    wanted = {c["metadata"]["name"] for c in children if c["kind"] == "Deployment"}
    available: set[str] = set()

    async def watch() -> None:
        deadline = time.monotonic() + timeout_s
        while len(available) < len(wanted) and time.monotonic() < deadline:
            async for _, dep in client.watch(Deployment, namespace=namespace):
                if dep.status and (dep.status.availableReplicas or 0) >= 1:
                    available.add(str(dep.metadata and dep.metadata.name))
                if len(available) >= len(wanted) or time.monotonic() > deadline:
                    return

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    await asyncio.gather(*(create(c) for c in children if c["kind"] != "Deployment"))
    await asyncio.gather(*(create(c) for c in children if c["kind"] == "Deployment"))
    created = time.monotonic() - started
    await watcher
    return created, time.monotonic() - started


async def run(
    args: argparse.Namespace,
    plane: ControlPlane,
    table: ProcessTable,
    start_operator: Any,
    metrics_port: int,
) -> None:
    client = AsyncClient(KubeConfig.from_file(plane.kubeconfig), field_manager="bench")
    names = {f"bench-{i:04d}" for i in range(args.teams)}
    created: dict[str, float] = {}
    done: dict[str, float] = {}
    gate = asyncio.Semaphore(16)

    async def create(name: str, goal: str) -> None:
        async with gate:
            created[name] = time.monotonic()
            await client.apply(team(name, args.agents, goal), force=True)

    await warm_up(client)
    deadline = time.monotonic() + args.timeout
    watcher = asyncio.create_task(watch_until_ready(client, names, {}, done, deadline))
    started = time.monotonic()
    await asyncio.gather(*(create(n, "first goal") for n in sorted(names)))
    applied = time.monotonic() - started
    await watcher
    latencies = [done[n] - created[n] for n in names if n in done]
    print(
        f"teams: {args.teams} x {args.agents} agent(s); applied in {applied:.1f}s; "
        f"{len(done)}/{args.teams} Ready in {max(done.values()) - started:.1f}s",
        flush=True,
    )
    print(
        f"apply -> Ready latency: p50 {percentile(latencies, 0.5):.2f}s, "
        f"p99 {percentile(latencies, 0.99):.2f}s, max {max(latencies):.2f}s",
        flush=True,
    )
    converged = max(done.values()) - started
    record = table.get("operator")
    assert record is not None
    rss, peak = rss_mb(record.pid)
    print(f"operator RSS at convergence: {rss:.0f} MiB (peak {peak:.0f} MiB); {load()}")

    writes, reads = await resync_requests(metrics_port, args.teams, args.timeout)
    print(
        f"a resync of {args.teams} unchanged teams: {writes} writes, {reads} reads; {load()}",
        flush=True,
    )
    rss, _ = rss_mb(record.pid)  # the burst's freed heap given back (operator.heap_trim_s)
    print(f"operator RSS with the teams converged, after the resync: {rss:.0f} MiB", flush=True)
    repaired = await repair_times(client, sorted(names)[:9])
    print(
        f"a ConfigMap deleted by hand, made again: p50 {percentile(repaired, 0.5):.2f}s "
        f"(of {len(repaired)}: {', '.join(f'{t:.2f}' for t in repaired)}); {load()}",
        flush=True,
    )
    single = await ready_one_by_one(client, [f"solo-{i}" for i in range(11)], 1, 60)
    print(
        f"one team alone on the warm cluster, apply -> Ready: p50 {percentile(single, 0.5):.2f}s "
        f"(of {len(single)}: {', '.join(f'{t:.2f}' for t in single)}); {load()}",
        flush=True,
    )
    ten = await ready_one_by_one(client, [f"ten-{i}" for i in range(7)], 10, 120)
    print(
        f"a 10-agent team alone, apply -> Ready: p50 {percentile(ten, 0.5):.2f}s "
        f"(of {len(ten)}: {', '.join(f'{t:.2f}' for t in ten)}); {load()}",
        flush=True,
    )
    # its floor on the same warm cluster, now (the operator sees these children go by, and
    # leaves them be: no team owns them)
    alone = floor_children(["ten-floor"], 10, plane.sandbox_key(), "floor-ten")
    ten_created, ten_available = await floor(client, alone, 120)
    print(
        f"floor of a 10-agent team alone (no operator at work): {len(alone)} children created "
        f"in {ten_created:.2f}s, every Deployment available in {ten_available:.2f}s; operator / "
        f"floor {percentile(ten, 0.5) / ten_available:.2f}x; {load()}",
        flush=True,
    )

    os.kill(record.pid, signal.SIGKILL)
    (table.pid_dir / "operator.json").unlink()
    # With the operator gone its webhook refuses every write; take it away as `hive dev down`
    # does, so the specs can change while the operator is down. It registers it again on start.
    delete_webhook_configuration(sync_client(KubeSettings(kubeconfig=plane.kubeconfig)), "hive.dev")
    await asyncio.gather(*(create(n, "second goal") for n in sorted(names)))
    generation = {n: 2 for n in names}
    catch_up: dict[str, float] = {}
    started = time.monotonic()
    start_operator()
    await watch_until_ready(client, names, generation, catch_up, time.monotonic() + args.timeout)
    caught_up = max(catch_up.values()) - started
    print(
        f"catch-up after kill -9 with every spec changed: {len(catch_up)}/{args.teams} teams "
        f"Ready at the new generation in {caught_up:.1f}s; {load()}",
        flush=True,
    )
    record = table.get("operator")
    assert record is not None
    rss, peak = rss_mb(record.pid)
    print(f"operator RSS after catch-up: {rss:.0f} MiB (peak {peak:.0f} MiB)", flush=True)
    writes, reads = await resync_requests(metrics_port, args.teams, args.timeout)
    rss, _ = rss_mb(record.pid)  # the catch-up's listings given back (operator.heap_trim_s)
    print(
        f"operator RSS after catch-up and two resyncs ({writes} writes, {reads} reads): "
        f"{rss:.0f} MiB; {load()}",
        flush=True,
    )

    table.stop("operator")
    delete_webhook_configuration(sync_client(KubeSettings(kubeconfig=plane.kubeconfig)), "hive.dev")
    children = floor_children(sorted(names), args.agents, plane.sandbox_key(), "floor")
    floor_created, all_available = await floor(client, children, args.timeout)
    print(
        f"floor (no operator): {len(children)} children of {args.teams} teams created in "
        f"{floor_created:.1f}s, every Deployment available in {all_available:.1f}s; {load()}",
        flush=True,
    )
    print(
        f"operator / floor (every Deployment available): all Ready "
        f"{converged / all_available:.2f}x, catch-up {caught_up / all_available:.2f}x; "
        f"operator / floor (children created): all Ready {converged / floor_created:.2f}x, "
        f"catch-up {caught_up / floor_created:.2f}x",
        flush=True,
    )
    await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--resync", type=float, default=30, help="the operator's resync_s")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops what it started
    with tempfile.TemporaryDirectory() as folder:
        # An agent pod asks for 250m CPU; a KWOK node offers 32 CPUs (128 pods): keep room for
        # the teams' pods, the floor's, and the single teams'.
        nodes = max(2, 2 * (args.teams * args.agents + 50) // 100 + 1)
        plane = ControlPlane(dev_settings(Path(folder) / "plane", kwok_nodes=nodes))
        table = ProcessTable(Path(folder) / "operator")
        ports = {
            "metrics_port": free_port(),
            "liveness_port": free_port(),
            "webhook_port": free_port(),
        }
        try:
            plane.up()
            apply_crds(sync_client(KubeSettings(kubeconfig=plane.kubeconfig)))

            def start_operator() -> None:
                env = {
                    **os.environ,
                    **plane.operator_env(**ports),
                    "HIVE_OPERATOR__RESYNC_S": str(args.resync),
                }
                table.start("operator", [sys.executable, "-m", "hive", "operator"], env=env)
                url = f"http://127.0.0.1:{ports['liveness_port']}/healthz"
                for _ in range(600):
                    try:
                        if httpx.get(url, timeout=1).is_success:
                            socket.create_connection(
                                ("127.0.0.1", ports["webhook_port"]), 1
                            ).close()
                            return
                    except (httpx.HTTPError, OSError):
                        pass
                    time.sleep(0.1)
                raise SystemExit("the operator did not start")

            start_operator()
            asyncio.run(run(args, plane, table, start_operator, ports["metrics_port"]))
        finally:
            table.stop("operator")
            plane.down(purge=True)


if __name__ == "__main__":
    main()
