"""The team's Degraded condition from its agents' capability levels.

Every agent reports the capability level it works at in its own status entry
(``status.agents[].capability``: level, reason, since). A team whose agents are all available
and whose run has not failed is Degraded while any agent works below full: the reason says the
lowest level (``CapabilityReduced`` or ``CapabilityMinimal``), the message which agent, why and
since when. When every agent is back at full, the condition is False again on the next
reconcile, with nothing to clear by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hive.api.agentteam import CapabilityLevel

RANK = {CapabilityLevel.MINIMAL.value: 2, CapabilityLevel.REDUCED.value: 1}
REASON = {2: "CapabilityMinimal", 1: "CapabilityReduced"}


def capability_degraded(status: Mapping[str, Any]) -> tuple[bool, str, str] | None:
    """(True, reason, message) when an agent works below full capability; None otherwise."""
    below = []
    for entry in status.get("agents") or []:
        capability = entry.get("capability") if isinstance(entry, Mapping) else None
        if not isinstance(capability, Mapping):
            continue
        rank = RANK.get(str(capability.get("level")), 0)
        if rank:
            below.append((rank, str(entry.get("name")), capability))
    if not below:
        return None
    below.sort(key=lambda item: (-item[0], item[1]))
    parts = [
        f"{name} at {cap.get('level')} capability since {cap.get('since')}"
        + (f": {cap.get('reason')}" if cap.get("reason") else "")
        for _, name, cap in below
    ]
    message = "; ".join(parts)
    if len(message) > 1000:
        message = message[:997] + "..."
    return True, REASON[below[0][0]], message


def capability_settled(status: Mapping[str, Any]) -> bool:
    """Whether the Degraded condition already says what the agents' levels say: an agent's
    status write that changes a level must wake the team's reconcile, others need not."""
    wanted = capability_degraded(status)
    degraded = next(
        (
            c
            for c in status.get("conditions") or []
            if isinstance(c, Mapping) and c.get("type") == "Degraded"
        ),
        None,
    )
    reason = str((degraded or {}).get("reason") or "")
    if wanted is None:
        return not reason.startswith("Capability")
    if reason.startswith("Capability"):
        return (reason, (degraded or {}).get("message")) == wanted[1:]
    return (degraded or {}).get("status") == "True"  # Degraded for a weightier reason already
