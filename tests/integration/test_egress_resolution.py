"""Egress names resolved against a real DNS server on 127.0.0.1, and the NetworkPolicy that
follows their answers on the test control plane.

The server is a small UDP responder written with dnspython's message API: it answers A and AAAA
from a table the test changes, with the TTL the test chose, says NXDOMAIN for names it does not
know, and stays silent for names it is told to ignore.
"""

from __future__ import annotations

import asyncio
import collections
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest

from hive.kube.resources import apply_crds
from hive.operator.egress import EgressResolver
from hive.operator.others import reconcile_policy
from hive.operator.queue import Coalescer
from hive.operator.state import STATE
from hive.settings import EgressSettings, KubeSettings, OperatorSettings, Settings
from tests.support import Cluster

pytestmark = pytest.mark.integration
T = TypeVar("T")


class TinyDns:
    """A UDP DNS responder on 127.0.0.1 answering from `records` (name -> (addresses, ttl))."""

    def __init__(self) -> None:
        self.records: dict[str, tuple[list[str], int]] = {}
        self.silent: set[str] = set()
        self.queries: collections.Counter[tuple[str, str]] = collections.Counter()
        self._lock = threading.Lock()
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self._socket.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def address(self) -> str:
        host, port = self._socket.getsockname()
        return f"{host}:{port}"

    def set(self, name: str, addresses: list[str], ttl: int) -> None:
        with self._lock:
            self.records[name.rstrip(".") + "."] = (addresses, ttl)

    def asked(self, name: str, rdtype: str = "A") -> int:
        with self._lock:
            return self.queries[(name.rstrip(".") + ".", rdtype)]

    def _answer(self, wire: bytes) -> bytes | None:
        query = dns.message.from_wire(wire)
        question = query.question[0]
        name = question.name.to_text().lower()
        with self._lock:
            self.queries[(name, dns.rdatatype.to_text(question.rdtype))] += 1
            if name in self.silent:
                return None
            found = self.records.get(name)
        response = dns.message.make_response(query)
        if found is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            return response.to_wire()
        addresses, ttl = found
        v6 = question.rdtype == dns.rdatatype.AAAA
        wanted = [a for a in addresses if (":" in a) == v6]
        if wanted and question.rdtype in (dns.rdatatype.A, dns.rdatatype.AAAA):
            rrset = dns.rrset.from_text_list(
                question.name, ttl, dns.rdataclass.IN, question.rdtype, wanted
            )
            response.answer.append(rrset)
        return response.to_wire()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                wire, peer = self._socket.recvfrom(4096)
            except TimeoutError:
                continue
            reply = self._answer(wire)
            if reply is not None:
                self._socket.sendto(reply, peer)

    def __enter__(self) -> TinyDns:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stopping.set()
        self._thread.join(5)
        self._socket.close()


@pytest.fixture
def tiny_dns() -> Iterator[TinyDns]:
    with TinyDns() as server:
        yield server


def egress_settings(server: TinyDns, **overrides: Any) -> EgressSettings:
    values: dict[str, Any] = {
        "nameservers": [server.address],
        "timeout_s": 1.0,
        "min_ttl_s": 1,
        "max_ttl_s": 30,
    }
    return EgressSettings(**{**values, **overrides})


