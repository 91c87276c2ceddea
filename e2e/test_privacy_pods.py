"""A team's privacy policy in real pods on the real node: the task's email address, card number
and person's name never reach the (scripted) model; the team's status says what was found and
done (status.privacy) and that nothing went out in clear.

In a cluster the answer stays pseudonymised: status.run.result is readable by whoever can read
the team, so restoreForRequester applies only where the requester runs the team (`hive run`);
the test asserts the raw values are in neither the model's requests nor the team's status.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from tests.scripted_model import ScriptedModel, scripted_model
from tests.support import Cluster

from e2e.conftest import OperatorProcess, wait_for
from e2e.test_agent_pods import get_team, real_team
from e2e.test_real_pod_faults import apply
from hive.dev.node import RealNode

pytestmark = pytest.mark.e2e

EMAIL, CARD, NAME = "ada.lovelace@example.com", "4111 1111 1111 1111", "Ada Lovelace"
GOAL = f"Write to {NAME} at {EMAIL} that card {CARD} was charged."
POLICY = {
    "mode": "ner",
    "rules": [
        {"entity": "EMAIL_ADDRESS", "strategy": "pseudonymise"},
        {"entity": "PERSON", "strategy": "pseudonymise"},
        {"entity": "CREDIT_CARD", "strategy": "redact"},
    ],
    "restoreForRequester": True,
}
SCRIPT = {"clerk": [{"when": "Write to", "content": "Done: the customer was told."}]}


@pytest.fixture
def model(real_node: RealNode) -> Iterator[ScriptedModel]:
    with scripted_model(SCRIPT, host=real_node.gateway()) as server:
        yield server


def what_happened(cluster: Cluster) -> str:
    status = get_team(cluster, "guarded").get("status", {})
    logs = cluster.kubectl(
        "logs", "-l", "hive.dev/team=guarded,hive.dev/agent=clerk", "--tail=40", check=False
    )
    return f"status: {json.dumps(status)[:3000]}\nagent log:\n{logs.stdout}{logs.stderr}"


def reported(cluster: Cluster) -> dict[str, Any] | None:
    status = get_team(cluster, "guarded").get("status", {})
    run = status.get("run") or {}
    done = run.get("outcome") not in (None, "Running") and status.get("privacy")
    return status if done else None


def test_no_raw_personal_data_reaches_the_model_or_the_status(
    cluster: Cluster, operator: OperatorProcess, real_node: RealNode, model: ScriptedModel
) -> None:
    agents = [{"name": "clerk", "role": "junior"}]
    team = real_team("guarded", real_node, model.url, GOAL, agents, privacy=POLICY)
    apply(cluster, team)
    try:
        try:
            status = wait_for(lambda: reported(cluster), 90, "the run and status.privacy")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{what_happened(cluster)}") from None
        assert status is not None
        assert status["run"]["outcome"] == "Succeeded", what_happened(cluster)
        sent = json.dumps(model.requests_of("clerk"))
        assert "Write to" in sent  # the task reached the model
        for raw in (EMAIL, CARD, NAME):
            assert raw not in sent
            assert raw not in json.dumps(status)
        privacy = status["privacy"]
        assert privacy["byEntity"].keys() >= {"EMAIL_ADDRESS", "PERSON", "CREDIT_CARD"}
        assert privacy["actions"].keys() >= {"pseudonymise", "redact"}
        assert privacy["byBoundary"]["modelPrompts"] >= 3
        assert privacy.get("inClear", []) == []
    finally:
        cluster.kubectl("delete", "agentteam", "guarded", "--wait=false", check=False)
