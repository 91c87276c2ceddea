"""The Vault identities a team needs: per agent a policy and a Kubernetes-auth role (pure).

Names, for team ``t`` in namespace ``ns``::

    policy and role   hive_<ns>_<t>_<agent>       (one of each per agent; "_" is in no
                                                  namespace, team or agent name, so one team's
                                                  prefix never covers another team's names)
    transit key       hive-<ns>-<t>               (the team's ed25519 signing key)
    pseudonym key     hive-<ns>-<t>_pseudonyms    (aes256-gcm96, derived and convergent: the
                                                  team's reversible pseudonyms, only with
                                                  spec.privacy; "_" keeps it apart from any
                                                  team's signing key)
    agent's secrets   <kv>/data/hive/<ns>/<t>/<agent>/*

An agent's policy grants its own secret paths, read on the team's model key (spec.model.vaultRef)
and sign/verify with the team's transit key, and, where the team has spec.privacy,
encrypt/decrypt/hmac with its pseudonym key; nothing of another agent or team. Its role binds
the agent's ServiceAccount (``<t>-<agent>``) in ``ns`` with short token TTLs. The operator
applies this plan (hive.operator.vault) and removes the names under the team's prefix that the
plan no longer holds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hive.api.agentteam import AgentTeamSpec, AgentTeamStatus, IdentityStatus, TeamPhase
from hive.reconcile.conditions import condition, merge_conditions
from hive.reconcile.meta import account_name


@dataclass(frozen=True)
class Mounts:
    auth: str = "kubernetes"
    kv: str = "secret"
    transit: str = "transit"


@dataclass(frozen=True)
class AgentIdentity:
    agent: str
    name: str  # the policy's and the role's name
    service_account: str
    namespace: str
    policy_hcl: str
    token_ttl_s: int
    token_max_ttl_s: int


@dataclass(frozen=True)
class IdentityPlan:
    prefix: str  # every name this team owns starts with it
    transit_key: str
    identities: tuple[AgentIdentity, ...]
    pseudonym_key: str | None = None  # only for a team with spec.privacy

    def names(self) -> set[str]:
        return {i.name for i in self.identities}


def team_prefix(namespace: str, team: str) -> str:
    return f"hive_{namespace}_{team}_"


def transit_key(namespace: str, team: str) -> str:
    return f"hive-{namespace}-{team}"


def pseudonym_key(namespace: str, team: str) -> str:
    """The name of a team's transit key of reversible pseudonyms."""
    return f"{transit_key(namespace, team)}_pseudonyms"


def identity_name(namespace: str, team: str, agent: str) -> str:
    """The policy and role name of one agent (also what the agent logs in as)."""
    return f"{team_prefix(namespace, team)}{agent}"


def agent_secret_prefix(namespace: str, team: str, agent: str) -> str:
    """Where an agent keeps its own secrets, relative to the KV mount."""
    return f"hive/{namespace}/{team}/{agent}"


def policy_hcl(
    namespace: str,
    team: str,
    agent: str,
    model_path: str | None,
    mounts: Mounts,
    pseudonyms: bool = False,
) -> str:
    own = agent_secret_prefix(namespace, team, agent)
    key = transit_key(namespace, team)
    rules = [
        f'path "{mounts.kv}/data/{own}/*" '
        '{ capabilities = ["create", "read", "update", "delete"] }',
        f'path "{mounts.kv}/metadata/{own}/*" {{ capabilities = ["read", "list", "delete"] }}',
        f'path "{mounts.transit}/sign/{key}" {{ capabilities = ["update"] }}',
        f'path "{mounts.transit}/verify/{key}" {{ capabilities = ["update"] }}',
        f'path "{mounts.transit}/keys/{key}" {{ capabilities = ["read"] }}',
    ]
    if pseudonyms:  # spec.privacy: seal and open pseudonyms, digest stand-ins, in transit
        sealing = pseudonym_key(namespace, team)
        rules += [
            f'path "{mounts.transit}/{verb}/{sealing}" {{ capabilities = ["update"] }}'
            for verb in ("encrypt", "decrypt", "hmac")
        ]
    if model_path:
        rules.append(f'path "{mounts.kv}/data/{model_path}" {{ capabilities = ["read"] }}')
    return "\n".join(rules) + "\n"


def identity_plan(
    namespace: str,
    team: str,
    spec: AgentTeamSpec,
    mounts: Mounts,
    *,
    token_ttl_s: int,
    token_max_ttl_s: int,
) -> IdentityPlan:
    """What Vault must hold for `team`: one policy and one role per agent, the transit key
    (and the pseudonym key where the team has spec.privacy)."""
    model_path = spec.model.vault_ref.path if spec.model.vault_ref else None
    pseudonyms = spec.privacy is not None
    identities = tuple(
        AgentIdentity(
            agent=agent.name,
            name=identity_name(namespace, team, agent.name),
            service_account=account_name(team, agent.name),
            namespace=namespace,
            policy_hcl=policy_hcl(namespace, team, agent.name, model_path, mounts, pseudonyms),
            token_ttl_s=token_ttl_s,
            token_max_ttl_s=max(token_ttl_s, token_max_ttl_s),
        )
        for agent in spec.agents
    )
    return IdentityPlan(
        team_prefix(namespace, team),
        transit_key(namespace, team),
        identities,
        pseudonym_key(namespace, team) if pseudonyms else None,
    )


def leftovers(plan: IdentityPlan, existing: set[str]) -> set[str]:
    """Names under the team's prefix that the plan no longer holds (removed agents)."""
    return {name for name in existing if name.startswith(plan.prefix)} - plan.names()


def owner_of(name: str) -> tuple[str, str] | None:
    """(namespace, team) of a policy or role name this plan scheme made, else None."""
    parts = name.split("_")
    if len(parts) != 4 or parts[0] != "hive" or not all(parts[1:]):
        return None
    return parts[1], parts[2]


def orphaned_teams(names: set[str], teams: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Teams that still hold Vault names but no longer exist (deleted while Vault was away)."""
    owners = {owner_of(name) for name in names}
    return {o for o in owners if o is not None and o not in teams}


def identities_status(plan: IdentityPlan, *, bound: bool) -> list[IdentityStatus]:
    return [
        IdentityStatus(agent=i.agent, role=i.name, policy=i.name, bound=bound)
        for i in plan.identities
    ]


def vault_blocked(
    status: AgentTeamStatus, reason: str, message: str, *, generation: int, now: dt.datetime
) -> AgentTeamStatus:
    """`status` with Ready and Progressing False and Degraded True for a Vault problem."""
    why = {
        "Ready": condition("Ready", False, reason, message, generation=generation, now=now),
        "Progressing": condition(
            "Progressing", False, reason, message, generation=generation, now=now
        ),
        "Degraded": condition("Degraded", True, reason, message, generation=generation, now=now),
    }
    desired = [why.get(c.type, c) for c in status.conditions]
    return status.model_copy(
        update={
            "phase": TeamPhase.PENDING,
            "conditions": merge_conditions(status.conditions, desired),
        }
    )
