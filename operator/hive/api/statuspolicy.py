"""Who may write what in an AgentTeam's status, enforced by the API server itself.

A ValidatingAdmissionPolicy (CEL, admissionregistration.k8s.io/v1) and its binding: a status
write by an agent of the team (``system:serviceaccount:<namespace>:<team>-<agent>`` for an
agent named in the team's spec) may change only that agent's entry in ``status.agents`` and,
when that agent is the team's coordinator, ``status.run`` and ``status.privacy`` (what the
team's privacy policy found in the run); every other status field stays as it was. The
coordinator is worked out from the spec exactly as the runtime does
(``hive.api.agentteam.coordinator_of``): in a hierarchy the first agent that leads others
and is led by none, else the first senior, else the first agent. Writers that are no agent of
the team (the operator, people) are not this policy's business: RBAC decides for them.

The chart ships the same objects (charts/hive-operator/templates/status-policy.yaml, kept equal
by a test); the local cluster gets them with the CRDs.
"""

from __future__ import annotations

import json
from typing import Any

from hive.api import GROUP
from hive.api.crd import crd_manifest
from hive.api.kinds import AGENT_TEAM

POLICY_NAME = f"agent-status.{GROUP}"
SA = "'system:serviceaccount:' + request.namespace + ':' + object.metadata.name + '-'"

_AGENT_OF_TEAM = f"object.spec.agents.exists(a, {SA} + a.name == request.userInfo.username)"
_TOPS = (
    "object.spec.agents.filter(a, has(a.subordinates) && size(a.subordinates) > 0 && "
    "!object.spec.agents.exists(b, has(b.subordinates) && a.name in b.subordinates))"
)


def status_defaults() -> str:
    """The defaults the API server fills into a status that had none (a CEL map literal): an
    agent's first write may bring these, and only these, besides its own entry."""
    schema = crd_manifest(AGENT_TEAM)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    fields = schema["properties"]["status"]["properties"]
    found = {k: v["default"] for k, v in sorted(fields.items()) if "default" in v}
    return json.dumps(found).replace('"', "'")


def _status(obj: str, field: str, absent: str) -> str:
    return f"has({obj}.status) && has({obj}.status.{field}) ? {obj}.status.{field} : {absent}"


VARIABLES = [
    ("caller", f"request.userInfo.username.substring(size({SA}))"),
    ("newAgents", _status("object", "agents", "[]")),
    ("oldAgents", _status("oldObject", "agents", "[]")),
    ("newRun", "has(object.status) && has(object.status.run) ? [object.status.run] : []"),
    ("oldRun", "has(oldObject.status) && has(oldObject.status.run) ? [oldObject.status.run] : []"),
    ("newStatus", "has(object.status) ? object.status : {}"),
    ("oldStatus", "has(oldObject.status) ? oldObject.status : {}"),
    (  # the coordinator's fields besides the run that this write changes
        "coordinated",
        "['privacy'].filter(k, k in variables.newStatus ? !(k in variables.oldStatus) || "
        "variables.oldStatus[k] != variables.newStatus[k] : k in variables.oldStatus)",
    ),
    (
        "forged",
        "variables.newAgents.filter(e, e.name != variables.caller && "
        "!variables.oldAgents.exists(o, o == e)).map(e, e.name) + "
        "variables.oldAgents.filter(o, o.name != variables.caller && "
        "!variables.newAgents.exists(e, e.name == o.name)).map(o, o.name)",
    ),
    (
        "others",
        "variables.newStatus.filter(k, k != 'agents' && k != 'run' && k != 'privacy' && "
        "!(k in variables.oldStatus ? variables.oldStatus[k] == variables.newStatus[k] : "
        f"k in {status_defaults()} && {status_defaults()}[k] == variables.newStatus[k])) + "
        "variables.oldStatus.filter(k, k != 'agents' && k != 'run' && k != 'privacy' && "
        "!(k in variables.newStatus))",
    ),
    ("tops", _TOPS),
    ("seniors", "object.spec.agents.filter(a, a.role == 'senior')"),
    (
        "coordinator",
        "object.spec.pattern == 'hierarchical' && size(variables.tops) > 0 ? "
        "variables.tops[0].name : size(variables.seniors) > 0 ? variables.seniors[0].name : "
        "object.spec.agents[0].name",
    ),
]

VALIDATIONS = [
    (
        "size(variables.forged) == 0",
        "'status.agents: agent ' + variables.caller + ' may write only its own entry, not ' + "
        "variables.forged.join(', ')",
    ),
    (
        "variables.newRun == variables.oldRun || variables.caller == variables.coordinator",
        "'status.run: only the coordinator (' + variables.coordinator + ') writes the run, not "
        "agent ' + variables.caller",
    ),
    (
        "size(variables.coordinated) == 0 || variables.caller == variables.coordinator",
        "'status.' + variables.coordinated.join(', status.') + ': only the coordinator (' + "
        "variables.coordinator + ') writes it, not agent ' + variables.caller",
    ),
    (
        "size(variables.others) == 0",
        "'status: agent ' + variables.caller + ' may write only status.agents[name=' + "
        "variables.caller + '], not status.' + variables.others.join(', status.')",
    ),
]


def policy() -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY_NAME},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [GROUP],
                        "apiVersions": ["*"],
                        "operations": ["UPDATE"],
                        "resources": ["agentteams/status"],
                    }
                ]
            },
            "matchConditions": [{"name": "an-agent-of-the-team", "expression": _AGENT_OF_TEAM}],
            "variables": [{"name": n, "expression": e} for n, e in VARIABLES],
            "validations": [
                {"expression": e, "messageExpression": m, "reason": "Forbidden"}
                for e, m in VALIDATIONS
            ],
        },
    }


def binding() -> dict[str, Any]:
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY_NAME},
        "spec": {"policyName": POLICY_NAME, "validationActions": ["Deny"]},
    }


def manifests() -> list[dict[str, Any]]:
    return [policy(), binding()]
