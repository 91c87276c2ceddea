"""An agent's HorizontalPodAutoscaler on its work queue depth (``spec.agents[].autoscale``).

autoscaling/v2, External metric ``hive_agent_queue_depth`` selected by the team's and the
agent's names (the gauge's labels, hive.runtime.workqueue.queue; the adapter scopes it to the
HPA's namespace), AverageValue target ``targetQueueDepth``: the HPA sets the agent's
Deployment's replicas to ceil(depth / target) within its bounds. Pure: the caller applies.
"""

from __future__ import annotations

from typing import Any

from hive.api.agentteam import AgentSpec
from hive.api.autoscale import QUEUE_DEPTH_METRIC
from hive.reconcile.meta import Owner, metadata

JSON = dict[str, Any]


def agent_autoscaler(
    owner: Owner, agent: AgentSpec, deployment: str, labels: dict[str, str]
) -> JSON | None:
    """The HPA of the agent's Deployment `deployment`, or None without spec.autoscale."""
    scale = agent.autoscale
    if scale is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(deployment, owner, labels),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment},
            "minReplicas": scale.min_replicas,
            "maxReplicas": scale.max_replicas,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": QUEUE_DEPTH_METRIC,
                            "selector": {"matchLabels": {"team": owner.name, "agent": agent.name}},
                        },
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(scale.target_queue_depth),
                        },
                    },
                }
            ],
        },
    }
