"""What the running operator holds: its settings and its API client."""

from __future__ import annotations

from dataclasses import dataclass, field

from hive.kube.client import ApiClient, async_client
from hive.kube.resources import FIELD_MANAGER
from hive.settings import Settings


@dataclass
class OperatorState:
    settings: Settings | None = None
    _client: ApiClient | None = field(default=None, repr=False)

    def require_settings(self) -> Settings:
        assert self.settings is not None, "operator settings not loaded"
        return self.settings

    def client(self) -> ApiClient:
        if self._client is None:
            assert self.settings is not None, "operator settings not loaded"
            self._client = async_client(self.settings.kube, field_manager=FIELD_MANAGER)
        return self._client


STATE = OperatorState()
