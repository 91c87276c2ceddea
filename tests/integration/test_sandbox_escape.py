"""Escape attempts against the real gVisor sandbox: each fails, with a clear message, and the
host is unaffected. Each group has a positive control: the allowed thing still works.

Runs agent-style code through `SandboxPool` (``runsc run`` on the read-only root filesystem
built by ``make testbin``).
"""

from __future__ import annotations

import json
import os
import socket
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hive.api.sandboxpolicy import FilesystemMode
from hive.runtime.sandbox import (
    LimitKind,
    Sandbox,
    SandboxLimits,
    SandboxPool,
    executor,
    run_once,
    run_python_tool,
)
from hive.runtime.sandbox.bundle import find_rootfs
from hive.runtime.sandbox.limits import MiB
from hive.runtime.tools import ToolRegistry

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

LIMITS = SandboxLimits(
    memory_bytes=128 * MiB,
    cpu_seconds=1,
    timeout_s=2,
    pids=16,
    output_bytes=64 * 1024,
    pool_size=2,
    max_uses=50,
)
SECRET_ENV = "HIVE_ESCAPE_TEST_SECRET"
SECRET_VALUE = "s3cr3t-" + os.urandom(8).hex()
TOKEN_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
# Python expression, inside a run: the pids of the sandbox user's processes (the zygote and the
# runners it keeps ready are root's).
SANDBOX_USERS = (
    'sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and os.stat(f"/proc/{p}").st_uid '
    "== os.getuid())"
)


def dedent(code: str) -> str:
    return textwrap.dedent(code).strip() + "\n"


@pytest.fixture(scope="module")
def host_secret_env() -> Iterator[str]:
    """A secret in the host process's environment while the sandboxes start."""
    os.environ[SECRET_ENV] = SECRET_VALUE
    try:
        yield SECRET_VALUE
    finally:
        del os.environ[SECRET_ENV]


@pytest.fixture(scope="module")
async def pool(host_secret_env: str) -> AsyncIterator[SandboxPool]:
    async with SandboxPool(LIMITS) as started:
        yield started


async def run_json(pool: SandboxPool, code: str) -> dict[str, Any]:
    result = await pool.execute(dedent(code))
    assert result.exit_code == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(loaded, dict)
    return loaded


# --- network ------------------------------------------------------------------------------------


async def test_network_egress_and_dns_fail_even_with_socket_allowed(host_listener: int) -> None:
    limits = LIMITS.with_(deny_modules=(), pool_size=1)
    code = f"""
        import json, socket
        out = {{}}
        for name, target in [("host", ("127.0.0.1", {host_listener})), ("web", ("1.1.1.1", 53))]:
            try:
                socket.create_connection(target, timeout=2).close()
                out[name] = "connected"
            except OSError as exc:
                out[name] = type(exc).__name__
        try:
            socket.getaddrinfo("example.com", 443)
            out["dns"] = "resolved"
        except OSError as exc:
            out["dns"] = type(exc).__name__
        out["interfaces"] = sorted(n for _, n in socket.if_nameindex())
        # positive control: loopback inside the sandbox works
        server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
        client = socket.create_connection(server.getsockname(), timeout=2)
        peer, _ = server.accept(); client.sendall(b"ping"); out["loopback"] = peer.recv(4).decode()
        print(json.dumps(out))
    """
    # control: the host's listener is reachable from the host
    socket.create_connection(("127.0.0.1", host_listener), timeout=2).close()
    async with SandboxPool(limits) as open_pool:
        out = await run_json(open_pool, code)
    assert out["host"] != "connected"
    assert out["web"] != "connected"
    assert out["dns"] != "resolved"
    assert out["interfaces"] == ["lo"]
    assert out["loopback"] == "ping"


async def test_socket_is_denied_by_the_default_policy(pool: SandboxPool) -> None:
    result = await pool.execute("import socket\n")
    assert result.exit_code == 1
    assert "import of 'socket' is denied by the sandbox policy" in result.stderr


