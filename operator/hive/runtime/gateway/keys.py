"""The API keys of a gateway's routes: which Secret keys they come from, and the keys given
outside a cluster.

A route with a ``secretRef`` sends its key to its endpoint as ``Authorization: Bearer``. The
gateway the operator runs reads those Secrets from its namespace when it starts, through a Role
that may get only the Secrets its routes name (hive.reconcile.gateway, hive.cli.gatewaycmd);
``hive run``, and a gateway started by hand without a namespace, take them from
``HIVE_GATEWAY__ROUTE_KEYS__<route>``. A key is held only as the header it is sent in: never
logged, never in an error or a status.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import SecretStr

from hive.api.gateway import GatewaySpec
from hive.errors import InvalidInput
from hive.runtime.gateway.config import GatewayConfig

RouteKeys = dict[str, str]  # route name → its API key
TeamKeys = dict[str, RouteKeys]  # team → its routes' keys


def secret_refs(config: GatewayConfig) -> list[tuple[str, str]]:
    """The (Secret, key) pairs the config's routes name, each once."""
    return sorted(
        {
            (route.secret_ref.name, route.secret_ref.key)
            for team in config.teams.values()
            for route in team.gateway.routes
            if route.secret_ref is not None
        }
    )


def from_secrets(config: GatewayConfig, values: Mapping[str, str]) -> TeamKeys:
    """Each team's route keys from Secret values read as {"<secret>/<key>": value}; a Secret or
    key that is missing is named in the error (its value never is)."""
    keys: TeamKeys = {}
    for team, entry in config.teams.items():
        for index, route in enumerate(entry.gateway.routes):
            ref = route.secret_ref
            if ref is None:
                continue
            value = values.get(f"{ref.name}/{ref.key}")
            if not value:
                raise InvalidInput(
                    f"{team}: spec.model.gateway.routes[{index}].secretRef",
                    f"the Secret {ref.name} has no key {ref.key} (or does not exist)",
                )
            keys.setdefault(team, {})[route.name] = value
    return keys


def from_settings(spec: GatewaySpec, given: Mapping[str, SecretStr]) -> RouteKeys:
    """A team's route keys from HIVE_GATEWAY__ROUTE_KEYS__<route> (outside a cluster)."""
    keys: RouteKeys = {}
    for index, route in enumerate(spec.routes):
        if route.secret_ref is None:
            continue
        key = given.get(route.name)
        if key is None or not key.get_secret_value():
            raise InvalidInput(
                f"spec.model.gateway.routes[{index}].secretRef",
                f"set HIVE_GATEWAY__ROUTE_KEYS__{route.name.upper()} to the route's API key "
                f"(the Secret {route.secret_ref.name} is only read in a cluster)",
            )
        keys[route.name] = key.get_secret_value()
    return keys
