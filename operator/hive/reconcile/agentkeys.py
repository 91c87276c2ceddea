"""Each agent's own secret key: how it proves who it is to its peers and its sandbox pods.

The keys are derived, not stored: the operator's master key (`HIVE_OPERATOR__SANDBOX_KEY`, kept
by the chart in a Secret) and the team's namespace, name and UID give the team's key; the
team's key and an agent's name give the agent's. Deriving keeps the builders pure and the keys
stable across reconciles and operator restarts, and a team deleted and made again under the
same name gets new keys (a new UID).

One Secret per team holds the agents' keys, one entry per agent. Each agent pod mounts only its
own entry, and with it

- signs every request to its peers with an Ed25519 key derived from it
  (`hive.runtime.identity.peerauth`); every agent's configuration carries the public keys of
  the whole team (:func:`peer_keys`), so a peer checks who calls without asking anyone;
- proves, per run, to a sandbox pod that it holds it (an HMAC over the connection's nonce and
  the run, `hive.runtime.sandbox.bootstrap.run_proof`); each sandbox pod mounts the entries of
  the agents bound to its policy (root's, mode 0400 — the runs inside cannot read them).

No key ever crosses the wire.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable

from hive.reconcile.meta import Owner, child_name, metadata
from hive.runtime.identity.peerauth import public_key_text

JSON = dict[str, object]
AGENT_KEY_DIR = "/etc/hive/identity"  # an agent's own key, as the file `key`
CALLERS_DIR = "/etc/hive/callers"  # a sandbox pod's callers, one file per agent
KEY_FILE_MODE = 0o400  # root's inside the sandbox pod, never the runs'
AGENT_KEY_FILE_MODE = 0o440  # the agent's group (its pod's fsGroup) reads it


def keys_secret_name(team: str) -> str:
    return child_name(team, "agent-keys")


def team_key(master: bytes, owner: Owner) -> bytes:
    label = f"hive-agent-keys/1/{owner.namespace}/{owner.name}/{owner.uid}"
    return hmac.new(master, label.encode(), hashlib.sha256).digest()


def agent_key(team: bytes, agent: str) -> bytes:
    return hmac.new(team, f"agent/{agent}".encode(), hashlib.sha256).digest()


def peer_keys(owner: Owner, master: bytes, agents: Iterable[str]) -> dict[str, str]:
    """The public signing key of each agent (base64url), for every agent's configuration."""
    key = team_key(master, owner)
    return {agent: public_key_text(agent_key(key, agent)) for agent in sorted(set(agents))}


def keys_secret(owner: Owner, master: bytes, agents: Iterable[str], labels: dict[str, str]) -> JSON:
    """The team's agent-keys Secret: each agent's key as hex text under its name."""
    key = team_key(master, owner)
    data = {
        agent: base64.b64encode(agent_key(key, agent).hex().encode()).decode()
        for agent in sorted(set(agents))
    }
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata(keys_secret_name(owner.name), owner, labels),
        "type": "Opaque",
        "data": data,
    }


def agent_key_volume(team: str, agent: str) -> JSON:
    """An agent pod's volume with its own key only."""
    return {
        "name": "agent-key",
        "secret": {
            "secretName": keys_secret_name(team),
            "items": [{"key": agent, "path": "key"}],
            "defaultMode": AGENT_KEY_FILE_MODE,
        },
    }


def callers_volume(team: str, agents: Iterable[str]) -> JSON:
    """A sandbox pod's volume with the keys of the agents that may call it."""
    return {
        "name": "callers",
        "secret": {
            "secretName": keys_secret_name(team),
            "items": [{"key": a, "path": a} for a in sorted(set(agents))],
            "defaultMode": KEY_FILE_MODE,
        },
    }