# --- host files and environment -----------------------------------------------------------------


@pytest.fixture
def fake_service_account_token() -> Iterator[str]:
    """A service-account token on the host, where a pod would have one."""
    token = "fake-token-" + os.urandom(8).hex()
    created = [p for p in [*reversed(TOKEN_PATH.parents)] if not p.exists()]
    if TOKEN_PATH.exists():
        pytest.skip(f"{TOKEN_PATH} exists on this host; not touching it")
    try:
        TOKEN_PATH.parent.mkdir(parents=True, exist_ok=True)
    except PermissionError:
        pytest.skip(f"cannot create {TOKEN_PATH.parent} (needs root)")
    TOKEN_PATH.write_text(token)
    try:
        yield token
    finally:
        TOKEN_PATH.unlink()
        for folder in reversed(created):
            if folder.exists() and folder.is_dir():
                folder.rmdir()


async def test_host_files_are_not_visible(
    pool: SandboxPool, fake_service_account_token: str, tmp_path: Path
) -> None:
    marker = tmp_path / "host-marker.txt"
    marker.write_text("host only")
    code = f"""
        import json, os
        out = {{}}
        for path in ["/etc/shadow", "{TOKEN_PATH}", "{marker}", "/root/.bash_history",
                     "/proc/1/root/etc/shadow"]:
            try:
                with open(path) as f:
                    out[path] = "read:" + f.read(200)
            except OSError as exc:
                out[path] = type(exc).__name__
        out["root"] = sorted(os.listdir("/"))
        # positive control: the image's own files are readable
        out["debian"] = open("/etc/debian_version").read().strip()
        print(json.dumps(out))
    """
    out = await run_json(pool, code)
    assert out[str(TOKEN_PATH)] == "FileNotFoundError"
    assert out[str(marker)] == "FileNotFoundError"
    assert not str(out["/etc/shadow"]).startswith("read:")
    assert not str(out["/proc/1/root/etc/shadow"]).startswith("read:")
    for value in out.values():
        assert fake_service_account_token not in str(value)
    assert "work" not in out["root"]  # the host's /work holds this repository
    assert str(out["debian"]).startswith("12")


async def test_host_environment_is_not_visible(pool: SandboxPool, host_secret_env: str) -> None:
    code = """
        import json, os
        out = {"env": dict(os.environ)}
        try:
            out["init_env"] = open("/proc/1/environ").read()
        except OSError as exc:
            out["init_env"] = type(exc).__name__
        print(json.dumps(out))
    """
    out = await run_json(pool, code)
    assert SECRET_ENV not in out["env"]
    assert host_secret_env not in json.dumps(out)
    assert set(out["env"]) <= {"PATH", "HOME", "TMPDIR", "LANG", "PWD"}


# --- filesystem ---------------------------------------------------------------------------------


async def test_writes_outside_the_temp_area_fail(pool: SandboxPool) -> None:
    code = """
        import json, os
        out = {}
        for path in ["/etc/evil", "/usr/lib/python3.11/evil.py", "/evil", "/tmp/evil",
                     "/dev/shm/evil", "/var/tmp/evil", "/opt/hive/bootstrap.py"]:
            try:
                with open(path, "w") as f:
                    f.write("x")
                out[path] = "written"
            except OSError as exc:
                out[path] = type(exc).__name__
        # positive control: the run's own folder is writable
        with open("mine.txt", "w") as f:
            f.write("ok")
        out["cwd"] = os.getcwd()
        out["mine"] = open("mine.txt").read()
        print(json.dumps(out))
    """
    out = await run_json(pool, code)
    cwd, mine = out.pop("cwd"), out.pop("mine")
    assert mine == "ok"
    assert str(cwd).startswith("/tmp/run-")
    assert all(v in ("PermissionError", "OSError") for v in out.values()), out
    rootfs = find_rootfs()
    assert not (rootfs / "etc" / "evil").exists()
    assert not (rootfs / "evil").exists()


