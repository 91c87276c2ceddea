"""A SandboxPolicy's egress rules from resolved names: what opens, what stays closed, how long."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hive.api.sandboxpolicy import SandboxPolicySpec
from hive.reconcile.meta import Owner
from hive.reconcile.sandboxpolicy import (
    Answer,
    egress_names,
    egress_policy,
    open_addresses,
    plan_policy,
    previous_egress,
    resolve_egress,
)

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
OWNER = Owner("SandboxPolicy", "web", "default", "uid-1", 3)


def spec(*entries: tuple[str, list[int]]) -> dict[str, Any]:
    egress = [{"host": host, "ports": ports} for host, ports in entries]
    return {"network": {"mode": "allowlist", "egress": egress}}


def answer(host: str, *addresses: str, at: dt.datetime = T0, ttl: int = 30) -> Answer:
    return Answer(host, tuple(addresses), at, ttl)


def failed(host: str, why: str = "no such name (NXDOMAIN)", at: dt.datetime = T0) -> Answer:
    return Answer(host, (), at, 5, why)


def rules(children: list[dict[str, Any]]) -> list[dict[str, Any]]:
    (policy,) = children
    return list(policy["spec"]["egress"])


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == type_)


def test_a_name_becomes_one_rule_with_an_ip_block_per_address_and_its_ports() -> None:
    answers = {"api.example.com": answer("api.example.com", "192.0.2.7", "2001:db8::7")}
    plan = plan_policy(OWNER, spec(("api.example.com", [443, 8443])), None, [], T0, answers)
    (rule,) = rules(plan.children)
    assert rule == {
        "to": [{"ipBlock": {"cidr": "192.0.2.7/32"}}, {"ipBlock": {"cidr": "2001:db8::7/128"}}],
        "ports": [{"protocol": "TCP", "port": 443}, {"protocol": "TCP", "port": 8443}],
    }
    status = plan.status.wire()
    assert status["egress"] == [
        {
            "host": "api.example.com",
            "addresses": ["192.0.2.7", "2001:db8::7"],
            "resolvedAt": "2026-01-01T00:00:00Z",
            "ttlSeconds": 30,
            "retiring": [],
        }
    ]
    resolved = condition(status, "EgressResolved")
    assert (resolved["status"], resolved["reason"]) == ("True", "Resolved")
    assert plan.recheck_after_s == 30


def test_addresses_and_cidrs_stay_ip_blocks_and_are_not_looked_up() -> None:
    policy = SandboxPolicySpec.model_validate(
        spec(("10.1.2.3", [80]), ("10.8.0.0/16", [5432]), ("1password.com", [443]))
    )
    assert egress_names(policy) == ["1password.com"]  # a name may start with a digit
    built = egress_policy(OWNER, policy, {}, T0)
    assert built is not None
    assert built["spec"]["egress"] == [
        {"to": [{"ipBlock": {"cidr": "10.1.2.3/32"}}], "ports": [{"protocol": "TCP", "port": 80}]},
        {
            "to": [{"ipBlock": {"cidr": "10.8.0.0/16"}}],
            "ports": [{"protocol": "TCP", "port": 5432}],
        },
    ]


def test_a_name_that_does_not_resolve_opens_nothing_and_says_so() -> None:
    answers = {
        "gone.example.com": failed("gone.example.com"),
        "api.example.com": answer("api.example.com", "192.0.2.7"),
    }
    plan = plan_policy(
        OWNER, spec(("gone.example.com", [443]), ("api.example.com", [443])), None, [], T0, answers
    )
    every_rule = rules(plan.children)
    assert every_rule == [
        {
            "to": [{"ipBlock": {"cidr": "192.0.2.7/32"}}],
            "ports": [{"protocol": "TCP", "port": 443}],
        }
    ]
    assert all(rule.get("to") for rule in every_rule), "a rule without 'to' opens every address"
    status = plan.status.wire()
    resolved = condition(status, "EgressResolved")
    assert (resolved["status"], resolved["reason"]) == ("False", "NameNotResolved")
    assert "gone.example.com: no such name (NXDOMAIN)" in resolved["message"]
    ready = condition(status, "Ready")
    assert ready["status"] == "True", "the policy holds (closed for the name); Ready stays"
    gone = next(e for e in status["egress"] if e["host"] == "gone.example.com")
    assert gone["addresses"] == []
    assert gone["error"] == "no such name (NXDOMAIN)"
    assert plan.recheck_after_s == 5  # a failed name is asked again after the TTL floor


def test_a_name_with_no_answer_given_opens_nothing() -> None:
    plan = plan_policy(OWNER, spec(("api.example.com", [443])), None, [], T0)
    assert rules(plan.children) == []
    assert condition(plan.status.wire(), "EgressResolved")["status"] == "False"


def test_a_policy_without_an_allowlist_has_no_egress_status() -> None:
    plan = plan_policy(OWNER, {}, None, [], T0, {})
    assert plan.children == []
    assert plan.status.egress == []
    assert [c.type for c in plan.status.conditions] == ["Ready"]
    assert plan.recheck_after_s is None


def test_an_address_that_drops_out_stays_open_for_one_more_ttl() -> None:
    first = plan_policy(
        OWNER, spec(("api.example.com", [443])), None, [], T0, {"api.example.com": answer(
            "api.example.com", "192.0.2.1", "192.0.2.2")},
    )  # fmt: skip
    later = T0 + dt.timedelta(seconds=30)
    rotated = {"api.example.com": answer("api.example.com", "192.0.2.2", "192.0.2.3", at=later)}
    second = plan_policy(
        OWNER, spec(("api.example.com", [443])), first.status.wire(), [], later, rotated
    )
    (rule,) = rules(second.children)
    assert [b["ipBlock"]["cidr"] for b in rule["to"]] == [
        "192.0.2.1/32",
        "192.0.2.2/32",
        "192.0.2.3/32",
    ]
    (entry,) = second.status.wire()["egress"]
    assert entry["addresses"] == ["192.0.2.2", "192.0.2.3"]
    assert entry["retiring"] == [{"address": "192.0.2.1", "until": "2026-01-01T00:01:00Z"}]
    assert second.recheck_after_s == 30

    # The same answer again (held by the operator) changes nothing, grace included.
    again = plan_policy(
        OWNER,
        spec(("api.example.com", [443])),
        second.status.wire(),
        [],
        later + dt.timedelta(seconds=10),
        rotated,
    )
    assert again.status.wire()["egress"] == second.status.wire()["egress"]

    # One TTL on, the next answer no longer carries the retired address.
    end = T0 + dt.timedelta(seconds=60)
    third = plan_policy(
        OWNER,
        spec(("api.example.com", [443])),
        second.status.wire(),
        [],
        end,
        {"api.example.com": answer("api.example.com", "192.0.2.2", "192.0.2.3", at=end)},
    )
    (rule,) = rules(third.children)
    assert [b["ipBlock"]["cidr"] for b in rule["to"]] == ["192.0.2.2/32", "192.0.2.3/32"]
    assert third.status.wire()["egress"][0]["retiring"] == []


def test_a_failed_lookup_keeps_no_grace() -> None:
    first = plan_policy(
        OWNER, spec(("api.example.com", [443])), None, [], T0,
        {"api.example.com": answer("api.example.com", "192.0.2.1")},
    )  # fmt: skip
    later = T0 + dt.timedelta(seconds=30)
    second = plan_policy(
        OWNER,
        spec(("api.example.com", [443])),
        first.status.wire(),
        [],
        later,
        {"api.example.com": failed("api.example.com", "no answer within 3s", at=later)},
    )
    assert rules(second.children) == []
    assert second.status.wire()["egress"][0]["retiring"] == []


def test_a_status_entry_that_does_not_parse_is_ignored() -> None:
    assert previous_egress({"egress": [{"host": "x"}, "junk"]}) == {}


ADDRESSES = st.lists(st.ip_addresses().map(str), min_size=0, max_size=6, unique=True)  # v4 and v6


@settings(max_examples=200, deadline=None)
@given(
    history=st.lists(
        st.tuples(ADDRESSES, st.integers(1, 300), st.booleans(), st.integers(0, 400)),
        min_size=1,
        max_size=6,
    )
)
def test_what_opens_is_the_answer_plus_unexpired_earlier_addresses(
    history: list[tuple[list[str], int, bool, int]],
) -> None:
    """Across a run of answers (some failed): a name opens exactly its latest answer plus the
    addresses of earlier answers that dropped out less than one TTL (of the answer that dropped
    them) ago, never after a failure; every rule names its addresses (none opens everything)."""
    status: dict[str, Any] | None = None
    now = T0
    dropped_at: dict[str, dt.datetime] = {}  # address -> until
    latest: list[str] = []
    for addresses, ttl, fails, wait in history:
        now = now + dt.timedelta(seconds=wait)
        if fails or not addresses:
            given_answer = Answer("api.example.com", (), now, 5, "no such name (NXDOMAIN)")
            dropped_at, latest = {}, []
        else:
            given_answer = Answer("api.example.com", tuple(addresses), now, ttl)
            until = now + dt.timedelta(seconds=ttl)
            dropped_at = {a: u for a, u in dropped_at.items() if u > now}
            for old in latest:
                dropped_at.setdefault(old, until)
            latest = sorted(set(addresses))
            for a in latest:
                dropped_at.pop(a, None)
        plan = plan_policy(
            OWNER,
            spec(("api.example.com", [443])),
            status,
            [],
            now,
            {"api.example.com": given_answer},
        )
        status = plan.status.wire()
        expected = sorted(set(latest) | {a for a, u in dropped_at.items() if u > now})
        (entry,) = plan.status.egress
        assert open_addresses(entry, now) == expected
        opened = [
            str(ipaddress.ip_network(block["ipBlock"]["cidr"]).network_address)
            for rule in rules(plan.children)
            for block in rule["to"]
        ]
        assert sorted(opened) == sorted(expected)
        assert all(rule["to"] for rule in rules(plan.children))


def test_resolve_egress_of_a_first_answer_has_nothing_retiring() -> None:
    entry = resolve_egress(None, answer("a.example", "192.0.2.1"), T0)
    assert entry.retiring == []
    assert entry.addresses == ["192.0.2.1"]
