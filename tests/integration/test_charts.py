"""The Helm charts lint, render, and are accepted by a real kube-apiserver.

`charts/hive-crds` is installed for real with helm (the operator chart's custom resources and
webhook configuration need the CRDs); `charts/hive-operator` is rendered and sent through
`kubectl apply --dry-run=server`, so the API server validates every object without the webhook
configuration (which points at an operator that does not run here) taking effect.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from hive.dev.controlplane import OPERATOR_ALLOCATOR
from hive.settings import VaultSettings
from tests.support import REPO, Cluster

pytestmark = pytest.mark.integration

CRDS_CHART = REPO / "charts/hive-crds"
OPERATOR_CHART = REPO / "charts/hive-operator"
NAMESPACE = "hive-system"
RELEASE = "hive"
PLURALS = ["agentteams", "toolversions", "sandboxpolicies", "chaosexperiments", "memorystores"]
TIMEOUT_S = 120

Doc = dict[str, Any]


def helm(cluster: Cluster, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    result = subprocess.run(
        [str(cluster.plane.binary("helm")), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result


def render(cluster: Cluster, chart: Path, *args: str) -> str:
    return helm(cluster, "template", RELEASE, str(chart), "--namespace", NAMESPACE, *args).stdout


def documents(manifest: str) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(manifest) if doc]


def one(docs: list[Doc], kind: str) -> Doc:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def tls_secret(docs: list[Doc]) -> Doc:
    """The webhook's serving certificate (the chart's other Secret is the sandbox master key)."""
    found = [d for d in docs if d["kind"] == "Secret" and "tls.crt" in (d.get("data") or {})]
    assert len(found) == 1, f"expected one TLS Secret, got {len(found)}"
    return found[0]


def kubectl_apply(cluster: Cluster, manifest: str, *args: str) -> str:
    result = cluster.kubectl("apply", *args, "-f", "-", input=manifest, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def crds_installed(cluster: Cluster) -> None:
    """The CRD chart installed for real, every CRD Established, and the operator's namespace."""
    namespace = cluster.kubectl(
        "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml"
    ).stdout
    kubectl_apply(cluster, namespace)
    # Other tests may have applied the same CRDs already; the chart takes them over.
    helm(
        cluster,
        "upgrade",
        "--install",
        "hive-crds",
        str(CRDS_CHART),
        "--namespace",
        NAMESPACE,
        "--take-ownership",
        "--timeout",
        f"{TIMEOUT_S}s",
    )
    # `kubectl wait` fails at once while a new CRD has no conditions yet, so poll instead.
    path = '{.status.conditions[?(@.type=="Established")].status}'
    deadline = time.monotonic() + 50
    for plural in PLURALS:
        while True:
            got = cluster.kubectl(
                "get", f"crd/{plural}.hive.dev", "-o", f"jsonpath={path}", check=False
            ).stdout
            if got == "True":
                break
            assert time.monotonic() < deadline, f"crd/{plural}.hive.dev not Established"
            time.sleep(0.2)


@pytest.mark.parametrize("chart", [CRDS_CHART, OPERATOR_CHART], ids=lambda p: p.name)
def test_lint_strict(cluster: Cluster, chart: Path) -> None:
    out = helm(cluster, "lint", "--strict", str(chart)).stdout
    assert "0 chart(s) failed" in out


def test_crd_chart_holds_every_generated_crd(cluster: Cluster) -> None:
    docs = documents(render(cluster, CRDS_CHART))
    assert sorted(doc["metadata"]["name"] for doc in docs) == sorted(
        f"{plural}.hive.dev" for plural in PLURALS
    )
    assert {doc["kind"] for doc in docs} == {"CustomResourceDefinition"}
    generated = {
        path.name: yaml.safe_load(path.read_text()) for path in (REPO / "crds").glob("*.yaml")
    }
    for doc in docs:
        assert doc == generated[f"{doc['metadata']['name']}.yaml"], "chart drifted from crds/"


