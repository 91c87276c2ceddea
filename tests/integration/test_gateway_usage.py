"""The gateway writes its team's status.usage on the local control plane, with the
ServiceAccount and Role the operator's builder gives it (a real token, real RBAC)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
import yaml

from hive.api.agentteam import AgentTeamSpec
from hive.kube.resources import apply_crds
from hive.reconcile.gateway import gateway_account, gateway_children
from hive.reconcile.meta import Owner
from tests.gateway_models import ROOT, model_process
from tests.support import Cluster

pytestmark = pytest.mark.integration
NS = "gateway-usage"
TEAM = "priced"


def routed_spec(route: dict[str, Any]) -> dict[str, Any]:
    """A team's spec whose one agent, lead, reaches its model through the gateway's `route`."""
    return {
        "goal": "answer",
        "model": {"name": "m", "gateway": {"routes": [route]}},
        "agents": [{"name": "lead", "role": "senior"}],
    }


def serve_gateway(
    cluster: Cluster,
    folder: Path,
    team: str,
    namespace: str,
    stderr: IO[str] | None = None,
    **settings: str,
) -> subprocess.Popen[str]:
    """`hive gateway serve` of `folder`/gateway.json on a free port, as a process logged in
    with only the token of `team`'s gateway ServiceAccount, reporting into `namespace` (more
    HIVE_GATEWAY__ `settings` by name); it prints its URL as its first line."""
    kubeconfig = cluster.account_kubeconfig(gateway_account(team), namespace, folder)
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}",
        "HIVE_KUBE__KUBECONFIG": str(kubeconfig),
        "HIVE_GATEWAY__REPORT_NAMESPACE": namespace,
        **{f"HIVE_GATEWAY__{name.upper()}": value for name, value in settings.items()},
    }
    argv = [sys.executable, "-m", "hive", "gateway", "serve", str(folder / "gateway.json")]
    return subprocess.Popen(
        [*argv, "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env=env,
    )


def usage_of(cluster: Cluster) -> dict[str, Any] | None:
    got = cluster.kubectl("get", "agentteam", TEAM, "-n", NS, "-o", "json").stdout
    found: dict[str, Any] | None = (json.loads(got).get("status") or {}).get("usage")
    return found


def test_the_gateway_writes_the_teams_usage_into_its_status(
    cluster: Cluster, tmp_path: Path
) -> None:
    apply_crds(cluster.client)
    cluster.kubectl("create", "namespace", NS)
    with model_process("priced") as server:
        route: dict[str, Any] = {"name": "only", "endpoint": server.url, "model": "priced"}
        spec = routed_spec(route | {"promptCostPer1k": 1, "completionCostPer1k": 2})
        team = {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": TEAM, "namespace": NS},
            "spec": spec,
        }
        manifest = tmp_path / "team.yaml"
        manifest.write_text(yaml.safe_dump(team))
        cluster.kubectl("apply", "-f", str(manifest))
        uid = cluster.kubectl("get", "agentteam", TEAM, "-n", NS, "-o", "jsonpath={.metadata.uid}")
        owner = Owner("AgentTeam", TEAM, NS, uid.stdout.strip(), generation=1)
        children = gateway_children(owner, AgentTeamSpec.model_validate(spec), image="hive:t")
        rbac = [c for c in children if c["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
        (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(rbac))
        cluster.kubectl("apply", "-f", str(tmp_path / "rbac.yaml"))
        config = next(c for c in children if c["kind"] == "ConfigMap")["data"]["gateway.json"]
        (tmp_path / "gateway.json").write_text(config)
        gateway = serve_gateway(cluster, tmp_path, TEAM, NS, report_interval_s="0.5")
        try:
            assert gateway.stdout is not None
            url = gateway.stdout.readline().strip()
            assert url.startswith("http://")
            for _ in range(2):
                body = {
                    "model": "m",
                    "user": "lead",
                    "messages": [{"role": "user", "content": "x"}],
                }
                assert (
                    httpx.post(url + "/chat/completions", json=body, timeout=30).status_code == 200
                )
            deadline = time.monotonic() + 60
            usage = usage_of(cluster)
            while (
                usage is None or usage["rows"][0]["requests"] < 2
            ) and time.monotonic() < deadline:
                time.sleep(0.5)
                usage = usage_of(cluster)
        finally:
            gateway.terminate()
            gateway.wait(10)
    assert usage is not None, "no status.usage was written"
    assert usage["rows"] == [
        {
            "agent": "lead",
            "model": "m",
            "route": "only",
            "requests": 2,
            "promptTokens": 20,
            "completionTokens": 10,
            "cost": 0.04,
        }
    ]
    assert usage["spent"] == 0.04


def test_the_operator_runs_the_gateway_of_a_team_with_routes(
    cluster: Cluster, tmp_path: Path
) -> None:
    from tests.operator_process import OperatorUnderTest

    apply_crds(cluster.client)
    namespace = f"gateway-op-{int(time.time() * 1000) % 100000}"
    cluster.kubectl("create", "namespace", namespace)
    operator = OperatorUnderTest(
        cluster.plane, tmp_path / "operator.log", {"HIVE_OPERATOR__NAMESPACE": namespace}
    )
    operator.start()
    try:
        team = {
            "apiVersion": "hive.dev/v1alpha1",
            "kind": "AgentTeam",
            "metadata": {"name": "routed", "namespace": namespace},
            "spec": routed_spec({"name": "vllm", "endpoint": "http://vllm:8000/v1", "model": "l"}),
        }
        cluster.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(team), timeout=60)

        def made(kind: str, name: str) -> bool:
            got = cluster.kubectl("get", kind, name, "-n", namespace, check=False)
            return got.returncode == 0

        deadline = time.monotonic() + 90
        wanted = [
            ("deployment", "routed-gateway"),
            ("service", "routed-gateway"),
            ("configmap", "routed-gateway"),
            ("networkpolicy", "routed-gateway"),
            ("rolebinding", "hive-gateway-routed"),
            ("configmap", "routed-lead-config"),
        ]
        while not all(made(k, n) for k, n in wanted) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert all(made(k, n) for k, n in wanted), [w for w in wanted if not made(*w)]
        config = cluster.kubectl(
            "get",
            "configmap",
            "routed-lead-config",
            "-n",
            namespace,
            "-o",
            "jsonpath={.data.agent\\.yaml}",
        ).stdout
        endpoint = yaml.safe_load(config)["model"]["endpoint"]
        assert endpoint == f"http://routed-gateway.{namespace}.svc:8090/v1"
    finally:
        operator.stop()
        cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_the_gateway_sends_its_routes_keys_from_their_secrets(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A route's secretRef: the gateway reads the Secret with its own token (its Role may get
    only the Secrets its routes name) and sends the key as a bearer token; it never prints it."""
    apply_crds(cluster.client)
    namespace = "gateway-keys"
    cluster.kubectl("create", "namespace", namespace)
    key = "sk-route-key-7f3a9c"
    cluster.kubectl(
        "create", "secret", "generic", "cloud-key", "-n", namespace, f"--from-literal=token={key}"
    )
    cluster.kubectl(
        "create", "secret", "generic", "unrelated", "-n", namespace, "--from-literal=k=v"
    )
    with model_process("keyed", api_key=key) as server:
        route: dict[str, Any] = {"name": "cloud", "endpoint": server.url, "model": "keyed"}
        spec = routed_spec(route | {"secretRef": {"name": "cloud-key", "key": "token"}})
        owner = Owner("AgentTeam", "keyed", namespace, "uid-keyed", generation=1)
        children = gateway_children(owner, AgentTeamSpec.model_validate(spec), image="hive:t")
        rbac = [c for c in children if c["kind"] in ("ServiceAccount", "Role", "RoleBinding")]
        for item in rbac:  # no owner to be collected with here
            item["metadata"].pop("ownerReferences", None)
        (tmp_path / "rbac.yaml").write_text(yaml.safe_dump_all(rbac))
        cluster.kubectl("apply", "-f", str(tmp_path / "rbac.yaml"))
        account = f"system:serviceaccount:{namespace}:{gateway_account('keyed')}"
        for secret, allowed in (("cloud-key", "yes"), ("unrelated", "no")):
            said = cluster.kubectl(
                "auth",
                "can-i",
                "get",
                f"secret/{secret}",
                "-n",
                namespace,
                "--as",
                account,
                check=False,
            )
            assert said.stdout.strip() == allowed, secret
        config = next(c for c in children if c["kind"] == "ConfigMap")["data"]["gateway.json"]
        assert key not in config
        (tmp_path / "gateway.json").write_text(config)
        log = tmp_path / "gateway.log"
        with log.open("w") as errors:
            gateway = serve_gateway(cluster, tmp_path, "keyed", namespace, stderr=errors)
            try:
                assert gateway.stdout is not None
                url = gateway.stdout.readline().strip()
                assert url.startswith("http://"), log.read_text()
                body = {
                    "model": "m",
                    "user": "lead",
                    "messages": [{"role": "user", "content": "x"}],
                }
                answer = httpx.post(url + "/chat/completions", json=body, timeout=30)
                assert answer.status_code == 200, answer.text
                assert answer.json()["choices"][0]["message"]["content"] == "keyed: x"
                assert key not in answer.text
            finally:
                gateway.terminate()
                gateway.wait(10)
        assert server.refused() == []
        assert len(server.arrivals()) == 1
        # without the key the route refuses: the key is what made the call pass
        assert (
            httpx.post(server.url + "/chat/completions", json=body, timeout=10).status_code == 401
        )
    assert key not in log.read_text()
    cluster.kubectl("delete", "namespace", namespace, "--wait=false")


def test_a_gateway_whose_route_secret_is_missing_says_which(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A secretRef to a key that is not there stops the gateway at its start, naming the
    route's field and the Secret."""
    apply_crds(cluster.client)
    config = {
        "teams": {
            "t": {
                "model": "m",
                "gateway": {
                    "routes": [
                        {
                            "name": "cloud",
                            "endpoint": "http://127.0.0.1:9/v1",
                            "model": "x",
                            "secretRef": {"name": "absent", "key": "token"},
                        }
                    ]
                },
            }
        }
    }
    (tmp_path / "gateway.json").write_text(json.dumps(config))
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}",
        "HIVE_KUBE__KUBECONFIG": str(cluster.plane.kubeconfig),
        "HIVE_GATEWAY__REPORT_NAMESPACE": "default",
    }
    done = subprocess.run(
        [sys.executable, "-m", "hive", "gateway", "serve", str(tmp_path / "gateway.json")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "t: spec.model.gateway.routes[0].secretRef" in done.stderr
    assert "the Secret absent has no key token" in done.stderr
