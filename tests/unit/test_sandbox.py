"""The pure parts of the code sandbox: limits from a policy, results, framing, bundle, guards.

The same paths run for real under runsc in tests/integration/test_sandbox_escape.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hive.api.sandboxpolicy import FilesystemMode, NetworkMode, SandboxPolicySpec
from hive.errors import ExternalFailure, InvalidInput, NotInstalled
from hive.runtime.sandbox import bootstrap, executor
from hive.runtime.sandbox.bundle import (
    BOOTSTRAP_PATH,
    SANDBOX_OVERHEAD_BYTES,
    find_rootfs,
    find_runsc,
    oci_config,
)
from hive.runtime.sandbox.executor import check_code, check_network
from hive.runtime.sandbox.limits import (
    LimitKind,
    MiB,
    SandboxLimits,
    limits_from_policy,
    memory_bytes,
    parse_quantity,
)
from hive.runtime.sandbox.result import ExecutionResult, parse_result
from hive.runtime.sandbox.tool import run_python_tool
from hive.runtime.tools import ToolRegistry

# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [("256Mi", 256 * MiB), ("1Gi", 1 << 30), ("1G", 10**9), ("500m", 0.5), ("0.5Gi", 1 << 29)],
)
def test_quantities_parse(text: str, value: float) -> None:
    assert parse_quantity(text, "f") == value


@pytest.mark.parametrize("text", ["", "256MB", "-1Mi", "Mi", "1.5.2Gi"])
def test_bad_quantities_name_the_field(text: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_quantity(text, "spec.limits.memory")
    assert info.value.field == "spec.limits.memory"


def test_memory_must_be_whole_bytes_and_enough_for_python() -> None:
    with pytest.raises(InvalidInput, match="whole number"):
        memory_bytes("1500m")
    with pytest.raises(InvalidInput, match="too little for Python") as info:
        memory_bytes("16Mi")
    assert info.value.field == "spec.limits.memory"


def test_default_policy_gives_default_limits() -> None:
    limits = limits_from_policy(SandboxPolicySpec())
    assert limits.memory_bytes == 256 * MiB
    assert limits.cpu_seconds == 10
    assert limits.timeout_s == 30
    assert limits.pids == 64
    assert limits.output_bytes == 1_048_576
    assert limits.filesystem == FilesystemMode.TEMP
    assert limits.network == NetworkMode.NONE
    assert set(limits.deny_modules) == {"ctypes", "subprocess", "socket", "multiprocessing"}
    assert limits.allow_modules == ()
    assert (limits.pool_size, limits.max_uses) == (2, 100)


def test_policy_fields_reach_the_limits() -> None:
    spec = SandboxPolicySpec.model_validate(
        {
            "limits": {
                "memory": "512Mi",
                "cpu": "500m",
                "cpuSeconds": 2.5,
                "timeoutSeconds": 4,
                "pids": 8,
                "outputBytes": 100,
            },
            "filesystem": "readonly",
            "modules": {"allow": ["math", "json"], "deny": ["ctypes"]},
            "pool": {"size": 3, "maxUses": 7},
            "network": {"mode": "allowlist", "egress": [{"host": "pypi.org", "ports": [443]}]},
        }
    )
    limits = limits_from_policy(spec, temp_bytes=8 * MiB)
    assert limits.memory_bytes == 512 * MiB
    assert (limits.cpu_seconds, limits.timeout_s, limits.pids, limits.output_bytes) == (
        2.5,
        4,
        8,
        100,
    )
    assert limits.filesystem == FilesystemMode.READONLY
    assert limits.cpus == 0.5
    assert limits.allow_modules == ("math", "json")
    assert limits.deny_modules == ("ctypes",)
    assert (limits.pool_size, limits.max_uses, limits.temp_bytes) == (3, 7, 8 * MiB)
    assert limits.network == NetworkMode.ALLOWLIST
    assert limits.egress == ("pypi.org:443",)


def test_a_module_both_allowed_and_denied_is_refused() -> None:
    spec = SandboxPolicySpec.model_validate({"modules": {"allow": ["ctypes"], "deny": ["ctypes"]}})
    with pytest.raises(InvalidInput, match="ctypes both allowed and denied") as info:
        limits_from_policy(spec)
    assert info.value.field == "spec.modules"


def test_the_local_executor_refuses_an_egress_allowlist_clearly() -> None:
    check_network(SandboxLimits())
    with pytest.raises(InvalidInput, match="NetworkPolicy") as info:
        check_network(SandboxLimits(network=NetworkMode.ALLOWLIST, egress=("pypi.org:443",)))
    assert info.value.field == "spec.network.mode"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"memory_bytes": 1}, "limits.memory_bytes"),
        ({"pids": 0}, "limits.pids"),
        ({"timeout_s": 0}, "limits.timeout_s"),
        ({"output_bytes": 0}, "limits.output_bytes"),
        ({"pool_size": 65}, "limits.pool_size"),
    ],
)
def test_impossible_limits_are_refused(change: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        SandboxLimits(**change)
    assert info.value.field == field


def test_wire_form_is_what_the_zygote_reads() -> None:
    wire = SandboxLimits(deny_modules=("ctypes",), allow_modules=("math",)).wire()
    assert wire["deny"] == ["ctypes"]
    assert wire["allow"] == ["math"]
    assert wire["filesystem"] == "temp"
    json.dumps(wire)


def test_code_size_is_bounded() -> None:
    check_code("print(1)")
    with pytest.raises(InvalidInput) as info:
        check_code("x" * ((1 << 20) + 1))
    assert info.value.field == "code"


# --- results ------------------------------------------------------------------------------------


def frame(**values: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "op": "result",
        "id": "1-x",
        "exit_code": 0,
        "signal": None,
        "stdout": "hi\n",
        "stderr": "",
        "truncated": False,
        "wall_s": 0.01,
        "cpu_s": 0.01,
        "peak_memory_bytes": 20 * MiB,
        "limit": None,
    }
    base.update(values)
    return base


def test_a_clean_result_parses() -> None:
    result = parse_result(frame(), SandboxLimits())
    assert result.ok
    assert result.stdout == "hi\n"
    assert result.limit is None
    assert result.message == "exited with status 0"
    assert json.loads(json.dumps(result.to_json()))["ok"] is True


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        (LimitKind.MEMORY, "memory limit of 64 MiB"),
        (LimitKind.CPU, "CPU time limit of 2 s"),
        (LimitKind.TIMEOUT, "timeout of 3 s"),
        (LimitKind.PIDS, "process limit of 5"),
        (LimitKind.OUTPUT, "output limit of 10 bytes"),
        (LimitKind.FILES, "open-files limit of 1024 per process"),
    ],
)
def test_a_limit_hit_carries_the_limit_and_a_clear_message(kind: LimitKind, words: str) -> None:
    limits = SandboxLimits(
        memory_bytes=64 * MiB, cpu_seconds=2, timeout_s=3, pids=5, output_bytes=10
    )
    result = parse_result(frame(limit=str(kind), exit_code=None, signal=9), limits)
    assert result.limit is kind
    assert not result.ok
    assert words in result.message
    assert result.to_json()["limit"] == str(kind)


def test_signal_and_status_messages() -> None:
    assert parse_result(frame(exit_code=None, signal=11), SandboxLimits()).message == (
        "killed by SIGSEGV"
    )
    assert parse_result(frame(exit_code=3), SandboxLimits()).message == "exited with status 3"


@pytest.mark.parametrize(
    "bad",
    [
        {"op": "error", "message": "boom"},
        {"op": "ready"},
        frame(limit="disk"),
        frame(exit_code="zero"),
    ],
)
def test_malformed_answers_are_external_failures(bad: dict[str, Any]) -> None:
    with pytest.raises(ExternalFailure):
        parse_result(bad, SandboxLimits())


# --- framing, bundle ----------------------------------------------------------------------------


def test_frames_round_trip() -> None:
    data = bootstrap.encode({"op": "run", "code": "print('é')"})
    (size,) = bootstrap.HEADER.unpack(data[:4])
    assert size == len(data) - 4
    assert bootstrap.decode(data[4:]) == {"op": "run", "code": "print('é')"}
    with pytest.raises(ValueError, match="JSON object"):
        bootstrap.decode(b"[1]")


def test_oci_bundle_runs_the_zygote_on_a_read_only_root_that_is_not_the_host(
    tmp_path: Path,
) -> None:
    config = oci_config(tmp_path, SandboxLimits())
    assert config["root"] == {"path": str(tmp_path), "readonly": True}
    assert config["process"]["args"][-2:] == [BOOTSTRAP_PATH, "temp"]
    assert config["process"]["noNewPrivileges"] is True
    assert not any("SYS_ADMIN" in c for c in config["process"]["capabilities"]["bounding"])
    mounts = {m["destination"]: m for m in config["mounts"]}
    assert "ro" in mounts[BOOTSTRAP_PATH]["options"]
    assert mounts["/tmp"]["type"] == "tmpfs"
    assert f"size={64 * MiB}" in mounts["/tmp"]["options"]
    assert {"type": "network"} in config["linux"]["namespaces"]
    resources = config["linux"]["resources"]
    assert resources["memory"]["limit"] == 256 * MiB + SANDBOX_OVERHEAD_BYTES
    assert resources["cpu"] == {"quota": 100_000, "period": 100_000}
    assert {"type": "pid"} in config["linux"]["namespaces"]
    assert all(m["type"] != "bind" or m["destination"] == BOOTSTRAP_PATH for m in mounts.values())


def test_no_temp_area_unless_the_policy_allows_it(tmp_path: Path) -> None:
    for mode in (FilesystemMode.NONE, FilesystemMode.READONLY):
        mounts = oci_config(tmp_path, SandboxLimits(filesystem=mode))["mounts"]
        tmp = next(m for m in mounts if m["destination"] == "/tmp")
        assert "ro" in tmp["options"]  # runsc would mount a writable one if there were none


def test_missing_rootfs_and_runsc_name_make_testbin(tmp_path: Path) -> None:
    with pytest.raises(NotInstalled, match="make testbin"):
        find_rootfs(tmp_path / "nothing")
    with pytest.raises(NotInstalled, match="make testbin"):
        find_runsc(tmp_path / "no-runsc")


def test_the_sentry_is_found_among_runscs_children_and_made_the_oom_killers_choice() -> None:
    # runsc run's children are the gofer and the sentry (``runsc-sandbox ... boot ...``); here
    # this test process plays runsc run, two of its children the gofer and the sentry.
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    gofer = subprocess.Popen([*sleep, "gofer"])
    sentry = subprocess.Popen([*sleep, "boot", "--attached"])
    try:
        assert executor.sentry_of(os.getpid()) == sentry.pid
        assert executor.prefer_for_oom_kill(sentry.pid)
        assert Path(f"/proc/{sentry.pid}/oom_score_adj").read_text().strip() == "1000"
        assert Path(f"/proc/{gofer.pid}/oom_score_adj").read_text().strip() != "1000"
        assert executor.sentry_of(gofer.pid) is None
        assert not executor.prefer_for_oom_kill(2**22 + 1)  # no such process: refused, quietly
    finally:
        for process in (gofer, sentry):
            process.kill()
            process.wait()


# --- the in-sandbox guards, in a plain interpreter ----------------------------------------------


def probe_with_guards(deny: list[str], body: str) -> str:
    """A probe program: the guards installed with `deny`, then `body`, which records each
    `attempt(name, fn)` as "allowed" or the refusal's message and prints them as JSON."""
    prelude = f"""
    import gc, importlib, json, sys
    sys.path.insert(0, sys.argv[1])
    import bootstrap
    bootstrap.install_guards({deny!r}, [], "temp")
    out = {{}}
    def attempt(name, fn):
        try:
            fn()
            out[name] = "allowed"
        except (ImportError, PermissionError) as exc:
            out[name] = str(exc)
    """
    return textwrap.dedent(prelude) + textwrap.dedent(body)


