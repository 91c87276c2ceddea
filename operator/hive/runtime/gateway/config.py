"""What a gateway process serves: teams, each with its model name, routes and breaker settings.

``hive gateway serve`` reads it from AgentTeam manifests (the teams' own files, as ``hive run``
takes them) or from the file the operator writes into the namespace's gateway ConfigMap
(:func:`hive.reconcile.gateway`), which is this model as JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError

from hive.api.agentteam import AgentTeamSpec, BreakerSpec
from hive.api.gateway import GatewaySpec
from hive.errors import InvalidInput


class TeamGateway(BaseModel):
    """One team as its gateway serves it."""

    model: str = Field(description="The team's model name (spec.model.name) clients ask for.")
    gateway: GatewaySpec
    breaker: BreakerSpec = Field(default_factory=BreakerSpec)


class GatewayConfig(BaseModel):
    teams: dict[str, TeamGateway] = Field(default_factory=dict)


def of_team(spec: AgentTeamSpec) -> TeamGateway | None:
    """The team's entry, or None when it declares no routes."""
    if spec.model.gateway is None:
        return None
    return TeamGateway(
        model=spec.model.name, gateway=spec.model.gateway, breaker=spec.resilience.breaker
    )


def load(paths: list[Path]) -> GatewayConfig:
    """Teams from files: AgentTeam manifests (several documents each) or a gateway config."""
    config = GatewayConfig()
    for path in paths:
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            raise InvalidInput(str(path), f"cannot read it: {exc}") from exc
        for document in documents:
            if not isinstance(document, dict):
                continue
            try:
                if document.get("kind") == "AgentTeam":
                    name = str((document.get("metadata") or {}).get("name") or path.stem)
                    entry = of_team(AgentTeamSpec.model_validate(document.get("spec") or {}))
                    if entry is None:
                        raise InvalidInput(
                            f"{path}: spec.model.gateway", f"team {name} declares no routes"
                        )
                    config.teams[name] = entry
                else:
                    config.teams.update(GatewayConfig.model_validate(document).teams)
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise InvalidInput(f"{path}: {where}", first["msg"]) from exc
    if not config.teams:
        raise InvalidInput("files", "no team with spec.model.gateway routes in them")
    return config


def dump(config: GatewayConfig) -> dict[str, Any]:
    return config.model_dump(mode="json", by_alias=True, exclude_none=True)
