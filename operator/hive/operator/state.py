"""What the running operator holds: its settings, its API client, and what it last applied of
each child (`AppliedChildren`, fed by the watch of the children)."""

from __future__ import annotations

from dataclasses import dataclass, field

from hive.kube.children import AppliedChildren
from hive.kube.client import ApiClient, async_client
from hive.kube.resources import FIELD_MANAGER
from hive.operator.footprint import track
from hive.reconcile.agentteam import CHILD_KINDS
from hive.settings import Settings


@dataclass
class OperatorState:
    settings: Settings | None = None
    _client: ApiClient | None = field(default=None, repr=False)
    # the teams' children that hive.operator.handlers watches (CHILD_KINDS); their Secret is not
    children: AppliedChildren = field(
        default_factory=lambda: AppliedChildren(CHILD_KINDS), repr=False
    )

    def require_settings(self) -> Settings:
        assert self.settings is not None, "operator settings not loaded"
        return self.settings

    def forget_children(self) -> None:
        """Forget what was applied: every child is applied again on its next reconcile. A
        Secret (not watched) is read back at most twice a resync interval."""
        resync_s = self.settings.operator.resync_s if self.settings is not None else 0.0
        self.children = AppliedChildren(CHILD_KINDS, reread_after_s=resync_s / 2)

    def client(self) -> ApiClient:
        if self._client is None:
            assert self.settings is not None, "operator settings not loaded"
            self._client = async_client(self.settings.kube, field_manager=FIELD_MANAGER)
        return self._client


STATE = OperatorState()
track("applied children", lambda: len(STATE.children), STATE.forget_children)
