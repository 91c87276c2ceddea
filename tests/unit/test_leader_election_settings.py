"""Leader-election settings: when an election runs, where its Lease is, and the timing order."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from hive.operator.leadership import election_from
from hive.settings import KubeSettings, LeaderElectionSettings, OperatorSettings, Settings


def settings(tmp_path: Path, *, kubeconfig: bool, token: bool, **election: object) -> Settings:
    account = tmp_path / "account"
    account.mkdir(parents=True, exist_ok=True)
    if token:
        (account / "token").write_text("t")
        (account / "namespace").write_text("hive-system\n")
    kube = KubeSettings(
        kubeconfig=tmp_path / "kubeconfig" if kubeconfig else None, service_account_dir=account
    )
    operator = OperatorSettings(leader_election=LeaderElectionSettings.model_validate(election))
    return Settings(kube=kube, operator=operator)


def test_on_in_a_cluster_off_with_a_kubeconfig_unless_asked(tmp_path: Path) -> None:
    in_cluster = election_from(settings(tmp_path, kubeconfig=False, token=True, pod_name="op-0"))
    assert in_cluster is not None
    assert (in_cluster.namespace, in_cluster.lease) == ("hive-system", "hive-operator")
    assert (in_cluster.identity, in_cluster.pod) == ("op-0", "op-0")
    assert election_from(settings(tmp_path, kubeconfig=True, token=True)) is None
    asked = election_from(settings(tmp_path / "x", kubeconfig=True, token=False, enabled=True))
    assert asked is not None
    assert asked.namespace == "default"
    assert asked.pod is None
    assert asked.identity  # hostname-pid


def test_the_renew_deadline_lies_between_the_retry_period_and_the_lease(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="renew_deadline_s < lease_duration_s"):
        LeaderElectionSettings(lease_duration_s=8, renew_deadline_s=8.0)
    with pytest.raises(ValidationError, match="retry_period_s < renew_deadline_s"):
        LeaderElectionSettings(retry_period_s=9.0)
    assert LeaderElectionSettings(lease_duration_s=6, renew_deadline_s=4, retry_period_s=1)