async def test_readonly_filesystem_has_no_writable_place() -> None:
    limits = LIMITS.with_(filesystem=FilesystemMode.READONLY)
    code = dedent(
        """
        import json, os
        out = {"cwd": os.getcwd()}
        for path in ["/tmp/x", "x", "/etc/x"]:
            try:
                open(path, "w").close()
                out[path] = "written"
            except OSError as exc:
                out[path] = type(exc).__name__
        out["read"] = open("/etc/debian_version").read()[:2]
        print(json.dumps(out))
        """
    )
    result = await run_once(code, limits)
    out = json.loads(result.stdout)
    assert out.pop("read") == "12"
    assert out.pop("cwd") == "/"
    assert all(v != "written" for v in out.values()), out


async def test_filesystem_none_refuses_file_access_but_imports_work() -> None:
    limits = LIMITS.with_(filesystem=FilesystemMode.NONE)
    code = "import fractions\nprint(fractions.Fraction(1, 3))\nopen('/etc/debian_version')\n"
    result = await run_once(code, limits)
    assert result.stdout == "1/3\n"
    assert result.exit_code == 1
    assert "file access is off (filesystem: none): /etc/debian_version" in result.stderr


# --- limits -------------------------------------------------------------------------------------


async def test_fork_bomb_is_stopped_by_the_pids_limit(pool: SandboxPool) -> None:
    # Forking costs CPU, and gVisor counts it for every runnable process of the run (on a busy
    # host more than the host gave them: 1.4 s in 0.5 s on 2 cores), so with 1 s a bomb could
    # reach the CPU limit before 16 processes existed at once, and was stopped as `cpu`. With
    # CPU to spare, only the pids limit can stop it.
    bomb = "import os\nwhile True:\n    os.fork()\n"
    result = await pool.execute(bomb, LIMITS.with_(cpu_seconds=60, timeout_s=60))
    assert result.limit is LimitKind.PIDS
    assert "process limit of 16" in result.message
    after = await run_json(
        pool,
        """
        import json, os
        print(json.dumps({"procs": SANDBOX_USERS, "me": os.getpid()}))
        """.replace("SANDBOX_USERS", SANDBOX_USERS),
    )
    assert after["procs"] == [after["me"]]  # of the sandbox user's processes, only this run


@pytest.mark.parametrize(
    "code",
    [
        "x = bytearray(1 << 30)\n",
        "chunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n",
    ],
    ids=["one-block", "gradual"],
)
async def test_memory_bomb_is_stopped_by_the_memory_limit(pool: SandboxPool, code: str) -> None:
    result = await pool.execute(code)
    assert result.limit is LimitKind.MEMORY
    assert "memory limit of 128 MiB" in result.message
    assert result.peak_memory_bytes <= LIMITS.memory_bytes


async def test_memory_spread_over_processes_is_stopped_by_the_sandbox_cap(
    pool: SandboxPool,
) -> None:
    # Each process stays under its own limit; together they pass the whole sandbox's cgroup.
    code = """
        import os, time
        for _ in range(8):
            if os.fork() == 0:
                block = bytearray(100 << 20)
                for i in range(0, len(block), 4096):
                    block[i] = 1
                time.sleep(5)
                os._exit(0)
        while True:
            os.wait()
    """
    # (touching 800 MiB takes CPU time: the CPU limit must not stop it first)
    result = await pool.execute(dedent(code), LIMITS.with_(cpu_seconds=60, timeout_s=60))
    assert result.limit is LimitKind.MEMORY
    assert "all processes together" in result.message
    assert (await pool.execute("print('next')\n")).stdout == "next\n"  # a fresh sandbox