GUARD_PROBE = probe_with_guards(
    ["ctypes", "subprocess", "socket"],
    """
    attempt("import", lambda: __import__("ctypes"))
    attempt("import_module", lambda: importlib.import_module("_ctypes"))
    attempt("exec", lambda: exec(compile("import socket", "x", "exec")))
    attempt("meta_path_removed", lambda: (sys.meta_path.pop(0), __import__("ctypes")))
    attempt("system", lambda: __import__("os").system("true"))
    attempt("json", lambda: __import__("fractions"))
    print(json.dumps(out))
    """,
)


def run_probe(source: str, tmp_path: Path) -> dict[str, str]:
    """Run a guard probe in a fresh isolated interpreter (in `tmp_path`); its JSON verdicts."""
    probe = tmp_path / "probe.py"
    probe.write_text(source)
    folder = str(Path(bootstrap.__file__).parent)
    done = subprocess.run(
        [sys.executable, "-I", str(probe), folder],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    return dict(json.loads(done.stdout))


def test_guards_refuse_denied_modules_however_imported(tmp_path: Path) -> None:
    out = run_probe(GUARD_PROBE, tmp_path)
    assert out.pop("json") == "allowed"
    assert out.pop("system") == (
        "hive sandbox: os.system is denied by the sandbox policy (modules.deny)"
    )
    for how, message in out.items():
        assert "is denied by the sandbox policy (modules.deny)" in message, how


OS_DENIED_PROBE = probe_with_guards(
    ["os", "ctypes", "subprocess", "socket"],
    """
    import_system = sys.modules["_frozen_importlib_external"]
    attempt("sys.modules", lambda: sys.modules["posix"].getcwd())
    attempt("attribute", lambda: sys.modules["posixpath"].os.getcwd())
    attempt("import system", lambda: import_system._os.mkdir("never"))
    attempt("unlink", lambda: import_system._os.unlink("never"))
    attempt("gc", gc.get_objects)
    attempt("trace", lambda: sys.settrace(None))
    real = __builtins__.isinstance, __builtins__.any
    __builtins__.isinstance = __builtins__.any = lambda *a: False  # what the hook must not use
    attempt("builtins changed", lambda: __import__("ctypes"))
    __builtins__.isinstance, __builtins__.any = real
    attempt("fractions", lambda: __import__("fractions"))
    print(json.dumps(out))
    """,
)


def test_denying_os_covers_posix_and_what_it_can_do(tmp_path: Path) -> None:
    out = run_probe(OS_DENIED_PROBE, tmp_path)
    assert out.pop("fractions") == "allowed"  # fractions needs neither os nor posix
    assert "import of 'posix' is denied" in out.pop("sys.modules")
    assert "import of 'os' is denied" in out.pop("attribute")
    assert out.pop("import system") == (
        "hive sandbox: os.mkdir is denied by the sandbox policy (modules.deny)"
    )
    assert "os.remove is denied" in out.pop("unlink")
    assert "gc.get_objects is not allowed in the sandbox" in out.pop("gc")
    assert "sys.settrace is not allowed in the sandbox" in out.pop("trace")
    assert "import of 'ctypes' is denied" in out.pop("builtins changed")
    assert out == {}
    assert not (tmp_path / "never").exists()


def test_deny_lists_reach_the_c_modules_behind_them() -> None:
    denied = bootstrap.expand_deny(["os", "subprocess", "socket", "ctypes"])
    assert {"posix", "_posixsubprocess", "_socket", "_ctypes"} <= denied
    assert "_xxsubinterpreters" in bootstrap.expand_deny([])  # no interpreter without the hooks


# --- the tool -----------------------------------------------------------------------------------


class StubPool:
    """Stands in for SandboxPool at the unit level; the real one runs in the escape suite."""

    limits = SandboxLimits()

    def __init__(self) -> None:
        self.codes: list[str] = []

    async def execute(self, code: str) -> ExecutionResult:
        self.codes.append(code)
        return parse_result(frame(stdout="2\n"), self.limits)


async def test_run_python_tool_is_a_registry_tool_returning_json() -> None:
    pool = StubPool()
    tool = run_python_tool(pool)  # type: ignore[arg-type]
    registry = ToolRegistry.of([tool])
    assert registry.schemas()[0]["function"]["name"] == "run_python"
    assert "ctypes" in tool.description
    checked = registry.check("run_python", {"code": "print(1 + 1)"})
    result = await checked.function(code="print(1 + 1)")
    assert json.loads(json.dumps(result)) == result
    assert result["stdout"] == "2\n"
    assert pool.codes == ["print(1 + 1)"]
    with pytest.raises(InvalidInput):
        registry.check("run_python", {})


def test_run_folder_removal_does_not_follow_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    run = tmp_path / "run-1"
    (run / "a" / "b").mkdir(parents=True)
    (run / "a" / "b" / "f.txt").write_text("x")
    (run / "link").symlink_to(tmp_path)
    (run / "file-link").symlink_to(outside)
    bootstrap._remove_tree(str(run))
    assert not run.exists()
    assert outside.read_text() == "keep"
