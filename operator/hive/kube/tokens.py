"""ServiceAccount tokens from the API server (TokenRequest), for Vault's Kubernetes auth.

``token_reviewer`` makes the ServiceAccount that Vault uses to review agents' tokens (bound to
the built-in ``system:auth-delegator`` ClusterRole, which allows TokenReview) and returns a token
for it; ``service_account_token`` returns a bound token of any ServiceAccount, as a pod's
projected volume holds one.
"""

from __future__ import annotations

from lightkube import ApiError, Client
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.models.rbac_v1 import RoleRef, Subject
from lightkube.resources.core_v1 import Namespace, ServiceAccount, ServiceAccountToken
from lightkube.resources.rbac_authorization_v1 import ClusterRoleBinding

from hive.kube.errors import api_errors

REVIEWER = "hive-vault-reviewer"


def _create_ignoring_conflict(client: Client, obj: object, what: str) -> None:
    with api_errors(what):
        try:
            client.create(obj)  # type: ignore[call-overload]
        except ApiError as exc:
            if exc.status.code != 409:
                raise


def service_account_token(
    client: Client, namespace: str, name: str, *, expiration_s: int = 3600
) -> str:
    """A bound token of ServiceAccount `namespace/name` (TokenRequest)."""
    request = ServiceAccountToken(
        metadata=ObjectMeta(), spec=TokenRequestSpec(audiences=[], expirationSeconds=expiration_s)
    )
    with api_errors(f"ServiceAccount {namespace}/{name}"):
        answer = client.create(request, name=name, namespace=namespace)
    assert answer.status is not None
    return str(answer.status.token)


def token_reviewer(client: Client, namespace: str, *, expiration_s: int = 30 * 24 * 3600) -> str:
    """Ensure the reviewer ServiceAccount and its auth-delegator binding; return its token."""
    _create_ignoring_conflict(
        client, Namespace(metadata=ObjectMeta(name=namespace)), f"Namespace {namespace}"
    )
    _create_ignoring_conflict(
        client,
        ServiceAccount(metadata=ObjectMeta(name=REVIEWER, namespace=namespace)),
        f"ServiceAccount {namespace}/{REVIEWER}",
    )
    _create_ignoring_conflict(
        client,
        ClusterRoleBinding(
            metadata=ObjectMeta(name=f"{REVIEWER}-{namespace}"),
            roleRef=RoleRef(
                apiGroup="rbac.authorization.k8s.io",
                kind="ClusterRole",
                name="system:auth-delegator",
            ),
            subjects=[Subject(kind="ServiceAccount", name=REVIEWER, namespace=namespace)],
        ),
        f"ClusterRoleBinding {REVIEWER}-{namespace}",
    )
    return service_account_token(client, namespace, REVIEWER, expiration_s=expiration_s)