async def test_the_sentry_is_what_the_oom_killer_takes_from_a_sandbox() -> None:
    # Only the sentry's death ends a sandbox over its cap cleanly (runsc exits 137: the memory
    # limit). A platform stub killed instead (the host process behind the zygote's or a run's
    # address space) made runsc exit 2 with no answer, or the sandbox hang.
    async with Sandbox(LIMITS) as sandbox:
        sentry = sandbox.sentry_pid
        assert sentry is not None
        assert sandbox._proc is not None
        assert (await sandbox.execute("print('ran')\n")).stdout == "ran\n"
        tree = descendants(sandbox._proc.pid)
        assert sentry in tree
        scores = {pid: oom_score_adj(pid) for pid in tree}
    assert scores[sentry] == 1000
    assert [pid for pid, score in scores.items() if score == 1000] == [sentry]
    assert len(scores) >= 3  # the gofer and the stubs are there, with their own scores


def descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        children = set(executor._children(todo.pop())) - found
        found |= children
        todo += children
    return found


def oom_score_adj(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/oom_score_adj").read_text())
    except OSError:
        return None  # gone meanwhile


async def test_infinite_loop_is_stopped_by_the_cpu_limit(pool: SandboxPool) -> None:
    result = await pool.execute("while True:\n    pass\n")
    assert result.limit is LimitKind.CPU
    assert result.cpu_s >= 0.9
    assert "CPU time limit of 1 s" in result.message


async def test_cpu_is_counted_over_all_processes_of_a_run(pool: SandboxPool) -> None:
    code = "import os\nfor _ in range(3):\n    if os.fork() == 0:\n        break\n"
    code += "while True:\n    pass\n"
    result = await pool.execute(code, LIMITS.with_(timeout_s=30))
    assert result.limit is LimitKind.CPU
    assert result.cpu_s >= 0.9  # together, though each process alone stayed under 1 s
    assert result.wall_s < 30


async def test_sleeping_forever_is_stopped_by_the_timeout(pool: SandboxPool) -> None:
    result = await pool.execute("import time\nwhile True:\n    time.sleep(1)\n")
    assert result.limit is LimitKind.TIMEOUT
    assert 2 <= result.wall_s < 2 + 5
    assert "timeout of 2 s" in result.message


async def test_huge_output_is_cut_at_the_output_limit(pool: SandboxPool) -> None:
    result = await pool.execute("while True:\n    print('x' * 1000)\n")
    assert result.limit is LimitKind.OUTPUT
    assert result.truncated
    assert len(result.stdout) + len(result.stderr) <= LIMITS.output_bytes
    assert len(result.stdout) > LIMITS.output_bytes // 2


async def test_work_within_the_limits_completes(pool: SandboxPool) -> None:
    code = "import os\nx = bytearray(32 << 20)\nif os.fork() == 0:\n    os._exit(0)\nos.wait()\n"
    code += "print(sum(range(10**6)))\n"
    result = await pool.execute(code)
    assert result.ok, result.stderr
    assert result.stdout == "499999500000\n"
    assert result.peak_memory_bytes >= 32 * MiB


# --- modules ------------------------------------------------------------------------------------

DENIED = {
    "import": "import ctypes",
    "import_module": "import importlib\nimportlib.import_module('ctypes')",
    "__import__": "__import__('ctypes')",
    "exec_compiled": "exec(compile('import ctypes', 'innocent.py', 'exec'))",
    "c_backend": "import _ctypes",
    "meta_path_removed": "import sys\nsys.meta_path.clear()\nimport ctypes",
    "sys_modules_cleared": "import sys\nsys.modules.pop('ctypes', None)\nimport ctypes.util",
    "subprocess": "import subprocess",
    "asyncio_subprocess": "import asyncio.subprocess",
    "multiprocessing": "import multiprocessing",
}
REFUSED = {
    "os_system": ("import os\nos.system('id')", "os.system is denied"),
    "os_exec": ("import os\nos.execv('/bin/sh', ['sh'])", "os.exec is denied"),
    "posix_spawn": ("import os\nos.posix_spawn('/bin/sh', ['sh'], {})", "os.posix_spawn is denied"),
    "pty_spawn": ("import pty\npty.spawn('/bin/sh')", "pty.spawn is denied"),
}
# Around the Python guards entirely: a built-in C module recreated by hand. The seccomp filter
# installed when subprocess is denied still makes execve fail (EPERM).
RAW_EXEC = dedent(
    """
    import importlib._bootstrap as b, os, sys
    sys.meta_path.clear()
    spec = b.ModuleSpec("_posixsubprocess", b.BuiltinImporter, origin="built-in")
    m = b.BuiltinImporter.create_module(spec)
    r, w = os.pipe()
    m.fork_exec(["/bin/sh", "-c", "echo escaped"], [b"/bin/sh"], True, (w,), None, None,
                -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)
    os.close(w)
    report = b""
    while chunk := os.read(r, 100):  # until the exec'd (or failed) child closes its end
        report += chunk
    print(report)
    """
)


@pytest.mark.parametrize("code", list(DENIED.values()), ids=list(DENIED))
async def test_denied_modules_cannot_be_imported(pool: SandboxPool, code: str) -> None:
    result = await pool.execute(code + "\nprint('escaped')\n")
    assert "escaped" not in result.stdout
    assert result.exit_code == 1
    assert "is denied by the sandbox policy (modules.deny)" in result.stderr


@pytest.mark.parametrize(("code", "words"), list(REFUSED.values()), ids=list(REFUSED))
async def test_denied_capabilities_are_refused(pool: SandboxPool, code: str, words: str) -> None:
    result = await pool.execute(code + "\nprint('escaped')\n")
    assert "escaped" not in result.stdout
    assert result.exit_code == 1
    assert words in result.stderr


async def test_no_program_can_be_started_even_around_the_guards(pool: SandboxPool) -> None:
    result = await pool.execute(RAW_EXEC)
    assert "escaped" not in result.stdout
    assert "OSError:1:" in result.stdout  # the child's execve failed with EPERM


async def test_allowed_modules_work_and_the_allow_list_is_enforced() -> None:
    limits = LIMITS.with_(allow_modules=("fractions", "math"), pool_size=1)
    async with SandboxPool(limits) as allow_pool:
        ok = await allow_pool.execute("import fractions, math\nprint(fractions.Fraction(1, 2))\n")
        refused = await allow_pool.execute("import decimal\n")
    assert ok.ok, ok.stderr  # fractions imports decimal itself: library imports are allowed
    assert ok.stdout == "1/2\n"
    assert refused.exit_code == 1
    assert "'decimal' is not in the sandbox policy's modules.allow" in refused.stderr


# --- bypass families: denied modules reached around the import statement ------------------------
# With os, subprocess, socket and ctypes denied, each family of known ways around a module
# list tries to reach os / posix (to make a folder), a socket or ctypes. Each attempt must end in
# the policy's refusal, and the folder must not exist afterwards.

STRICT = LIMITS.with_(deny_modules=("os", "subprocess", "socket", "ctypes"))
REFUSAL = ("is denied by the sandbox policy (modules.deny)", "is not allowed in the sandbox")
ATTEMPTS_PRELUDE = """
import json, sys
out = {"tried": {}}
def attempt(name, fn):
    try:
        fn()
        out["tried"][name] = "escaped"
    except BaseException as exc:
        out["tried"][name] = f"{type(exc).__name__}: {exc}"
"""
ATTEMPTS_EPILOGUE = """
try:
    open("escaped/probe", "w")
    out["effect"] = "folder made"
except OSError:
    out["effect"] = "none"
print(json.dumps(out))
"""
FAMILIES = {
    "preloaded_modules": """
        attempt("sys.modules posix", lambda: sys.modules["posix"].mkdir("escaped"))
        attempt("sys.modules os", lambda: sys.modules["os"].mkdir("escaped"))
        attempt("os.path's os", lambda: sys.modules["posixpath"].os.mkdir("escaped"))
        attempt("import system's posix",
                lambda: sys.modules["_frozen_importlib_external"]._os.mkdir("escaped"))
        attempt("importlib's posix",
                lambda: __import__("importlib")._bootstrap_external._os.mkdir("escaped"))
        attempt("warnings' sys.modules",
                lambda: __import__("warnings").sys.modules["posix"].mkdir("escaped"))
    """,
    "subclasses": """
        def every_class(root=object, seen=None):
            seen = set() if seen is None else seen
            for cls in type.__subclasses__(root):
                if cls not in seen:
                    seen.add(cls)
                    every_class(cls, seen)
            return seen
        classes = every_class()
        out["ctypes classes"] = sorted(c.__name__ for c in classes
                                       if c.__module__ in ("_ctypes", "ctypes"))
        out["socket classes"] = sorted(c.__name__ for c in classes
                                       if c.__module__ in ("_socket", "socket"))
        found = 0
        for cls in classes:
            for value in list(vars(cls).values()):
                functions = getattr(value, "__globals__", None)
                if isinstance(functions, dict) and callable(functions.get("mkdir")):
                    found += 1
                    name = f"{cls.__module__}.{cls.__name__}"
                    attempt(name, lambda: functions["mkdir"]("escaped"))
                    break
            if found >= 5:
                break
        out["reached"] = found
    """,
    "frames": """
        def bottom(frame):
            while frame.f_back is not None:
                frame = frame.f_back
            return frame
        try:
            raise RuntimeError("look")
        except RuntimeError as exc:
            runner = bottom(exc.__traceback__.tb_frame).f_globals
        out["native handle"] = repr(runner.get("_libc"))
        attempt("traceback's globals", lambda: runner["os"].mkdir("escaped"))
        attempt("_getframe's globals",
                lambda: bottom(sys._getframe()).f_globals["os"].mkdir("escaped"))
        def gen():
            yield bottom(g.gi_frame).f_globals["os"].mkdir("escaped")  # from a running frame
        g = gen()
        attempt("generator's globals", lambda: next(g))
        attempt("a function's __globals__",
                lambda: runner["install_guards"].__globals__["os"].mkdir("escaped"))
        attempt("trace function", lambda: sys.settrace(lambda *a: None))
        attempt("profile function", lambda: sys.setprofile(lambda *a: None))
    """,
    "gc_walks": """
        import gc
        attempt("gc.get_objects", gc.get_objects)
        attempt("gc.get_referrers", lambda: gc.get_referrers(sys))
        attempt("gc.get_referents", lambda: gc.get_referents(sys.modules))
    """,
    "import_machinery": """
        from importlib.machinery import BuiltinImporter, ExtensionFileLoader, ModuleSpec
        import importlib.util, _imp
        attempt("__import__", lambda: __import__("posix").mkdir("escaped"))
        attempt("builtins.__import__",
                lambda: __builtins__.__import__("posix").mkdir("escaped"))
        attempt("__loader__.load_module",
                lambda: __builtins__.__loader__.load_module("posix").mkdir("escaped"))
        attempt("__spec__.loader.load_module",
                lambda: sys.__spec__.loader.load_module("posix").mkdir("escaped"))
        attempt("create_builtin posix", lambda: BuiltinImporter.create_module(
            ModuleSpec("posix", BuiltinImporter, origin="built-in")).mkdir("escaped"))
        attempt("create_builtin _socket", lambda: _imp.create_builtin(
            ModuleSpec("_socket", BuiltinImporter, origin="built-in")).socket())
        so = "/usr/lib/python3.11/lib-dynload/_ctypes.cpython-311-x86_64-linux-gnu.so"
        attempt("extension loader _ctypes", lambda: ExtensionFileLoader("_ctypes", so)
                .create_module(importlib.util.spec_from_file_location("_ctypes", so)))
        attempt("create_dynamic _ctypes", lambda: _imp.create_dynamic(
            importlib.util.spec_from_file_location("_ctypes", so)))
        attempt("find_spec ctypes", lambda: importlib.util.find_spec("ctypes"))
        attempt("subinterpreter", lambda: __import__("_xxsubinterpreters").create())
    """,
    "native_handles": """
        try:
            raise RuntimeError("look")
        except RuntimeError as exc:
            frame = exc.__traceback__.tb_frame
            while frame.f_back is not None:
                frame = frame.f_back
        runner = frame.f_globals
        out["runner libc"] = repr(runner.get("_libc"))
        out["runner seccomp program"] = repr(runner.get("_no_exec_program"))
        out["ctypes loaded"] = sorted(n for n in sys.modules if "ctypes" in n)
        attempt("import ctypes", lambda: __import__("ctypes"))
    """,
}


@pytest.mark.parametrize("family", list(FAMILIES), ids=list(FAMILIES))
async def test_denied_modules_stay_denied_around_the_import_system(
    pool: SandboxPool, family: str
) -> None:
    code = ATTEMPTS_PRELUDE + dedent(FAMILIES[family]) + ATTEMPTS_EPILOGUE
    result = await pool.execute(dedent(code), STRICT)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out.pop("effect") == "none", out
    assert out["tried"], out
    for name, outcome in out["tried"].items():
        assert any(words in outcome for words in REFUSAL), (name, outcome)
    if family == "subclasses":
        assert out["ctypes classes"] == []  # nothing of the zygote's ctypes in the run
        assert out["socket classes"] == []
        assert out["reached"] >= 1  # the route exists: what it reaches is refused
    if family in ("frames", "native_handles"):
        assert out.get("native handle", out.get("runner libc")) == "None"
    if family == "native_handles":
        assert out["runner seccomp program"] == "None"
        assert out["ctypes loaded"] == []


async def test_the_run_is_a_fresh_interpreter_not_the_zygote(pool: SandboxPool) -> None:
    out = await run_json(
        pool,
        """
        import json, sys
        print(json.dumps({"argv0": sys.orig_argv, "modules": sorted(sys.modules)}))
        """,
    )
    assert "--run" in out["argv0"]
    assert not [m for m in out["modules"] if m in ("ctypes", "_ctypes", "select", "socket")]


async def test_the_thread_limit_is_named(pool: SandboxPool) -> None:
    code = """
        import threading, time
        threads = [threading.Thread(target=time.sleep, args=(1,)) for _ in range(100)]
        for thread in threads:
            thread.start()
    """
    result = await pool.execute(dedent(code))
    assert result.limit is LimitKind.PIDS
    assert "can't start new thread" in result.stderr
    assert "process limit of 16 processes/threads" in result.message


async def test_the_open_files_limit_is_named(pool: SandboxPool) -> None:
    result = await pool.execute("files = [open('/dev/null', 'rb') for _ in range(5000)]\n")
    assert result.limit is LimitKind.FILES
    assert "Too many open files" in result.stderr
    assert "open-files limit of 1024" in result.message


# --- isolation between runs in the same warm sandbox --------------------------------------------


async def test_nothing_of_a_run_survives_into_the_next() -> None:
    async with SandboxPool(LIMITS.with_(pool_size=1)) as one:
        first = await run_json(
            one,
            """
            import builtins, json, os, sys, time
            open("left.txt", "w").write("leftover")
            builtins.LEFTOVER = 1
            sys.LEFTOVER = 1
            import json as module; module.LEFTOVER = 1
            os.environ["LEFTOVER"] = "1"
            if os.fork() == 0:  # a process that would linger
                os.setsid()
                time.sleep(60)
                os._exit(0)
            print(json.dumps({"cwd": os.getcwd()}))
            """,
        )
        second = await run_json(
            one,
            f"""
            import builtins, json, os, sys
            print(json.dumps({{
                "cwd": os.getcwd(),
                "old_folder": os.path.exists("{first["cwd"]}"),
                "tmp": {{n: os.access("/tmp/" + n, os.W_OK) for n in os.listdir("/tmp")}},
                "here": os.listdir("."),
                "builtins": hasattr(builtins, "LEFTOVER"),
                "sys": hasattr(sys, "LEFTOVER"),
                "module": hasattr(json, "LEFTOVER"),
                "env": "LEFTOVER" in os.environ,
                "procs": {SANDBOX_USERS},
                "me": os.getpid(),
            }}))
            """,
        )
        assert one.started == 1  # the same warm sandbox ran both
    assert second["cwd"] != first["cwd"]
    assert second["old_folder"] is False
    # its own folder, and those made ahead for the next runs: root's until their run starts
    assert {k for k, writable in second["tmp"].items() if writable} == {
        os.path.basename(str(second["cwd"]))
    }
    assert os.path.basename(str(first["cwd"])) not in second["tmp"]
    assert second["here"] == []
    assert not any(second[k] for k in ("builtins", "sys", "module", "env"))
    assert second["procs"] == [second["me"]]


async def test_a_run_cannot_touch_the_runners_made_ready_for_the_next_runs(
    pool: SandboxPool,
) -> None:
    out = await run_json(
        pool,
        """
        import json, os
        mine = os.path.basename(os.getcwd())
        out = {"folders": {}, "processes": {}}
        for name in os.listdir("/tmp"):
            if name != mine:
                try:
                    open(f"/tmp/{name}/planted", "w").close()
                    out["folders"][name] = "written"
                except OSError as exc:
                    out["folders"][name] = type(exc).__name__
        for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
            if pid != os.getpid():
                try:
                    os.kill(pid, 0)
                    out["processes"][pid] = "signalled"
                except OSError as exc:
                    out["processes"][pid] = type(exc).__name__
        print(json.dumps(out))
        """,
    )
    assert out["folders"], "the next runs' folders are made ahead"
    assert set(out["folders"].values()) == {"PermissionError"}
    assert len(out["processes"]) >= 2  # the zygote and at least one runner made ahead
    assert set(out["processes"].values()) == {"PermissionError"}


async def test_pool_recycles_after_max_uses_and_after_a_limit_hit() -> None:
    async with SandboxPool(LIMITS.with_(pool_size=1, max_uses=2)) as small:
        for _ in range(3):
            assert (await small.execute("print(1)\n")).ok
        assert small.recycled == 1
        result = await small.execute("x = bytearray(1 << 30)\n")
        assert result.limit is LimitKind.MEMORY
        assert small.recycled == 2
        assert (await small.execute("print(2)\n")).stdout == "2\n"
        assert small.started == 3


async def test_run_python_tool_runs_in_the_sandbox(pool: SandboxPool) -> None:
    registry = ToolRegistry.of([run_python_tool(pool)])
    tool = registry.check("run_python", {"code": "import platform\nprint(platform.release())"})
    out = await tool.function(code="import platform\nprint(platform.release())")
    assert out["ok"] is True
    assert out["stdout"].strip() != os.uname().release  # gVisor's kernel, not the host's
    assert json.loads(json.dumps(out)) == out


async def test_pool_close_leaves_no_sandbox_running() -> None:
    pool = SandboxPool(LIMITS.with_(pool_size=2))
    await pool.start()
    ids = [s.container_id for s in pool._live]
    assert len(ids) == 2
    await pool.close()
    assert running_with(ids) == []


def running_with(ids: list[str]) -> list[str]:
    """Which of `ids` appear in a running process's command line."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        found += [i for i in ids if i in cmdline]
    return found
