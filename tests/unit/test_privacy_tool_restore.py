"""spec.privacy.restoreForTools: admission names the field of a list that cannot work, the floor
names the tools it lets get real values, and in the call chain only a named tool gets its
arguments restored (just before it runs) while its output goes back scrubbed."""

from __future__ import annotations

from typing import Any

import pytest

from hive.api.privacy import Boundary, PrivacySpec, floor_problem
from hive.reconcile.admission import check_agent_team
from hive.runtime.privacy.guard import Guard
from hive.runtime.privacy.wiring import with_privacy
from hive.runtime.resilience.calls import Chain
from hive.runtime.tools import Tool, ToolRegistry

EMAIL = "jane.doe@example.com"
TEAM = {
    "goal": "answer customers",
    "model": {"name": "m", "endpoint": "http://127.0.0.1:1"},
    "agents": [{"name": "a", "role": "senior"}],
}
PSEUDONYMISE = [{"entity": "EMAIL_ADDRESS", "strategy": "pseudonymise"}]


@pytest.mark.parametrize(
    ("privacy", "problem"),
    [
        (
            {"restoreForTools": ["crm"]},
            "spec.privacy: restoreForTools: no rule pseudonymises, so a tool has nothing to "
            "restore",
        ),
        (
            {"rules": PSEUDONYMISE, "boundaries": ["modelPrompts"], "restoreForTools": ["crm"]},
            "spec.privacy: restoreForTools: needs toolOutputs in boundaries (the output of a "
            "tool that got real values is scrubbed again before the model sees it)",
        ),
        (
            {"rules": PSEUDONYMISE, "restoreForTools": ["crm", "crm"]},
            "spec.privacy: restoreForTools[1]: crm is listed already",
        ),
        (
            {"rules": PSEUDONYMISE, "restoreForTools": ["crm lookup"]},
            "spec.privacy.restoreForTools[0]: String should match pattern",
        ),
    ],
)
def test_a_list_that_cannot_work_is_refused_naming_the_field(
    privacy: dict[str, Any], problem: str
) -> None:
    found = check_agent_team({**TEAM, "privacy": privacy})
    assert found is not None
    assert found.startswith(problem), found


def test_a_list_that_works_is_admitted() -> None:
    privacy = {"rules": PSEUDONYMISE, "restoreForTools": ["crm-lookup", "getCustomer"]}
    assert check_agent_team({**TEAM, "privacy": privacy}) is None


def test_the_floor_names_the_tools_that_may_get_real_values() -> None:
    floor = PrivacySpec.model_validate(
        {"mode": "fast", "rules": PSEUDONYMISE, "restoreForTools": ["crm-lookup"]}
    )
    allowed = {"mode": "fast", "rules": PSEUDONYMISE, "restoreForTools": ["crm-lookup"]}
    assert floor_problem({**TEAM, "privacy": allowed}, floor) is None
    beyond = {**allowed, "restoreForTools": ["crm-lookup", "mailer"]}
    assert floor_problem({**TEAM, "privacy": beyond}, floor) == (
        "spec.privacy.restoreForTools: mailer may not get real values under the cluster floor "
        "(its restoreForTools lists the tools that may)"
    )


async def test_only_a_named_tool_gets_real_values_and_its_output_goes_back_scrubbed() -> None:
    spec = PrivacySpec.model_validate(
        {"mode": "fast", "rules": PSEUDONYMISE, "restoreForTools": ["crm"]}
    )
    guard = Guard(spec, agent="a", key="restore test key 0123456789")
    received: dict[str, str] = {}

    def tool(name: str) -> Tool:
        async def run(email: str) -> dict[str, str]:
            received[name] = email
            return {"customer": "C-1", "email": email}

        schema = {"type": "object", "properties": {"email": {"type": "string"}}}
        return Tool(name, "look a customer up", schema, run)

    registry = ToolRegistry.of([tool("crm"), tool("search")])
    registry.chain = with_privacy(Chain((), "a"), guard)
    pseudonym = guard.scrub_text(EMAIL, Boundary.MODEL_PROMPTS)
    assert pseudonym != EMAIL
    arguments = {"email": pseudonym}  # what the model wrote: it only knows the pseudonym
    crm = await registry.call(registry.check("crm", arguments), arguments)
    search = await registry.call(registry.check("search", arguments), arguments)
    assert received == {"crm": EMAIL, "search": pseudonym}
    assert crm == {"customer": "C-1", "email": pseudonym}  # back to the model scrubbed
    assert search == {"customer": "C-1", "email": pseudonym}
    assert arguments == {"email": pseudonym}  # the conversation keeps the pseudonym
    in_clear = guard.status(guard.ledger.started).in_clear
    assert in_clear == ["toolInputs:tool:crm"]
