"""Who a caller is and whether it may patch a team, asked of the API server with the caller's
own bearer token: a SelfSubjectReview (its user) and a SelfSubjectAccessReview (verb patch on
agentteams/NAME in the namespace).

The API server authenticates the token (an invalid one is refused there) and authorizes the
caller as it would any request of theirs, so the checking process needs no permission of its
own: a TokenReview and a SubjectAccessReview made with the process's identity would need a
ClusterRoleBinding (both are cluster-scoped) for every team that debugs.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.config.kubeconfig import KubeConfig
from lightkube.config.models import Cluster, User
from lightkube.models.authorization_v1 import ResourceAttributes, SelfSubjectAccessReviewSpec
from lightkube.resources.authentication_v1 import SelfSubjectReview
from lightkube.resources.authorization_v1 import SelfSubjectAccessReview

from hive.api import GROUP
from hive.kube.errors import api_errors


@dataclass(frozen=True)
class Access:
    """What the API server said of a caller."""

    authenticated: bool
    allowed: bool
    user: str = ""
    reason: str = ""


def as_caller(config: KubeConfig, token: str, timeout_s: float) -> AsyncClient:
    """A client of the API server `config` names (its address and CA) with `token` instead of
    this process's credentials."""
    own = config.get()
    assert own is not None
    cluster = own.cluster
    caller = KubeConfig.from_one(
        cluster=Cluster(
            server=cluster.server,
            certificate_auth=cluster.certificate_auth,
            certificate_auth_data=cluster.certificate_auth_data,
            insecure=cluster.insecure,
        ),
        user=User(token=token),
    )
    return AsyncClient(caller, timeout=httpx2.Timeout(timeout_s))


async def may_patch_team(
    config: KubeConfig, token: str, namespace: str, team: str, *, timeout_s: float = 10.0
) -> Access:
    """Whether the holder of `token` may patch AgentTeam `namespace/team`."""
    client = as_caller(config, token, timeout_s)
    try:
        with api_errors(f"the caller's reviews for AgentTeam {namespace}/{team}"):
            try:
                who = await client.create(SelfSubjectReview())
            except ApiError as exc:
                if exc.status.code == 401:
                    return Access(False, False, reason="the API server does not accept the token")
                raise
            user = who.status.userInfo.username if who.status and who.status.userInfo else ""
            review = await client.create(
                SelfSubjectAccessReview(
                    spec=SelfSubjectAccessReviewSpec(
                        resourceAttributes=ResourceAttributes(
                            group=GROUP,
                            resource="agentteams",
                            verb="patch",
                            name=team,
                            namespace=namespace,
                        )
                    )
                )
            )
        status = review.status
        allowed = bool(status and status.allowed)
        reason = (status.reason or "") if status else ""
        if not allowed:
            reason = reason or f"{user or 'the caller'} may not patch agentteams/{team}"
        return Access(True, allowed, user=user or "", reason=reason)
    finally:
        await client.close()