def test_crds_installed_by_helm(cluster: Cluster, crds_installed: None) -> None:
    names = cluster.kubectl(
        "get", "crd", "-l", "app.kubernetes.io/part-of=hive", "-o", "name"
    ).stdout.split()
    assert {f"customresourcedefinition.apiextensions.k8s.io/{p}.hive.dev" for p in PLURALS} <= set(
        names
    )
    status = helm(cluster, "status", "hive-crds", "--namespace", NAMESPACE).stdout
    assert "STATUS: deployed" in status


@pytest.mark.parametrize("cert_manager", [False, True], ids=["helm-certs", "cert-manager"])
def test_operator_chart_accepted_by_the_api_server(
    cluster: Cluster, crds_installed: None, cert_manager: bool
) -> None:
    webhook = ("get", "validatingwebhookconfiguration", "hive.dev", "--ignore-not-found")
    before = cluster.kubectl(*webhook, "-o", "jsonpath={.metadata.resourceVersion}").stdout
    manifest = render(cluster, OPERATOR_CHART, "--set", f"certManager.enabled={cert_manager}")
    if cert_manager:
        # cert-manager's own CRDs are not installed here; its objects are checked in render tests.
        manifest = yaml.safe_dump_all(
            doc
            for doc in documents(manifest)
            if not doc["apiVersion"].startswith("cert-manager.io/")
        )
    out = kubectl_apply(cluster, manifest, "--dry-run=server")
    for kind in [
        "serviceaccount",
        "clusterrole.rbac.authorization.k8s.io",
        "clusterrolebinding.rbac.authorization.k8s.io",
        "role.rbac.authorization.k8s.io",
        "rolebinding.rbac.authorization.k8s.io",
        "service",
        "deployment.apps",
        "poddisruptionbudget.policy",
        "validatingwebhookconfiguration.admissionregistration.k8s.io/hive.dev",
    ]:
        assert kind in out, out
    assert "-sandbox-key created" in out
    assert ("-tls created" in out) is not cert_manager, out
    assert "(server dry run)" in out
    after = cluster.kubectl(*webhook, "-o", "jsonpath={.metadata.resourceVersion}").stdout
    assert after == before, "a dry run must leave the webhook configuration as it was"


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("replicaCount=0", "/replicaCount"),
        ("replicaCount=6", "/replicaCount"),
        ("podDisruptionBudget.minAvailable=0", "/podDisruptionBudget/minAvailable"),
        ("webhook.failurePolicy=Sometimes", "/webhook/failurePolicy"),
        ("webhook.timeoutSeconds=forever", "/webhook/timeoutSeconds"),
        ("certManager.enabled=maybe", "/certManager/enabled"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("notAValue=1", "notAValue"),
        ("vault.enabled=true,vault.role=hive-operator", "/vault/address"),
        ("vault.enabled=true,vault.address=https://vault:8200", "/vault/role"),
        ("vault.address=vault.vault.svc:8200", "/vault/address"),
        ("vault.kvMount=", "/vault/kvMount"),
        ("vault.token=s.root", "token"),  # no token is ever a value of the chart
    ],
)
def test_schema_rejects_bad_values(cluster: Cluster, setting: str, message: str) -> None:
    for command in ("template", "lint"):
        args = [RELEASE] if command == "template" else []
        result = helm(cluster, command, *args, str(OPERATOR_CHART), "--set", setting, check=False)
        assert result.returncode != 0, f"helm {command} accepted {setting}"
        said = result.stdout + result.stderr
        assert "values don't meet the specifications of the schema" in said, said
        assert message in said, said


