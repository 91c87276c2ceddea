"""The local control plane is the real thing: schema validation, RBAC, tokens, scheduling, GC."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from hive.dev.controlplane import ControlPlane
from hive.errors import Conflict
from hive.kube.resources import apply_crds
from tests.support import Cluster, dev_settings

pytestmark = pytest.mark.integration
SAMPLE = Path(__file__).resolve().parents[2] / "operator/hive/samples/agentteam-research.yaml"


def test_crd_and_custom_object_with_schema_validation(cluster: Cluster, tmp_path: Path) -> None:
    assert "agentteams.hive.dev" in apply_crds(cluster.client)
    cluster.kubectl("apply", "-f", str(SAMPLE))
    got = json.loads(cluster.kubectl("get", "agentteam", "research", "-o", "json").stdout)
    assert [a["name"] for a in got["spec"]["agents"]] == ["lead", "researcher", "coder"]
    assert got["spec"]["delegation"]["approvalRequired"] is False, "defaults from the schema"

    bad = tmp_path / "bad.yaml"
    bad.write_text(
        SAMPLE.read_text()
        .replace("\n  name: research\n", "\n  name: bad\n")
        .replace("role: junior", "role: boss")
    )
    refused = cluster.kubectl("apply", "-f", str(bad), check=False)
    assert refused.returncode != 0
    assert "spec.agents[1].role" in refused.stderr
    assert "Unsupported value" in refused.stderr
    missing = cluster.kubectl("get", "agentteam", "bad", check=False)
    assert "NotFound" in missing.stderr


def test_explain_teaches_the_api(cluster: Cluster) -> None:
    apply_crds(cluster.client)
    out = cluster.kubectl("explain", "agentteam.spec.agents.subordinates").stdout
    assert "Agents this one may delegate to" in out


def test_rbac_is_on_and_service_account_tokens_are_real(cluster: Cluster) -> None:
    cluster.kubectl("create", "serviceaccount", "lonely", "-n", "default")
    sa = "system:serviceaccount:default:lonely"
    denied = cluster.kubectl("auth", "can-i", "list", "pods", f"--as={sa}", check=False)
    assert (denied.returncode, denied.stdout.strip()) == (1, "no")
    allowed = cluster.kubectl("auth", "can-i", "list", "pods")
    assert allowed.stdout.strip() == "yes"

    token = cluster.kubectl("create", "token", "lonely", "-n", "default").stdout.strip()
    context = ssl.create_default_context(cafile=str(cluster.plane.pki.ca.cert))
    headers = {"Authorization": f"Bearer {token}"}
    url = cluster.plane.url
    review = httpx.get(f"{url}/api/v1/namespaces/default/pods", headers=headers, verify=context)
    assert review.status_code == 403
    assert sa in review.json()["message"]
    whoami = httpx.post(
        f"{url}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        headers=headers,
        verify=context,
    )
    assert whoami.json()["status"]["userInfo"]["username"] == sa
    forged = httpx.get(
        f"{url}/api/v1/namespaces", headers={"Authorization": "Bearer x.y.z"}, verify=context
    )
    assert forged.status_code == 401


def test_kwok_nodes_run_scheduled_pods_and_gc_collects_them(cluster: Cluster) -> None:
    cluster.kubectl("wait", "--for=condition=Ready", "node", "--all", "--timeout=60s")
    cluster.kubectl("create", "deployment", "web", "--image=registry.invalid/web:1", "--replicas=3")
    cluster.kubectl("rollout", "status", "deployment/web", "--timeout=90s")
    pods = json.loads(cluster.kubectl("get", "pods", "-l", "app=web", "-o", "json").stdout)["items"]
    assert len(pods) == 3
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert all(p["spec"]["nodeName"].startswith("kwok-node-") for p in pods)
    cluster.kubectl("delete", "deployment", "web", "--cascade=background")
    cluster.kubectl("wait", "--for=delete", "pod", "-l", "app=web", "--timeout=90s")


def test_dev_up_again_is_idempotent(cluster: Cluster) -> None:
    again = cluster.plane.up()
    assert again.already_running
    assert again.cleaned == []


def test_a_port_in_use_is_named_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        settings = dev_settings(tmp_path / "s", apiserver_port=port)
        with pytest.raises(Conflict) as info:
            ControlPlane(settings).up()
        assert f"port {port} for kube-apiserver is already in use" in str(info.value)
        assert "HIVE_DEV__APISERVER_PORT" in str(info.value)

        env = {**os.environ, "HIVE_DEV__STATE_DIR": str(tmp_path / "cli")}
        for field, value in settings.model_dump().items():
            if field.endswith("_port"):
                env[f"HIVE_DEV__{field.upper()}"] = str(value)
        cli = subprocess.run(
            [sys.executable, "-m", "hive", "dev", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cli.returncode == 1
        assert cli.stderr.strip().splitlines() == [str(info.value).join(("hive: error: ", ""))]


def test_a_crashed_run_is_cleaned_by_pid_and_restarted(tmp_path: Path) -> None:
    plane = ControlPlane(dev_settings(tmp_path / "crash", kwok_nodes=1))
    try:
        plane.up()
        apiserver = plane.processes.get("kube-apiserver")
        assert apiserver is not None
        os.kill(apiserver.pid, signal.SIGKILL)
        result = plane.up()
        assert not result.already_running
        assert "kube-apiserver" in {r.name for r in result.cleaned}
        assert all(c.running for c in plane.status())
        assert plane.processes.get("kube-apiserver").pid != apiserver.pid  # type: ignore[union-attr]
    finally:
        stopped = plane.down(purge=True)
    assert set(stopped) == {
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "kwok",
    }
