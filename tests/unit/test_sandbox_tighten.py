"""A sandbox pod's limits come from its SandboxPolicy; a request may only tighten them."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hive.runtime.sandbox.bootstrap import FILESYSTEMS, NUMERIC_LIMITS, tighten
from hive.runtime.sandbox.limits import SandboxLimits

POLICY = SandboxLimits(timeout_s=10, cpu_seconds=5, pids=32, allow_modules=("json", "math")).wire()


def test_a_looser_request_is_clamped_to_the_policy() -> None:
    loose = SandboxLimits(
        timeout_s=3600, cpu_seconds=600, pids=4096, memory_bytes=8 << 30, deny_modules=()
    ).wire()
    got = tighten(POLICY, {**loose, "filesystem": "temp", "allow": ["os", "json"]})
    for key in NUMERIC_LIMITS:
        assert got[key] == POLICY[key], key
    assert got["deny"] == POLICY["deny"]
    assert got["allow"] == ["json"]  # os is outside the policy's allow list


def test_a_stricter_request_is_kept() -> None:
    strict = {"timeout_s": 1.5, "pids": 4, "filesystem": "none", "deny": ["ctypes", "pickle"]}
    got = tighten(POLICY, strict)
    assert got["timeout_s"] == 1.5
    assert got["pids"] == 4
    assert isinstance(got["pids"], int)
    assert got["filesystem"] == "none"
    assert got["deny"][-1] == "pickle"
    assert set(POLICY["deny"]) <= set(got["deny"])
    assert got["cpu_seconds"] == POLICY["cpu_seconds"]  # not asked: the policy's


def test_no_limits_in_a_request_gives_the_policy() -> None:
    assert tighten(POLICY, {}) == {**POLICY, "allow": POLICY["allow"], "deny": POLICY["deny"]}


def test_an_allow_list_outside_the_policy_falls_back_to_the_policy() -> None:
    assert tighten(POLICY, {"allow": ["socket"]})["allow"] == ["json", "math"]
    open_policy = {**POLICY, "allow": []}
    assert tighten(open_policy, {"allow": ["json.decoder"]})["allow"] == ["json.decoder"]


numbers = st.fixed_dictionaries(
    {},
    optional={
        k: st.floats(0.001, 1e9, allow_nan=False) | st.integers(1, 10**9) for k in NUMERIC_LIMITS
    },
)


@given(
    asked=numbers,
    filesystem=st.none() | st.sampled_from(FILESYSTEMS),
    deny=st.lists(st.sampled_from(["ctypes", "pickle", "os", "socket"]), max_size=4),
    allow=st.lists(st.sampled_from(["json", "math", "os", "json.decoder"]), max_size=4),
    held_fs=st.sampled_from(FILESYSTEMS),
)
def test_a_run_never_gets_more_than_the_policy(
    asked: dict[str, float],
    filesystem: str | None,
    deny: list[str],
    allow: list[str],
    held_fs: str,
) -> None:
    policy = {**POLICY, "filesystem": held_fs}
    request: dict[str, object] = {**asked, "deny": deny, "allow": allow}
    if filesystem is not None:
        request["filesystem"] = filesystem
    got = tighten(policy, request)
    for key in NUMERIC_LIMITS:
        assert got[key] <= policy[key]
        if key in asked:
            assert got[key] <= asked[key]
    assert FILESYSTEMS.index(got["filesystem"]) <= FILESYSTEMS.index(held_fs)
    assert set(policy["deny"]) <= set(got["deny"])
    assert set(deny) <= set(got["deny"])
    assert got["allow"]
    assert all(any(a == p or a.startswith(p + ".") for p in policy["allow"]) for a in got["allow"])
