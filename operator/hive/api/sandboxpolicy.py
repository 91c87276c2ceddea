"""SandboxPolicy: what agent-written code may do, and where it runs (gVisor by default)."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from hive.api.common import Condition, HiveModel, cel, list_map

MODULE = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"


class NetworkMode(StrEnum):
    NONE = "none"
    ALLOWLIST = "allowlist"


class FilesystemMode(StrEnum):
    NONE = "none"
    READONLY = "readonly"
    TEMP = "temp"


class Limits(HiveModel):
    """Resource limits of one execution."""

    memory: str = Field(default="256Mi", pattern=QUANTITY, description="Memory limit, e.g. 256Mi.")
    cpu: str = Field(default="1", pattern=QUANTITY, description="CPU limit of the sandbox pod.")
    cpu_seconds: float = Field(default=10, gt=0, le=3600, description="CPU time per execution.")
    timeout_seconds: float = Field(default=30, gt=0, le=3600, description="Wall-clock timeout.")
    pids: int = Field(default=64, ge=1, le=4096, description="Processes and threads at most.")
    output_bytes: int = Field(
        default=1_048_576, ge=1, le=104_857_600, description="stdout and stderr kept, at most."
    )


class EgressRule(HiveModel):
    """One destination code may reach when the network mode is allowlist."""

    host: str = Field(
        min_length=1,
        max_length=253,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$|^[0-9./]+$",
        description="DNS name, IP address or CIDR.",
    )
    ports: list[int] = Field(
        default_factory=lambda: [443], min_length=1, max_length=32, description="TCP ports."
    )


class Network(HiveModel):
    """Network access of sandboxed code."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.mode == 'allowlist' || !has(self.egress) || size(self.egress) == 0",
                    "an egress allowlist needs network mode 'allowlist', not 'none'",
                    ".egress",
                ),
                cel(
                    "self.mode != 'allowlist' || (has(self.egress) && size(self.egress) > 0)",
                    "network mode 'allowlist' needs at least one egress rule",
                    ".egress",
                ),
            ]
        }
    )

    mode: NetworkMode = Field(default=NetworkMode.NONE, description="none or allowlist.")
    egress: list[EgressRule] = Field(
        default_factory=list, max_length=64, description="Allowed destinations (allowlist only)."
    )

    @model_validator(mode="after")
    def _allowlist_matches_mode(self) -> Network:
        if self.mode == NetworkMode.NONE and self.egress:
            raise ValueError("an egress allowlist needs network mode 'allowlist', not 'none'")
        if self.mode == NetworkMode.ALLOWLIST and not self.egress:
            raise ValueError("network mode 'allowlist' needs at least one egress rule")
        return self


class Modules(HiveModel):
    """Python modules code may import, enforced inside the sandbox by an import hook."""

    allow: list[str] = Field(
        default_factory=list,
        max_length=512,
        description="Only these (and submodules) may be imported; empty allows all not denied.",
    )
    deny: list[str] = Field(
        default_factory=lambda: ["ctypes", "subprocess", "socket", "multiprocessing"],
        max_length=512,
        description="Never importable, whatever the allow list says.",
    )


class Pool(HiveModel):
    """Warm sandboxes kept ready to hide the cold start."""

    size: int = Field(default=2, ge=0, le=64, description="Warm interpreters kept ready.")
    max_uses: int = Field(default=100, ge=1, le=100000, description="Executions before recycling.")


class SandboxPolicySpec(HiveModel):
    """How agent-written code runs."""

    runtime_class_name: str = Field(
        default="gvisor",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description="RuntimeClass of sandbox pods; Hive creates 'gvisor' (handler runsc).",
    )
    limits: Limits = Field(default_factory=Limits, description="Per-execution limits.")
    network: Network = Field(default_factory=Network, description="Network access.")
    filesystem: FilesystemMode = Field(
        default=FilesystemMode.TEMP,
        description="none, readonly (the image only) or temp (a private scratch folder).",
    )
    modules: Modules = Field(default_factory=Modules, description="Import allow and deny lists.")
    pool: Pool = Field(default_factory=Pool, description="Warm pool.")


class RetiringAddress(HiveModel):
    """An address a name's earlier answer gave and its latest does not: still open until `until`."""

    address: str = Field(description="IPv4 or IPv6 address.")
    until: dt.datetime = Field(description="When it closes: one TTL after it dropped out.")


class ResolvedEgress(HiveModel):
    """What an egress DNS name resolved to, as opened by the policy's NetworkPolicy."""

    host: str = Field(description="The DNS name from spec.network.egress.")
    addresses: list[str] = Field(
        default_factory=list, description="Its A and AAAA answer; empty when it did not resolve."
    )
    resolved_at: dt.datetime = Field(description="When it was looked up.")
    ttl_seconds: int = Field(
        ge=0, description="The answer's TTL (clamped); it is looked up again after that."
    )
    retiring: list[RetiringAddress] = Field(
        default_factory=list,
        description="Addresses of an earlier answer, kept open for one more TTL so that DNS "
        "rotation does not cut live connections.",
    )
    error: str | None = Field(default=None, description="Why it did not resolve.")


class SandboxPolicyStatus(HiveModel):
    """Which agents the policy governs and whether its consistency checks passed."""

    observed_generation: int | None = Field(default=None, ge=0, description="Last reconciled.")
    bound_agents: list[str] = Field(
        default_factory=list, description="Agents (team/agent) whose sandboxPolicyRef names it."
    )
    bound_agent_count: int | None = Field(default=None, ge=0, description="Bound agents.")
    verified: bool | None = Field(
        default=None,
        description="The policy passed its consistency checks (verification says which).",
    )
    verification: str | None = Field(
        default=None, description="What was checked, or the first check that failed."
    )
    egress: list[ResolvedEgress] = Field(
        default_factory=list,
        description="The egress DNS names and the addresses they opened (allowlist only).",
        json_schema_extra=list_map("host"),
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready; EgressResolved when the allowlist names hosts.",
        json_schema_extra=list_map("type"),
    )
