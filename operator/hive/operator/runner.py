"""Starting the operator: settings, login, metrics endpoint, leader election, then kopf's
main loop (paused while this replica stands by; hive.operator.leadership)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import kopf
from prometheus_client import start_http_server

from hive.kube.client import connection_details
from hive.operator import admission, handlers
from hive.operator.footprint import forget_everything
from hive.operator.leadership import Leadership, elect, election_from, pause_kopf_while_standing_by
from hive.operator.state import STATE
from hive.operator.vault import forget_applied
from hive.runtime.debug.stacks import dump_stacks_on_signal
from hive.settings import Settings

log = logging.getLogger(__name__)


def configure(settings: Settings) -> None:
    STATE.settings = settings
    STATE.forget_children()  # with the settings: how often a Secret is read back

    @kopf.on.startup()
    def _startup(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 300
        # A deleted object waits for its timers to stop. A timer caught in the middle of a
        # reconcile is checked again after this many seconds (kopf's default: 60, which
        # held a ChaosExperiment's deletion for a minute whenever a tick was running).
        settings.background.cancellation_polling = 1
        settings.persistence.finalizer = "hive.dev/operator"
        settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix="hive.dev")
        settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
            prefix="hive.dev", key="last-handled-configuration"
        )
        op = STATE.require_settings().operator
        if op.webhook_port:
            tls = op.webhook_cert_dir
            settings.admission.server = kopf.WebhookServer(
                addr="0.0.0.0",  # noqa: S104 - the API server calls in from outside the pod
                port=op.webhook_port,
                host=op.webhook_host,
                certfile=str(tls / "tls.crt") if tls else None,
                pkeyfile=str(tls / "tls.key") if tls else None,
                cafile=str(tls / "ca.crt") if tls else None,
            )
            if op.webhook_managed:
                settings.admission.managed = "hive.dev"

    @kopf.on.login()
    def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        if STATE.settings is None or STATE.settings.kube.kubeconfig is None:
            return kopf.login_via_client(**kwargs) or kopf.login_with_service_account(**kwargs)
        d = connection_details(STATE.settings.kube)
        return kopf.ConnectionInfo(
            server=str(d["server"]),
            ca_path=d["ca_path"],
            ca_data=d["ca_data"].encode() if d["ca_data"] else None,
            certificate_path=d["certificate_path"],
            certificate_data=d["certificate_data"].encode() if d["certificate_data"] else None,
            private_key_path=d["private_key_path"],
            private_key_data=d["private_key_data"].encode() if d["private_key_data"] else None,
            token=d["token"],
            default_namespace=d["namespace"],
        )


def run(settings: Settings) -> None:
    """Run the operator until interrupted."""
    configure(settings)
    kopf.configure(log_format=kopf.LogFormat.PLAIN)
    registered = (handlers.agent_team_event, admission.validate_agent_team)  # on import
    assert all(registered)
    op = settings.operator
    if op.metrics_port:
        start_http_server(op.metrics_port, addr="0.0.0.0")  # noqa: S104 - scraped by Prometheus
    asyncio.run(operate(settings))


def _start_afresh(leading: bool) -> None:
    """A replica that stands down or takes the lead forgets what it held of each object: the
    objects may have changed or gone meanwhile unseen (a standby's kopf watches nothing), and
    kopf's listing when the watches start again brings back what exists."""
    forget_everything()
    forget_applied()
    log.info("%s: what was held per object is forgotten", "leading" if leading else "standing by")


async def operate(settings: Settings) -> None:
    """kopf's main loop, and the election beside it when there is one."""
    op = settings.operator
    namespaces = [op.namespace] if op.namespace else []
    dump_stacks_on_signal(asyncio.get_running_loop())  # kill -USR1: where each task is, logged
    election = election_from(settings)
    leadership = Leadership(election, STATE.client()) if election is not None else None
    elect(leadership)
    campaign = None
    if leadership is not None:
        leadership.on_change = _start_afresh
        pause_kopf_while_standing_by(leadership)
        # started before kopf, so kopf's shutdown leaves it alone; it gives the Lease up last
        campaign = asyncio.create_task(leadership.run(), name="leader election")
    try:
        await kopf.operator(
            standalone=True,
            clusterwide=not namespaces,
            namespaces=namespaces,
            liveness_endpoint=f"http://0.0.0.0:{op.liveness_port}/healthz"
            if op.liveness_port
            else None,
        )
    finally:
        if campaign is not None:
            campaign.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await campaign
