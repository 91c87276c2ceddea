"""Running ChaosExperiments: the state machine's actions, and rollback on deletion.

``hive_chaos_polls_total`` counts the timer's polls by the phase the experiment was in; a
finished experiment is not polled, so its phases (Completed, Failed) stop growing.

With two replicas only the leader acts, and it checks that it still leads right before each
fault it injects or removes (`hive.operator.leadership.may_act`): a leader whose Lease ran out
while a step was in flight does not kill a pod the new leader may kill for the same step. A pod
kill is fenced on the API server itself: right before it, the leader renews its Lease
(`confirm_leading`), a write the API server takes only from the Lease's holder at the version it
read, so a leader whose Lease another replica has taken (whatever its own clock says) kills
nothing, and after a renewal that went through no other replica can lead for a lease duration.
"""

from __future__ import annotations

import datetime as dt
import logging

from prometheus_client import Counter

from hive.errors import Unavailable
from hive.kube.children import apply_objects, delete, delete_pods, get_hive_object
from hive.kube.status import apply_status
from hive.operator.leadership import confirm_leading, may_act
from hive.operator.state import STATE
from hive.reconcile.chaos import ChaosActions, field_manager, plan_chaos, rollback_actions
from hive.reconcile.meta import AGENT_LABEL, TEAM_LABEL, Owner, child_name

log = logging.getLogger(__name__)
CHAOS_POLLS = Counter(
    "hive_chaos_polls",
    "Timer polls of ChaosExperiments, by the phase the experiment was in.",
    ["phase"],
)


def ensure_leading(experiment: str) -> None:
    """Raise (retryable) unless this replica may act: the standby never touches a fault."""
    if not may_act():
        raise Unavailable(f"ChaosExperiment {experiment}: this replica is not the leader")


async def act(namespace: str, experiment: str, team: str, actions: ChaosActions) -> None:
    client = STATE.client()
    if actions.fault_config is not None:
        ensure_leading(experiment)
        await apply_objects(client, [actions.fault_config], field_manager=field_manager(experiment))
    if actions.partition is not None:
        ensure_leading(experiment)
        await apply_objects(client, [actions.partition])
    if actions.remove_partition:
        ensure_leading(experiment)
        await delete(client, "NetworkPolicy", namespace, child_name("chaos", experiment))
    for agent in actions.kill_agents:
        if not await confirm_leading():
            raise Unavailable(f"ChaosExperiment {experiment}: this replica is not the leader")
        killed = await delete_pods(client, namespace, {TEAM_LABEL: team, AGENT_LABEL: agent})
        log.info("chaos %s/%s killed pods %s", namespace, experiment, ", ".join(killed) or "-")


async def reconcile_chaos(namespace: str, name: str) -> None:
    client = STATE.client()
    obj = await get_hive_object(client, "ChaosExperiment", namespace, name)
    if obj is None or obj["metadata"].get("deletionTimestamp"):
        return
    meta, spec = obj["metadata"], obj.get("spec") or {}
    owner = Owner("ChaosExperiment", name, namespace, meta["uid"], meta.get("generation", 0))
    team_name = str((spec.get("selector") or {}).get("team") or "")
    team = await get_hive_object(client, "AgentTeam", namespace, team_name) if team_name else None
    plan = plan_chaos(owner, spec, obj.get("status"), team, dt.datetime.now(dt.UTC))
    desired = plan.status.wire()
    changed = any((obj.get("status") or {}).get(k) != v for k, v in desired.items())
    if plan.status_first and changed:  # write-ahead: record faults before injecting them
        ensure_leading(name)
        if plan.actions.kill_agents and not await confirm_leading():
            raise Unavailable(f"ChaosExperiment {name}: this replica is not the leader")
        await apply_status(client, "ChaosExperiment", namespace, name, desired)
    await act(namespace, name, team_name, plan.actions)
    if not plan.status_first and changed:
        await apply_status(client, "ChaosExperiment", namespace, name, desired)


async def roll_back(namespace: str, name: str, spec: dict[str, object], uid: str) -> None:
    """Remove every fault of the experiment; used by its finalizer."""
    client = STATE.client()
    selector = spec.get("selector")
    team_name = str(selector.get("team") or "") if isinstance(selector, dict) else ""
    team = await get_hive_object(client, "AgentTeam", namespace, team_name) if team_name else None
    team_uid = (team or {}).get("metadata", {}).get("uid")
    owner = Owner("ChaosExperiment", name, namespace, uid)
    await act(namespace, name, team_name, rollback_actions(owner, team_name, team_uid))