def test_cluster_role_is_least_privilege(cluster: Cluster) -> None:
    docs = documents(render(cluster, OPERATOR_CHART))
    roles = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "ClusterRole"}
    # the operator's own, and the one for people who attach `hive debug` to their teams
    assert set(roles) == {"hive-hive-operator", "hive-hive-operator-team-debugger"}, set(roles)
    debugger = {
        (g, r): set(rule["verbs"])
        for rule in roles["hive-hive-operator-team-debugger"]["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
    }
    assert debugger[("hive.dev", "agentteams")] == {"get", "patch"}, debugger
    assert debugger[("", "pods/proxy")] == {"get", "create"}, debugger
    granted: dict[tuple[str, str], set[str]] = {}
    for rule in roles["hive-hive-operator"]["rules"]:
        for field in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[field], f"wildcard in {field}: {rule}"
        assert "resourceNames" not in rule
        assert "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted.setdefault((group, resource), set()).update(rule["verbs"])

    read = {"get", "list", "watch"}
    manage = read | {"create", "patch", "update", "delete"}
    expected: dict[tuple[str, str], set[str]] = {}
    for plural in PLURALS:
        expected["hive.dev", plural] = read | {"patch", "update"}
        expected["hive.dev", f"{plural}/status"] = {"get", "patch", "update"}
        expected["hive.dev", f"{plural}/finalizers"] = {"update"}
    for resource in ("serviceaccounts", "configmaps", "services"):
        expected["", resource] = manage
    expected["", "pods"] = read | {"delete"}
    expected["", "events"] = {"create", "patch", "list"}
    expected["", "secrets"] = {"get", "create", "patch"}
    expected["", "nodes"] = {"get"}
    expected["apps", "deployments"] = manage
    expected["apps", "statefulsets"] = manage  # a managed MemoryStore's backend
    expected["", "persistentvolumeclaims"] = {"get"}
    expected["rbac.authorization.k8s.io", "roles"] = manage
    expected["rbac.authorization.k8s.io", "rolebindings"] = manage
    expected["networking.k8s.io", "networkpolicies"] = manage
    expected["autoscaling", "horizontalpodautoscalers"] = manage  # spec.agents[].autoscale
    expected["node.k8s.io", "runtimeclasses"] = read | {"create", "patch"}
    expected["apiextensions.k8s.io", "customresourcedefinitions"] = read
    # held to be granted: a replicated coordinator agent's Role claims its team's run Lease
    expected["coordination.k8s.io", "leases"] = {"get", "create", "update"}
    expected["batch", "jobs"] = {"create", "get"}  # held to be granted: spec.swarm.jobs
    assert granted == expected

    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},  # its leader label
    ]
    account = one(docs, "ServiceAccount")["metadata"]["name"]
    for binding in (one(docs, "ClusterRoleBinding"), one(docs, "RoleBinding")):
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
        ]