async def eventually(
    probe: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float, what: str
) -> T:
    """Run `probe` until `done` holds for its value; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await probe()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}: {value}")
        await asyncio.sleep(0.1)


async def test_a_name_resolves_to_its_a_and_aaaa_records_and_is_held_for_its_ttl(
    tiny_dns: TinyDns,
) -> None:
    tiny_dns.set("api.egress.test", ["192.0.2.10", "2001:db8::10"], 20)
    resolver = EgressResolver(egress_settings(tiny_dns))
    (answer,) = (await resolver.answers(["api.egress.test"])).values()
    assert answer.addresses == ("192.0.2.10", "2001:db8::10")
    assert answer.ttl_s == 20
    assert answer.error is None
    assert (tiny_dns.asked("api.egress.test", "A"), tiny_dns.asked("api.egress.test", "AAAA")) == (
        1,
        1,
    )

    tiny_dns.set("api.egress.test", ["192.0.2.11"], 20)
    again = (await resolver.answers(["api.egress.test"]))["api.egress.test"]
    assert again == answer, "an answer is held until its TTL runs out"
    assert tiny_dns.asked("api.egress.test", "A") == 1


async def test_the_answer_is_refreshed_when_its_ttl_runs_out(tiny_dns: TinyDns) -> None:
    tiny_dns.set("rotating.egress.test", ["192.0.2.20"], 1)
    resolver = EgressResolver(egress_settings(tiny_dns))
    first = (await resolver.answers(["rotating.egress.test"]))["rotating.egress.test"]
    assert first.addresses == ("192.0.2.20",)
    tiny_dns.set("rotating.egress.test", ["192.0.2.21"], 1)
    refreshed = await eventually(
        lambda: resolver.answers(["rotating.egress.test"]),
        lambda found: found["rotating.egress.test"].addresses == ("192.0.2.21",),
        10,
        "the new address after the 1 s TTL",
    )
    assert refreshed["rotating.egress.test"].resolved_at >= first.resolved_at
    assert tiny_dns.asked("rotating.egress.test", "A") >= 2


async def test_ttls_are_clamped_to_the_floor_and_ceiling(tiny_dns: TinyDns) -> None:
    tiny_dns.set("long.egress.test", ["192.0.2.30"], 86400)
    tiny_dns.set("zero.egress.test", ["192.0.2.31"], 0)
    resolver = EgressResolver(egress_settings(tiny_dns, min_ttl_s=2, max_ttl_s=30))
    answers = await resolver.answers(["long.egress.test", "zero.egress.test"])
    assert answers["long.egress.test"].ttl_s == 30
    assert answers["zero.egress.test"].ttl_s == 2


async def test_a_name_that_does_not_exist_or_has_no_address_resolves_to_nothing(
    tiny_dns: TinyDns,
) -> None:
    tiny_dns.set("empty.egress.test", [], 60)
    resolver = EgressResolver(egress_settings(tiny_dns, min_ttl_s=1))
    answers = await resolver.answers(["missing.egress.test", "empty.egress.test"])
    missing, empty = answers["missing.egress.test"], answers["empty.egress.test"]
    assert (missing.addresses, missing.error, missing.ttl_s) == (
        (),
        "no such name (NXDOMAIN)",
        1,
    )
    assert (empty.addresses, empty.error) == ((), "no A or AAAA records")

    # A failure is held for the TTL floor only: the name, once it exists, is found.
    tiny_dns.set("missing.egress.test", ["192.0.2.40"], 60)
    found = await eventually(
        lambda: resolver.answers(["missing.egress.test"]),
        lambda got: got["missing.egress.test"].error is None,
        10,
        "the name to resolve once it exists",
    )
    assert found["missing.egress.test"].addresses == ("192.0.2.40",)


async def test_a_nameserver_that_does_not_answer_fails_the_lookup_in_time(
    tiny_dns: TinyDns,
) -> None:
    tiny_dns.silent.add("silent.egress.test.")
    resolver = EgressResolver(egress_settings(tiny_dns, timeout_s=0.5))
    started = time.monotonic()
    answer = (await resolver.answers(["silent.egress.test"]))["silent.egress.test"]
    assert answer.addresses == ()
    assert answer.error == "no answer within 0.5s"
    assert time.monotonic() - started < 5


# --- The whole path: the operator's reconcile, its work queue, the API server -----------------
NS = "default"


@pytest.fixture
def operator_state(cluster: Cluster, tiny_dns: TinyDns) -> Iterator[None]:
    """The operator's state as `hive operator` sets it, asking the tiny DNS server."""
    apply_crds(cluster.client)
    before = (STATE.settings, STATE._client)
    STATE.settings = Settings(
        kube=KubeSettings(kubeconfig=cluster.kubeconfig),
        operator=OperatorSettings(egress=egress_settings(tiny_dns, min_ttl_s=1, max_ttl_s=2)),
    )
    STATE._client = None
    try:
        yield
    finally:
        STATE.settings, STATE._client = before


