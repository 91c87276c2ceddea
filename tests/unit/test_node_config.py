"""The real node's configuration files, as written, without starting anything."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from hive.dev.controlplane import ControlPlane
from hive.dev.node import RUNSC_HANDLER, RealNode
from hive.errors import NotInstalled
from hive.settings import NodeSettings
from tests.support import dev_settings


@pytest.fixture
def node(tmp_path: Path) -> RealNode:
    testbin = tmp_path / "testbin"
    (testbin / "images").mkdir(parents=True)
    (testbin / "images" / "pause.version").write_text("3.10.2\n")
    plane = ControlPlane(dev_settings(tmp_path / "state", testbin_dir=testbin))
    settings = NodeSettings(pod_cidr="10.77.0.0/16", taints=["only=tests:NoSchedule", "plain"])
    return RealNode(plane, settings)


def test_containerd_runs_runc_by_default_and_runsc_for_its_handler(node: RealNode) -> None:
    base = node.folder / "containerd"
    config = tomllib.loads(node._containerd_config(base, base / "cni", base / "runsc.toml"))
    assert config["root"].startswith(str(node.folder))
    assert config["grpc"]["address"] == str(node.socket)
    cri = config["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True  # root here lacks CAP_SYS_RESOURCE
    assert cri["sandbox_image"] == "localhost/hive-pause:3.10.2"
    runtimes = cri["containerd"]["runtimes"]
    assert cri["containerd"]["default_runtime_name"] == "runc"
    assert runtimes["runc"]["options"]["SystemdCgroup"] is False
    assert runtimes[RUNSC_HANDLER]["runtime_type"] == "io.containerd.runsc.v1"
    assert runtimes[RUNSC_HANDLER]["options"]["ConfigPath"].endswith("runsc.toml")


def test_the_bridge_hands_out_the_node_pod_cidr_without_nat(node: RealNode) -> None:
    cni = node._cni_config()
    plugins = cni["plugins"]
    assert isinstance(plugins, list)
    bridge = plugins[0]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.77.0.0/16"}]]
    assert bridge["ipMasq"] is False
    assert [p["type"] for p in plugins] == ["bridge", "loopback"]


def test_the_kubelet_runs_on_cgroup_v1_with_certificates_only(node: RealNode) -> None:
    config = node._kubelet_config(Path("serving.crt"), Path("serving.key"))
    assert config["failCgroupV1"] is False
    assert config["cgroupDriver"] == "cgroupfs"
    assert config["authentication"] == {
        "anonymous": {"enabled": False},
        "webhook": {"enabled": False},
        "x509": {"clientCAFile": str(node.plane.pki.ca.cert)},
    }
    assert config["registerWithTaints"] == [
        {"key": "only", "value": "tests", "effect": "NoSchedule"},
        {"key": "plain", "value": "", "effect": "NoSchedule"},
    ]
    assert config["readOnlyPort"] == 0


def test_a_missing_gvisor_shim_names_make_testbin(node: RealNode) -> None:
    with pytest.raises(NotInstalled, match="make testbin"):
        node.gvisor("containerd-shim-runsc-v1")


def test_down_without_a_node_does_nothing(node: RealNode) -> None:
    assert node.down() == []