def test_deployment_runs_the_operator_hardened(cluster: Cluster) -> None:
    docs = documents(render(cluster, OPERATOR_CHART, "--set", "image.tag=9.9.9"))
    deployment = one(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/hive-dev/hive:9.9.9"
    assert container["args"] == ["operator"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["HIVE_OPERATOR__METRICS_PORT"] == "9464"
    assert env["HIVE_OPERATOR__LIVENESS_PORT"] == "8080"
    assert env["HIVE_OPERATOR__WEBHOOK_PORT"] == "9443"
    assert env["HIVE_OPERATOR__WEBHOOK_CERT_DIR"] == "/tls"
    assert {k: env[k] for k in OPERATOR_ALLOCATOR} == OPERATOR_ALLOCATOR  # as the local operator
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["metrics"] == 9464
    assert ports["webhook"] == 9443
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    assert ports[probe["port"]] == 8080
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 65532
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]["memory"] == "128Mi"
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"tls": "/tls", "tmp": "/tmp"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {}
    tls = volumes["tls"]["secret"]
    assert {i["key"] for i in tls["items"]} == {"tls.crt", "tls.key", "ca.crt"}
    assert tls["secretName"] == tls_secret(docs)["metadata"]["name"]

    labels = deployment["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "hive"
    assert labels["app.kubernetes.io/instance"] == RELEASE
    assert labels["app.kubernetes.io/managed-by"] == "Helm"
    assert labels["app.kubernetes.io/version"] == "9.9.9"


def test_services_and_scrape_switch(cluster: Cluster) -> None:
    def services(*args: str) -> dict[str, Doc]:
        docs = documents(render(cluster, OPERATOR_CHART, *args))
        return {d["spec"]["ports"][0]["name"]: d for d in docs if d["kind"] == "Service"}

    default = services()
    assert default["metrics"]["spec"]["ports"][0]["port"] == 9464
    assert "prometheus.io/scrape" not in default["metrics"]["metadata"].get("annotations", {})
    webhook = default["webhook"]["spec"]["ports"][0]
    assert (webhook["port"], webhook["targetPort"]) == (443, "webhook")

    scraped = services("--set", "metrics.service.prometheusScrape=true")["metrics"]
    annotations = scraped["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9464"


def test_webhook_configuration_one_per_kind_with_a_trusted_certificate(cluster: Cluster) -> None:
    docs = documents(render(cluster, OPERATOR_CHART))
    config = one(docs, "ValidatingWebhookConfiguration")
    assert config["metadata"]["name"] == "hive.dev"
    service = next(d for d in docs if d["kind"] == "Service" and "webhook" in d["metadata"]["name"])
    secret = tls_secret(docs)
    assert [w["name"] for w in config["webhooks"]] == [f"validate-{p}.hive.dev" for p in PLURALS]
    for plural, hook in zip(PLURALS, config["webhooks"], strict=True):
        assert hook["rules"] == [
            {
                "apiGroups": ["hive.dev"],
                "apiVersions": ["v1alpha1"],
                "resources": [plural],
                "operations": ["CREATE", "UPDATE"],
                "scope": "Namespaced",
            }
        ]
        client = hook["clientConfig"]
        assert client["service"] == {
            "name": service["metadata"]["name"],
            "namespace": NAMESPACE,
            "path": f"/validate-{plural}",
            "port": 443,
        }
        assert client["caBundle"] == secret["data"]["ca.crt"]
        assert hook["failurePolicy"] == "Fail"
        assert hook["sideEffects"] == "None"
        assert hook["admissionReviewVersions"] == ["v1"]
        assert hook["timeoutSeconds"] == 10

    ca = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["ca.crt"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"{service['metadata']['name']}.{NAMESPACE}.svc" in names.get_values_for_type(
        x509.DNSName
    )

    ignore = documents(render(cluster, OPERATOR_CHART, "--set", "webhook.failurePolicy=Ignore"))
    hooks = one(ignore, "ValidatingWebhookConfiguration")["webhooks"]
    assert {hook["failurePolicy"] for hook in hooks} == {"Ignore"}


def test_upgrade_keeps_the_existing_certificate(cluster: Cluster, crds_installed: None) -> None:
    first = tls_secret(documents(render(cluster, OPERATOR_CHART)))
    name = first["metadata"]["name"]
    cluster.kubectl("delete", "secret", name, "-n", NAMESPACE, "--ignore-not-found")
    try:
        kubectl_apply(cluster, yaml.safe_dump(first))
        # --dry-run=server lets `lookup` see the cluster, as `helm upgrade` does.
        again = documents(render(cluster, OPERATOR_CHART, "--dry-run=server"))
        assert tls_secret(again)["data"] == first["data"]
        hooks = one(again, "ValidatingWebhookConfiguration")["webhooks"]
        assert {hook["clientConfig"]["caBundle"] for hook in hooks} == {first["data"]["ca.crt"]}
    finally:
        cluster.kubectl("delete", "secret", name, "-n", NAMESPACE, "--ignore-not-found")
    fresh = tls_secret(documents(render(cluster, OPERATOR_CHART)))
    assert fresh["data"]["ca.crt"] != first["data"]["ca.crt"], "no secret: a new CA each time"


def sandbox_key(docs: list[Doc]) -> Doc:
    (found,) = [d for d in docs if d["kind"] == "Secret" and "key" in (d.get("data") or {})]
    return found


def operator_env(docs: list[Doc]) -> dict[str, Any]:
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e for e in container["env"]}


def test_the_sandbox_master_key_is_made_once_and_kept(
    cluster: Cluster, crds_installed: None
) -> None:
    docs = documents(render(cluster, OPERATOR_CHART))
    first = sandbox_key(docs)
    assert len(base64.b64decode(first["data"]["key"])) >= 32
    assert first["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    ref = operator_env(docs)["HIVE_OPERATOR__SANDBOX_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": first["metadata"]["name"], "key": "key"}
    name = first["metadata"]["name"]
    cluster.kubectl("delete", "secret", name, "-n", NAMESPACE, "--ignore-not-found")
    try:
        kubectl_apply(cluster, yaml.safe_dump(first))
        again = documents(render(cluster, OPERATOR_CHART, "--dry-run=server"))
        assert sandbox_key(again)["data"] == first["data"], "an upgrade keeps the key"
    finally:
        cluster.kubectl("delete", "secret", name, "-n", NAMESPACE, "--ignore-not-found")
    own = documents(render(cluster, OPERATOR_CHART, "--set", "operator.sandboxKeySecret=mine"))
    assert not [d for d in own if d["kind"] == "Secret" and "key" in d["data"]]
    ref = operator_env(own)["HIVE_OPERATOR__SANDBOX_KEY"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "mine", "key": "key"}


def test_cert_manager_variant(cluster: Cluster) -> None:
    docs = documents(render(cluster, OPERATOR_CHART, "--set", "certManager.enabled=true"))
    assert not [d for d in docs if d["kind"] == "Secret" and "tls.crt" in d["data"]], (
        "cert-manager writes the TLS secret"
    )
    certificate = one(docs, "Certificate")
    issuer = one(docs, "Issuer")
    assert certificate["spec"]["issuerRef"]["name"] == issuer["metadata"]["name"]
    assert issuer["spec"] == {"selfSigned": {}}
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    assert tls["secret"]["secretName"] == certificate["spec"]["secretName"]
    service = next(d for d in docs if d["kind"] == "Service" and "webhook" in d["metadata"]["name"])
    assert f"{service['metadata']['name']}.{NAMESPACE}.svc" in certificate["spec"]["dnsNames"]
    config = one(docs, "ValidatingWebhookConfiguration")
    assert config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == (
        f"{NAMESPACE}/{certificate['metadata']['name']}"
    )
    assert all("caBundle" not in hook["clientConfig"] for hook in config["webhooks"])

    external = documents(
        render(
            cluster,
            OPERATOR_CHART,
            "--set",
            "certManager.enabled=true",
            "--set",
            "certManager.issuerRef.name=corp-ca",
            "--set",
            "certManager.issuerRef.kind=ClusterIssuer",
        )
    )
    assert not [d for d in external if d["kind"] == "Issuer"]
    assert one(external, "Certificate")["spec"]["issuerRef"] == {
        "name": "corp-ca",
        "kind": "ClusterIssuer",
        "group": "cert-manager.io",
    }


VAULT_ON = [
    "--set",
    "vault.enabled=true",
    "--set",
    "vault.address=https://vault.vault.svc:8200",
    "--set",
    "vault.role=hive-operator",
]


def operator_container(docs: list[Doc]) -> tuple[Doc, Doc]:
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_vault_off_gives_the_operator_no_vault_settings(cluster: Cluster) -> None:
    for args in ([], ["--set", "vault.address=https://vault:8200", "--set", "vault.role=r"]):
        pod, container = operator_container(documents(render(cluster, OPERATOR_CHART, *args)))
        assert not [e for e in container["env"] if e["name"].startswith("HIVE_VAULT__")]
        assert "vault-ca" not in {v["name"] for v in pod["volumes"]}
        assert "vault-ca" not in {m["name"] for m in container["volumeMounts"]}


@pytest.mark.parametrize("source", ["caSecret", "caConfigMap"])
def test_vault_on_gives_the_operator_its_settings_and_the_ca(
    cluster: Cluster, crds_installed: None, source: str
) -> None:
    args = [
        *VAULT_ON,
        "--set",
        f"vault.{source}.name=vault-ca",
        "--set",
        f"vault.{source}.key=ca.pem",
    ]
    args += ["--set", "vault.tokenTTLSeconds=1200000", "--set", "vault.transitMount=hive/transit"]
    manifest = render(cluster, OPERATOR_CHART, *args)
    pod, container = operator_container(documents(manifest))
    env = {e["name"]: e["value"] for e in container["env"] if e["name"].startswith("HIVE_VAULT__")}
    assert env == {
        "HIVE_VAULT__ADDRESS": "https://vault.vault.svc:8200",
        "HIVE_VAULT__ROLE": "hive-operator",
        "HIVE_VAULT__AUTH_MOUNT": "kubernetes",
        "HIVE_VAULT__KV_MOUNT": "secret",
        "HIVE_VAULT__TRANSIT_MOUNT": "hive/transit",
        "HIVE_VAULT__TOKEN_TTL_S": "1200000",
        "HIVE_VAULT__TOKEN_MAX_TTL_S": "3600",
        "HIVE_VAULT__REQUEST_TIMEOUT_S": "5",
        "HIVE_VAULT__CA_FILE": "/vault-ca/ca.crt",
    }
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    assert mounts["vault-ca"] == {"name": "vault-ca", "mountPath": "/vault-ca", "readOnly": True}
    (volume,) = [v for v in pod["volumes"] if v["name"] == "vault-ca"]
    kind, ref = ("secret", "secretName") if source == "caSecret" else ("configMap", "name")
    assert volume[kind][ref] == "vault-ca"
    assert volume[kind]["items"] == [{"key": "ca.pem", "path": "ca.crt"}]

    # What the operator makes of that environment: a Kubernetes login as its role, no token.
    vault = VaultSettings.model_validate(
        {name.removeprefix("HIVE_VAULT__").lower(): value for name, value in env.items()}
    )
    assert vault.role == "hive-operator"
    assert vault.token_file is None
    assert vault.ca_file == Path("/vault-ca/ca.crt")

    deployment = yaml.safe_dump(one(documents(manifest), "Deployment"))
    assert "deployment.apps" in kubectl_apply(cluster, deployment, "--dry-run=server")


def test_vault_without_a_ca_uses_the_images_cas_and_one_ca_source_only(cluster: Cluster) -> None:
    pod, container = operator_container(documents(render(cluster, OPERATOR_CHART, *VAULT_ON)))
    names = {e["name"] for e in container["env"]}
    assert "HIVE_VAULT__ADDRESS" in names
    assert "HIVE_VAULT__CA_FILE" not in names
    assert "vault-ca" not in {v["name"] for v in pod["volumes"]}
    both = ["--set", "vault.caSecret.name=a", "--set", "vault.caConfigMap.name=b"]
    result = helm(cluster, "template", RELEASE, str(OPERATOR_CHART), *VAULT_ON, *both, check=False)
    assert result.returncode != 0
    assert "set caSecret.name or caConfigMap.name, not both" in result.stderr


def test_two_replicas_one_leader(cluster: Cluster) -> None:
    """Two replicas by default, on different nodes where they can be, kept through drains by a
    PodDisruptionBudget; leader election on, the metrics Service selecting only the leader's
    pod, the webhook Service every replica."""
    docs = documents(render(cluster, OPERATOR_CHART))
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    selector = deployment["spec"]["selector"]["matchLabels"]
    pod = deployment["spec"]["template"]["spec"]
    (term,) = pod["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["podAffinityTerm"]["topologyKey"] == "kubernetes.io/hostname"
    assert term["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector
    env = operator_env(docs)
    assert env["HIVE_OPERATOR__LEADER_ELECTION__ENABLED"]["value"] == "true"
    assert (
        env["HIVE_OPERATOR__LEADER_ELECTION__LEASE_NAME"]["value"] == deployment["metadata"]["name"]
    )
    for name, field in [("LEASE_NAMESPACE", "metadata.namespace"), ("POD_NAME", "metadata.name")]:
        ref = env[f"HIVE_OPERATOR__LEADER_ELECTION__{name}"]["valueFrom"]["fieldRef"]
        assert ref["fieldPath"] == field
    (container,) = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"

    budget = one(docs, "PodDisruptionBudget")
    assert budget["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    services = {d["spec"]["ports"][0]["name"]: d for d in docs if d["kind"] == "Service"}
    assert services["metrics"]["spec"]["selector"] == {**selector, "hive.dev/leader": "true"}
    assert services["webhook"]["spec"]["selector"] == selector

    single = documents(render(cluster, OPERATOR_CHART, "--set", "replicaCount=1"))
    assert not [d for d in single if d["kind"] == "PodDisruptionBudget"], "it would block drains"
    own = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}
    mine = documents(render(cluster, OPERATOR_CHART, "--set-json", f"affinity={json.dumps(own)}"))
    assert one(mine, "Deployment")["spec"]["template"]["spec"]["affinity"] == own