def policy(name: str, *hosts: str) -> dict[str, Any]:
    return {
        "apiVersion": "hive.dev/v1alpha1",
        "kind": "SandboxPolicy",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "network": {
                "mode": "allowlist",
                "egress": [{"host": host, "ports": [8443]} for host in hosts],
            }
        },
    }


def read(cluster: Cluster, *what: str) -> dict[str, Any]:
    return dict(json.loads(cluster.kubectl("get", *what, "-n", NS, "-o", "json").stdout))


def egress_resolved(cluster: Cluster, name: str) -> str | None:
    """The status of the policy's EgressResolved condition; None before its status is written
    (the reconcile applies the NetworkPolicy first, then writes the status)."""
    conditions = (read(cluster, "sandboxpolicy", name).get("status") or {}).get("conditions")
    found = [c["status"] for c in conditions or [] if c["type"] == "EgressResolved"]
    return found[0] if found else None


def opened(cluster: Cluster, name: str) -> list[str]:
    """The CIDRs the policy's NetworkPolicy opens, in order."""
    found = read(cluster, "networkpolicy", "-l", f"hive.dev/sandbox-policy={name}")["items"]
    if not found:
        return []
    (policy_object,) = found
    return [
        block["ipBlock"]["cidr"]
        for rule in policy_object["spec"]["egress"]
        for block in rule.get("to", [{"ipBlock": {"cidr": "EVERYWHERE"}}])
    ]


async def until(check: Callable[[], T], timeout_s: float, what: str) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        value = await asyncio.to_thread(check)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        await asyncio.sleep(0.2)


async def test_the_network_policy_follows_the_names_answers_as_they_change(
    cluster: Cluster, tiny_dns: TinyDns, operator_state: None
) -> None:
    tiny_dns.set("api.egress.test", ["192.0.2.50"], 1)
    cluster.kubectl(
        "apply",
        "-f",
        "-",
        input=json.dumps(policy("by-name", "api.egress.test", "gone.egress.test")),
    )
    queue = Coalescer(reconcile_policy, "SandboxPolicy")
    try:
        queue.request(NS, "by-name")  # once: the TTL-driven rechecks do the rest
        await until(
            lambda: (
                opened(cluster, "by-name") == ["192.0.2.50/32"]
                and egress_resolved(cluster, "by-name") == "False"
            ),
            30,
            "the NetworkPolicy to open the name's address and nothing for the missing name",
        )
        status = read(cluster, "sandboxpolicy", "by-name")["status"]
        resolved = next(c for c in status["conditions"] if c["type"] == "EgressResolved")
        assert (resolved["status"], resolved["reason"]) == ("False", "NameNotResolved")
        assert "gone.egress.test: no such name (NXDOMAIN)" in resolved["message"]
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
        hosts = {e["host"]: e for e in status["egress"]}
        assert hosts["api.egress.test"]["addresses"] == ["192.0.2.50"]

        # Rotation: the new address opens, the old one stays open as retiring for a TTL ...
        tiny_dns.set("api.egress.test", ["192.0.2.51"], 1)
        await until(
            lambda: opened(cluster, "by-name") == ["192.0.2.50/32", "192.0.2.51/32"],
            30,
            "the new address to open beside the retiring one",
        )
        # ... and then closes; the name that comes into being opens without anyone acting.
        tiny_dns.set("gone.egress.test", ["192.0.2.60"], 1)
        await until(
            lambda: opened(cluster, "by-name") == ["192.0.2.51/32", "192.0.2.60/32"],
            30,
            "the retired address to close and the new name to open",
        )
        await until(
            lambda: egress_resolved(cluster, "by-name") == "True",
            30,
            "EgressResolved=True once every name resolves",
        )
    finally:
        await queue.drain()  # the pending recheck too
        cluster.kubectl("delete", "sandboxpolicy", "by-name", "-n", NS, "--wait=false")
