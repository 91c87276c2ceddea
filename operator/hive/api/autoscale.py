"""An agent's HorizontalPodAutoscaler on its work queue depth (``spec.agents[].autoscale``).

An agent that autoscales shares its work through its work queue (as with ``replicas > 1``:
the team's Redis must be set up for the operator's agents), and the operator gives its
Deployment an autoscaling/v2 HPA on the External metric ``hive_agent_queue_depth`` (selected
by team and agent, in the team's namespace) with an AverageValue target: replicas =
ceil(queue depth / targetQueueDepth), within minReplicas and maxReplicas. The HPA owns the
Deployment's replica count; ``replicas`` is then unused. A metrics adapter (e.g.
prometheus-adapter) must serve the gauge, scraped from the agents' /metrics, on the External
metrics API; without one the HPA keeps the agent within minReplicas and maxReplicas only.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_core import PydanticCustomError

from hive.api.common import HiveModel

QUEUE_DEPTH_METRIC = "hive_agent_queue_depth"


class AutoscaleSpec(HiveModel):
    """Replicas from the agent's work queue depth."""

    min_replicas: int = Field(default=1, ge=1, le=100, description="Fewest pods.")
    max_replicas: int = Field(ge=1, le=100, description="Most pods.")
    target_queue_depth: int = Field(
        default=2,
        ge=1,
        le=10000,
        description="Tasks waiting or in hand per replica the autoscaler aims at (the HPA's "
        "AverageValue target on hive_agent_queue_depth).",
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> AutoscaleSpec:
        if self.max_replicas < self.min_replicas:
            raise PydanticCustomError(
                "autoscale_bounds",
                "maxReplicas: {max} is below minReplicas {min}",
                {"max": self.max_replicas, "min": self.min_replicas},
            )
        return self
