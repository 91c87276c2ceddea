"""The code that runs inside the sandbox: a zygote, and the fresh interpreter of each execution.

This file is standard library only and runs as the sandbox's first process (PID 1 under
``runsc run``) with ``python3 -I -B /opt/hive/bootstrap.py``. The host also imports it for the
frame encoding, so both ends share one definition of the protocol.

Protocol (stdin / stdout of the zygote): frames of a 4-byte big-endian length and a JSON object.
The zygote sends ``{"op": "ready"}`` once, then answers each ``{"op": "run", ...}`` with one
``{"op": "result", ...}``; ``{"op": "exit"}`` ends it.

On TCP (a sandbox pod, ``--listen``) every run must also say who asks: the ready frame carries a
fresh ``nonce``, and a run carries ``caller`` (an agent's name) and ``proof``, the HMAC-SHA256
under that agent's key of the nonce, the run's id, the code's digest and its limits
(:func:`run_proof`). The keys of the agents that may call lie in the ``--callers`` folder, one
file per agent (a Secret the operator derives and mounts, root's and 0400: no run can read
them). A missing, unknown or wrong proof is answered with an ``error`` frame whose ``code`` is
``unauthenticated`` and nothing runs; the key itself never crosses the wire, a proof holds for
one connection's nonce and one request (no replay), and every decision is a JSON line on
stderr (the pod's log).

Per execution the zygote (root inside the sandbox, PID 1, never running user code itself):

1. has *spares* ready before the request came (made while earlier runs ran): each a child
   that started a new session, pointed fds 0/1/2 at /dev/null and two pipes, closed every other
   descriptor (the protocol's included), installed (when ``subprocess`` is denied) a seccomp
   filter that lets no program start but the one next step, and then replaced itself with a
   fresh interpreter, ``python3 -I -S -B -c <stub> --run`` running this file as the zygote
   compiled it once (the *runner*), which holds nothing of the zygote: none of its modules,
   globals, frames or native (ctypes) handles; and
   a private work folder ``/tmp/run-<n>`` (mode 700, root's until the request, then the
   sandbox user's) when the filesystem mode is ``temp``. Spares are root's and never ran user
   code: no run can signal, trace or write to them;
2. hands the request to the runner, which sets RLIMIT_AS (memory), RLIMIT_CPU (CPU seconds),
   RLIMIT_NPROC (pids), RLIMIT_FSIZE and RLIMIT_CORE, drops to uid/gid 65534 with no groups and
   no capabilities, replaces the environment, puts a stub that refuses every use in place of
   each denied module it had loaded (in ``sys.modules`` and in other modules' attributes),
   installs a meta-path finder and an audit hook (which cannot be removed) that refuse denied
   imports, the audit events of denied capabilities (every ``os.*`` event that changes
   something, ``ctypes.*``, ``subprocess.Popen``, ``os.system``, ``os.exec``, ``socket.*``...)
   and the introspection that could reach the hook's own state or leave the interpreter's
   guards (``gc`` object walks, trace and profile functions, sub-interpreters), then runs the
   code as a fresh ``__main__``;
3. reads stdout and stderr up to the output limit, enforces the wall-clock timeout, every 50 ms
   counts the sandbox user's processes against the pids limit and adds up their CPU time
   against the CPU limit, and kills on any limit;
4. afterwards kills every process of the sandbox user (``kill(-1, SIGKILL)`` from a helper that
   became that user: one atomic sweep), reaps them and deletes the work folder, so nothing of a
   run survives it.

The lists are enforced on what a module *does*, not only on its name: a denied module reached
around the import system (another module's attribute, ``object.__subclasses__()``, a frame's
globals, a built-in module created by hand) still cannot do what its audit events announce.

Modules that only the zygote needs are imported where they are used: the runner is a fresh
interpreter per execution, and each import costs it startup time under gVisor.
"""

from __future__ import annotations

import builtins
import errno
import itertools
import marshal
import os
import struct
import sys
import types

TYPE_CHECKING = False  # typing costs ~10 ms to import under gVisor; only the checker needs it
if TYPE_CHECKING:
    from typing import Any

SANDBOX_UID = 65534
HEADER = struct.Struct(">I")
MAX_FRAME = 256 * 1024 * 1024
USER_FILENAME = "<sandbox>"
STATUS_FD = 3
REQUEST_FD = 4
EXEC_FD = 5  # the runner's interpreter, the one program a spare may start under seccomp
CODE_FD = 6  # this file, compiled once by the zygote (a memfd): no runner compiles it again
# Runners started ahead of their requests: a fresh interpreter takes a few round trips of a
# small run to start under gVisor, so a run that follows another at once still finds one ready.
SPARES = 3
RUN_FLAG = "--run"
UNTOUCHED_MARGIN = 4 << 20

# A denied module also denies the C modules behind it, and the audit events of what it can do.
BACKENDS: dict[str, tuple[str, ...]] = {
    "os": ("posix", "nt"),
    "ctypes": ("_ctypes",),
    "subprocess": ("_posixsubprocess",),
    "socket": ("_socket",),
    "multiprocessing": ("_multiprocessing", "_posixshmem"),
    "ssl": ("_ssl",),
    "mmap": (),
    "signal": ("_signal",),
}
EVENTS: dict[str, tuple[str, ...]] = {
    "os": ("os.",),
    "ctypes": ("ctypes.",),
    "subprocess": (
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "pty.spawn",
    ),
    "socket": ("socket.",),
}
# With os denied, what only reads stays with the filesystem mode (the import system lists the
# library's folders with os.listdir).
READ_EVENTS = ("os.listdir", "os.scandir")
# Refused in every run, whatever the lists say: modules that corrupt memory on purpose or start
# an interpreter without this one's audit hooks, and the introspection that would reach the
# hook's own state (gc walks) or run code inside it (trace and profile functions).
ALWAYS_DENIED = (
    "_xxsubinterpreters",
    "_testcapi",
    "_testinternalcapi",
    "_testbuffer",
    "_testmultiphase",
    "_testimportmultiple",
    "_testclinic",
    "_ctypes_test",
    "_xxtestfuzz",
)
INTROSPECTION_EVENTS = (
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "sys.settrace",
    "sys.setprofile",
    "cpython.PyInterpreterState_New",
)


class suppress:
    """`contextlib.suppress`, without contextlib (collections, functools) in every runner."""

    def __init__(self, *kinds: type[BaseException]) -> None:
        self.kinds = kinds

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> bool:
        return kind is not None and issubclass(kind, self.kinds)


# --- framing (shared with the host) -----------------------------------------------------------


def encode(message: dict[str, Any]) -> bytes:
    import json

    body = json.dumps(message, separators=(",", ":")).encode()
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    import json

    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a frame must hold a JSON object")
    return message


def run_proof(key: bytes, nonce: str, run_id: str, code: str, limits: dict[str, Any]) -> str:
    """The caller's proof for one run: HMAC-SHA256 under its key of what the run is."""
    import hashlib
    import hmac
    import json

    digest = hashlib.sha256(code.encode()).hexdigest()
    wire_limits = json.dumps(limits, sort_keys=True, separators=(",", ":"))
    message = "\n".join(("hive-sandbox-run/1", nonce, run_id, digest, wire_limits))
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


def read_key(path: str) -> bytes:
    """A caller key as the operator writes it: hex text."""
    with open(path) as handle:
        return bytes.fromhex(handle.read().strip())


class Refused(Exception):
    """A run request that does not prove who sends it."""


def check_caller(callers: str, nonce: str, request: dict[str, Any], seen: set[str]) -> str:
    """The caller of `request` once its proof holds; `Refused` says why it does not."""
    import hmac

    caller, proof, run_id = request.get("caller"), request.get("proof"), request.get("id")
    if not isinstance(caller, str) or not isinstance(proof, str) or not caller:
        raise Refused("the run names no caller and proof")
    if not isinstance(run_id, str) or run_id in seen:
        raise Refused(f"run id {run_id!r} is missing or was used on this connection")
    if caller.startswith(".") or "/" in caller:
        raise Refused(f"caller {caller!r} is not an agent name")
    try:
        key = read_key(os.path.join(callers, caller))
    except (OSError, ValueError):
        raise Refused(f"caller {caller!r} may not use this sandbox") from None
    code = request.get("code")
    limits = request.get("limits")
    if not isinstance(code, str) or not isinstance(limits, dict):
        raise Refused("the run has no code or limits")
    if not hmac.compare_digest(run_proof(key, nonce, run_id, code, limits), proof):
        raise Refused(f"the proof of caller {caller!r} does not hold")
    seen.add(run_id)
    return caller


def _log_access(caller: object, outcome: str, reason: str) -> None:
    import json
    import time

    record = {"audit": "sandbox-access", "caller": caller, "outcome": outcome, "reason": reason}
    record["time"] = time.time()
    print(json.dumps(record, sort_keys=True), file=sys.stderr, flush=True)


def _read_exact(fd: int, size: int) -> bytes | None:
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 1 << 20):
        chunks.append(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# --- the guards installed in the runner before user code ---------------------------------------


def _matches(name: str, prefixes: set[str] | frozenset[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def expand_deny(deny: list[str] | tuple[str, ...]) -> frozenset[str]:
    """The denied modules with the C modules behind them, and those denied in every run."""
    names = set(deny) | set(ALWAYS_DENIED)
    for name in deny:
        names.update(BACKENDS.get(name, ()))
    return frozenset(names)


def _library_dirs() -> tuple[str, ...]:
    import sysconfig

    dirs = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")}
    dirs.update(p for p in sys.path if p.startswith("/usr/lib/python3"))
    return tuple(sorted(d.rstrip("/") + "/" for d in dirs if d))


def _denied_message(name: str) -> str:
    return f"hive sandbox: import of {name!r} is denied by the sandbox policy (modules.deny)"


class DeniedModule(types.ModuleType):
    """Stands where a denied module was already loaded: any use of it is refused."""

    def __getattr__(self, attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(attribute)
        raise ImportError(_denied_message(self.__name__), name=self.__name__)


# The import system's own modules keep their references (posix through `_os`): without them
# nothing could be imported. What those references can do is still refused by the audit hook.
_IMPORT_SYSTEM = frozenset(
    {"_frozen_importlib", "_frozen_importlib_external", "importlib._bootstrap",
     "importlib._bootstrap_external", "zipimport"}
)  # fmt: skip


def replace_denied_modules(denied: frozenset[str], keep: tuple[object, ...] = ()) -> list[str]:
    """Put a `DeniedModule` wherever a denied module already loaded could be reached by name.

    In ``sys.modules`` and in the attributes of every other loaded module (``pathlib.os``,
    ``tempfile._os``...), except the import system's and the objects in `keep`. Returns the
    names replaced in ``sys.modules``.
    """
    module_type = types.ModuleType
    stubs: dict[str, object] = {}

    def stub(name: str) -> object:
        if name not in stubs:
            stubs[name] = DeniedModule(name)
        return stubs[name]

    replaced = [name for name in list(sys.modules) if _matches(name, denied)]
    for name in replaced:
        sys.modules[name] = stub(name)  # type: ignore[assignment]
    for name, module in list(sys.modules.items()):
        if name in _IMPORT_SYSTEM or module in keep or isinstance(module, DeniedModule):
            continue
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for attribute, value in list(namespace.items()):
            if isinstance(value, module_type) and not isinstance(value, DeniedModule):
                real = getattr(value, "__name__", "")
                if isinstance(real, str) and _matches(real, denied):
                    namespace[attribute] = stub(real)
    return replaced


def _make_hook(
    denied: frozenset[str],
    allowed: frozenset[str],
    blocked: tuple[str, ...],
    read_events: tuple[str, ...],
    filesystem: str,
    readable: tuple[str, ...],
    own_files: tuple[str, ...],
    libraries: tuple[str, ...],
) -> Any:
    """The audit hook, closed over immutable values and builtins bound now.

    User code can change every module, ``builtins`` included, and reach any frame; so the hook
    never looks anything up at call time: it reads only its own closure (frozensets, tuples,
    strings, built-in functions), which no run can reach (gc walks and tracing are refused).
    """
    _str, _bytes, _int, _bool, _type = str, bytes, int, bool, type
    _isinstance, _len = isinstance, len
    _import_error, _permission_error = ImportError, PermissionError
    introspection = INTROSPECTION_EVENTS
    getframe, getcwd = sys._getframe, os.getcwd
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def exact(text: Any) -> Any:
        """A str subclass cannot lie about its name through __eq__ or startswith."""
        if _type(text) is _str:
            return text
        if _isinstance(text, _str):
            return "".join(("", text))
        if _isinstance(text, _bytes):
            return _bytes.decode(text, "utf-8", "surrogateescape")
        return None

    def matches(name: str, names: frozenset[str]) -> bool:
        if name in names:
            return True
        dot = name.find(".")
        while dot >= 0:
            if name[:dot] in names:
                return True
            dot = name.find(".", dot + 1)
        return False

    def by_user_code() -> bool:
        frame: types.FrameType | None = getframe(1)
        while frame is not None:
            filename = frame.f_code.co_filename
            if filename.startswith("<frozen importlib") or filename in own_files:
                frame = frame.f_back
                continue
            return not filename.startswith(libraries)
        return False  # only this file's frames: the runner's own import

    def absolute(path: str) -> str:
        if not path.startswith("/"):
            path = getcwd() + "/" + path
        parts: list[str] = []
        for part in path.split("/"):
            if part == ".." and parts:
                parts.pop()
            elif part not in ("", ".", ".."):
                parts.append(part)
        return "/" + "/".join(parts)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "import":
            name = exact(args[0])
            if name is None or matches(name, denied):
                raise _import_error(
                    f"hive sandbox: import of {name!r} is denied by the sandbox policy "
                    "(modules.deny)",
                    name=name,
                )
            if allowed and not matches(name, allowed) and by_user_code():
                raise _import_error(
                    f"hive sandbox: import of {name!r} is not in the sandbox policy's "
                    "modules.allow",
                    name=name,
                )
            return
        if event == "object.__getattr__":
            return  # frames and code objects: reading them is fine, nothing here is secret
        if event.startswith(blocked) and not event.startswith(read_events):
            raise _permission_error(
                f"hive sandbox: {event} is denied by the sandbox policy (modules.deny)"
            )
        if event.startswith(introspection):
            raise _permission_error(f"hive sandbox: {event} is not allowed in the sandbox")
        if filesystem == "none" and event in ("open", "os.listdir", "os.scandir"):
            path = args[0] if _len(args) else None
            if _isinstance(path, _int) and _type(path) is not _bool:
                return
            writing = False
            if event == "open" and _len(args) > 1:
                mode = args[1] if _type(args[1]) is _str else ""
                flags = args[2] if _len(args) > 2 and _type(args[2]) is _int else 0
                writing = ("w" in mode or "a" in mode or "x" in mode or "+" in mode) or _bool(
                    flags & write_flags
                )
            text = exact(path)
            if text is None or writing or not absolute(text).startswith(readable):
                raise _permission_error(
                    "hive sandbox: file access is off (filesystem: none): "
                    + (text if text is not None else f"{path!r}")
                )

    return hook


def install_guards(
    deny: list[str],
    allow: list[str],
    filesystem: str,
    libraries: tuple[str, ...] | None = None,
) -> None:
    """Refuse denied imports and capabilities for the rest of this process's life."""
    denied = expand_deny(deny)
    wanted = set(allow)
    for name in allow:  # importing a.b imports a first
        parts = name.split(".")
        wanted.update(".".join(parts[:i]) for i in range(1, len(parts)))
    allowed = frozenset(wanted)
    blocked = tuple(e for name in deny for e in EVENTS.get(name, ()))
    read_events = READ_EVENTS if "os" in deny else ()
    libraries = libraries if libraries is not None else _library_dirs()
    readable = (*libraries, "/usr/lib/python3", "/etc/python3", "/dev/null")
    # this file, importlib's import_module, and the runner's first line (``python3 -c``)
    own_files = (
        __file__,
        os.path.join(os.path.dirname(os.__file__), "importlib", "__init__.py"),
        "<string>",
    )
    # This file and what prints the run's traceback keep theirs (what they can do is refused
    # all the same).
    keep = tuple(
        m for m in sys.modules.values() if getattr(m, "__dict__", None) is globals()
    ) + tuple(sys.modules[name] for name in ("linecache", "traceback") if name in sys.modules)
    replace_denied_modules(denied, keep=keep)
    settings = (denied, allowed, blocked, read_events, filesystem, readable, own_files, libraries)
    hook = _make_hook(*settings)
    finder_hook = _make_hook(*settings)  # its own closure: the finder is reachable, the hook not

    class DenyFinder:
        """First on sys.meta_path: a denied module is refused before any finder looks for it.

        The audit hook refuses the same imports (and the C modules behind them); this finder
        only makes the refusal come first, with the same message, for imports that go through
        importlib rather than the import statement.
        """

        @staticmethod
        def find_spec(name: str, path: Any = None, target: Any = None) -> None:
            finder_hook("import", (name, None, None, None, None))

    sys.meta_path.insert(0, DenyFinder)
    sys.addaudithook(hook)


# --- seccomp: no new programs ------------------------------------------------------------------

# (audit arch, execve, execveat) per machine; the filter fails closed on any other arch.
_EXEC_SYSCALLS = {"x86_64": (0xC000003E, 59, 322), "aarch64": (0xC00000B7, 221, 281)}
AT_EMPTY_PATH = 0x1000
_libc: Any = None
_no_exec_program: Any = None
_LIBRARY_DIRS: tuple[str, ...] = ()
_CODE_MEMFD = -1


def prepare() -> None:
    """What every spare needs, made once in the zygote before any user code exists.

    libc and the seccomp program through ctypes (the spare only calls prctl; the runner, a
    fresh interpreter, never loads ctypes), and the standard library's folders (sysconfig is
    slow to import).
    """
    global _libc, _no_exec_program, _LIBRARY_DIRS, _CODE_MEMFD
    import ctypes

    _LIBRARY_DIRS = _library_dirs()
    try:
        with open(__file__, "rb") as source:
            compiled = marshal.dumps(compile(source.read(), __file__, "exec"))
        _CODE_MEMFD = os.memfd_create("hive-runner", 0)
        _write_all(_CODE_MEMFD, compiled)
    except (OSError, AttributeError):
        _CODE_MEMFD = -1  # no memfd: each runner compiles this file itself
    _libc = ctypes.CDLL(None, use_errno=True)
    arch, execve, execveat = _EXEC_SYSCALLS.get(os.uname().machine, (0, -1, -1))

    def op(code: int, k: int, jt: int = 0, jf: int = 0) -> tuple[int, int, int, int]:
        return (code, jt, jf, k)

    ld, jeq, jge, ret = 0x20, 0x15, 0x35, 0x06
    arg = 16  # seccomp_data.args[0]; each argument is 8 bytes, its low half first
    program = [
        op(ld, 4),  # 0: seccomp_data.arch
        op(jeq, arch, 0, 12),  # 1: another arch: deny everything
        op(ld, 0),  # 2: seccomp_data.nr
        op(jge, 0x40000000, 10, 0),  # 3: x32 system calls
        op(jeq, execve & 0xFFFFFFFF, 9, 0),  # 4
        op(jeq, execveat & 0xFFFFFFFF, 1, 0),  # 5
        op(ret, 0x7FFF0000),  # 6: anything else: SECCOMP_RET_ALLOW
        # execveat(EXEC_FD, "", argv, envp, AT_EMPTY_PATH): the runner's interpreter, opened
        # close-on-exec by the spare, so no later program can be started through it.
        op(ld, arg),  # 7: dirfd, low half
        op(jeq, EXEC_FD, 0, 5),  # 8
        op(ld, arg + 4),  # 9: dirfd, high half
        op(jeq, 0, 0, 3),  # 10
        op(ld, arg + 4 * 8),  # 11: flags, low half
        op(jeq, AT_EMPTY_PATH, 0, 1),  # 12
        op(ret, 0x7FFF0000),  # 13: SECCOMP_RET_ALLOW
        op(ret, 0x00050000 | errno.EPERM),  # 14: SECCOMP_RET_ERRNO
    ]

    class Filter(ctypes.Structure):
        _fields_ = [
            ("code", ctypes.c_uint16),
            ("jt", ctypes.c_uint8),
            ("jf", ctypes.c_uint8),
            ("k", ctypes.c_uint32),
        ]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*(Filter(*f) for f in program))
    _no_exec_program = (Program(len(program), filters), filters)


def forbid_exec() -> None:
    """A seccomp filter that makes execve and execveat fail with EPERM, for good.

    With subprocess denied, a run can fork (within its pids limit) but never start another
    program, even one reached around the Python-level guards (a fresh python3 without them).
    The one exception is the spare's own next step, the runner's interpreter through
    `EXEC_FD`, which is closed on that exec.
    """
    import ctypes

    if _no_exec_program is None:
        prepare()
    if _libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if _libc.prctl(22, 2, ctypes.byref(_no_exec_program[0]), 0, 0) != 0:  # SECCOMP, FILTER
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


# --- the runner: one execution, in a fresh interpreter -----------------------------------------


def _set_limits(limits: dict[str, Any]) -> None:
    import resource

    # What the run can touch is about the limit: the interpreter's resident pages count, the
    # address space it only reserves does not.
    with open("/proc/self/statm") as statm:
        size, resident = (int(x) for x in statm.read().split()[:2])
    slack = max(0, size - resident) * os.sysconf("SC_PAGE_SIZE")
    # ...less what a fresh interpreter maps now and touches later (its own code pages, which
    # a forked interpreter had all resident): the peak stays within the limit.
    memory = int(limits["memory_bytes"]) + max(0, slack - UNTOUCHED_MARGIN)
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    cpu = max(1, int(-(-float(limits["cpu_seconds"]) // 1)))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    pids = int(limits["pids"])
    resource.setrlimit(resource.RLIMIT_NPROC, (pids, pids))
    fsize = int(limits.get("temp_bytes") or 64 << 20)
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _report(status: dict[str, Any]) -> None:
    """One line to the zygote; processes forked by the run share the pipe, lines stay whole."""
    text = "{" + ",".join(f'"{k}":"{v}"' for k, v in status.items()) + "}\n"
    with suppress(OSError):
        os.write(STATUS_FD, text.encode())


# The runner's first lines when the zygote compiled this file: its code from `CODE_FD`.
RUNNER_STUB = (
    "import marshal, os; code = marshal.loads(os.pread(6, os.fstat(6).st_size, 0)); os.close(6)"
    "; __file__ = code.co_filename; del marshal, os; exec(code)"
)


def runner_argv(workdir: str, compiled: bool = False) -> list[str]:
    """How a spare starts the runner: this file, in a fresh isolated interpreter."""
    program = ["-c", RUNNER_STUB] if compiled else [os.path.abspath(__file__)]
    return [sys.executable, "-I", "-S", "-B", *program, RUN_FLAG, workdir]


def runner(workdir: str) -> None:
    """The runner's life: wait for the request, fall to the sandbox user, run the code, exit.

    Everything slow (the traceback machinery, resource) is imported before the request comes;
    from the request on, the run's own limits, user and guards apply.
    """
    import io
    import resource  # noqa: F401 - imported before the request: _set_limits uses it

    data = _read_all(REQUEST_FD)
    os.close(REQUEST_FD)
    if not data:
        os._exit(0)  # the zygote is gone, or retired this spare
    handed = marshal.loads(data)  # noqa: S302 - written by the zygote, before any user code
    request, libraries = handed["request"], tuple(handed["libraries"])
    limits = request["limits"]
    if workdir:
        os.chown(workdir, SANDBOX_UID, SANDBOX_UID)
    _set_limits(limits)
    os.setgroups([])
    os.setgid(SANDBOX_UID)
    os.setuid(SANDBOX_UID)
    home = workdir or "/"
    os.environ.clear()
    os.environ.update(
        {"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "PWD": home}
    )
    os.chdir(home)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    sys.stdout = io.TextIOWrapper(
        io.FileIO(1, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.stderr = io.TextIOWrapper(
        io.FileIO(2, "w", closefd=False),
        encoding="utf-8",
        errors="backslashreplace",
        line_buffering=True,
    )
    sys.argv = [USER_FILENAME]
    source = str(request["code"])
    _show_source_in_tracebacks(source)
    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    main.__dict__["__file__"] = USER_FILENAME
    sys.modules["__main__"] = main
    install_guards(
        list(limits.get("deny", ())),
        list(limits.get("allow", ())),
        str(limits.get("filesystem", "temp")),
        libraries,
    )
    code = 0
    try:
        exec(compile(source, USER_FILENAME, "exec"), main.__dict__)  # noqa: S102
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code & 0xFF
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except MemoryError:
        _report({"limit": "memory"})
        with suppress(MemoryError):
            sys.stderr.write("MemoryError: the sandbox's memory limit was reached\n")
        code = 1
    except BaseException as exc:
        limit = limit_of(exc)
        if limit:
            _report({"limit": limit})
        _print_traceback(exc)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with suppress(BaseException):
            stream.flush()
    os._exit(code)


def _show_source_in_tracebacks(source: str) -> None:
    """The run's source in linecache, whenever linecache is imported (the runner, user code).

    Importing linecache (tokenize, re) on every run would cost each runner ~10 ms; a finder
    adds the source right after linecache is loaded, if it ever is.
    """
    entry = (len(source), None, source.splitlines(True), USER_FILENAME)

    class LinecacheFinder:
        @staticmethod
        def find_spec(name: str, path: Any = None, target: Any = None) -> Any:
            if name != "linecache":
                return None
            sys.meta_path.remove(LinecacheFinder)
            import importlib.util

            spec = importlib.util.find_spec(name)
            if spec is None or spec.loader is None:
                return spec
            execute = spec.loader.exec_module

            def exec_module(module: types.ModuleType) -> None:
                execute(module)
                module.cache[USER_FILENAME] = entry

            spec.loader.exec_module = exec_module  # type: ignore[method-assign]
            return spec

    if "linecache" in sys.modules:
        sys.modules["linecache"].cache[USER_FILENAME] = entry
    else:
        sys.meta_path.insert(0, LinecacheFinder)


def limit_of(exc: BaseException) -> str | None:
    """The limit an uncaught exception means, if any: processes, threads or open files."""
    if isinstance(exc, OSError) and exc.errno == errno.EAGAIN and _at_fork(exc):
        return "pids"
    if isinstance(exc, RuntimeError) and "can't start new thread" in str(exc):
        return "pids"  # RLIMIT_NPROC counts threads as well as processes
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        return "files"
    return None


def _print_traceback(exc: BaseException) -> None:
    """The traceback as Python prints it, without the frames of this file."""
    import traceback

    report = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    part: traceback.TracebackException | None = report
    while part is not None and id(part) not in seen:
        seen.add(id(part))
        part.stack[:] = [f for f in part.stack if f.filename != __file__]
        part = part.__cause__ or part.__context__
    sys.stderr.write("".join(report.format()))


def _at_fork(exc: BaseException) -> bool:
    import linecache

    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "fork" in (
        linecache.getline(tb.tb_frame.f_code.co_filename, tb.tb_lineno) or ""
    )


# --- the zygote ---------------------------------------------------------------------------------


# Run folders are /tmp/run-<n>, numbered over the zygote's whole life: a sandbox pod serves one
# connection after another, and a new one must never meet a name an earlier one used.
_RUN_NUMBERS = itertools.count(1)


def _remove_tree(top: str) -> None:
    """rm -rf, without importing shutil (and its compression modules) into the zygote.

    Each folder is taken back first (owner root, mode 0700): a sandbox pod's zygote is root
    without CAP_DAC_OVERRIDE (the pod drops it, keeping CAP_CHOWN), so it could not list or
    empty a folder the run's user made. Links are removed, never followed.
    """
    folders, pending = [], [top]
    while pending:
        folder = pending.pop()
        with suppress(OSError):
            os.lchown(folder, 0, 0)
            os.chmod(folder, 0o700)
        folders.append(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            else:
                with suppress(OSError):
                    os.unlink(entry.path)
    for folder in reversed(folders):
        with suppress(OSError):
            os.rmdir(folder)


class Spare:
    """A forked child, soon the runner, waiting for its request; its pipes and its folder.

    `no_exec`: whether the spare installed the seccomp filter that lets no program start
    (``subprocess`` denied); a request that wants the other kind gets a fresh spare.
    """

    def __init__(self, counter: int, filesystem: str, no_exec: bool = True) -> None:
        self.workdir = ""
        if filesystem == "temp":
            # root's until the runner has its request: the run before it cannot touch it
            self.workdir = f"/tmp/run-{counter}"  # noqa: S108 (the sandbox's own tmpfs)
            os.mkdir(self.workdir, 0o700)
        self.filesystem = filesystem
        self.no_exec = no_exec
        req_r, self.req_w = os.pipe()
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        self.st_r, st_w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                _spare(req_r, out_w, err_w, st_w, self.workdir, no_exec)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(126)
        for fd in (req_r, out_w, err_w, st_w):
            os.close(fd)

    @property
    def kind(self) -> tuple[str, bool]:
        return (self.filesystem, self.no_exec)

    def retire(self) -> None:
        """Stop a spare that no request will use (root's, so no run could have touched it)."""
        with suppress(OSError):
            os.kill(self.pid, 9)
        with suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.close()

    def send(self, request: dict[str, Any]) -> None:
        """Hand the request over; a spare that died meanwhile reports through its status."""
        handed = {"request": request, "libraries": list(_LIBRARY_DIRS)}
        with suppress(OSError):
            _write_all(self.req_w, marshal.dumps(handed))
        os.close(self.req_w)
        self.req_w = -1

    def close(self) -> None:
        """Close this side's pipes (once) and delete the run's folder."""
        for fd in (self.req_w, self.out_r, self.err_r, self.st_r):
            if fd >= 0:
                with suppress(OSError):
                    os.close(fd)
        self.req_w = self.out_r = self.err_r = self.st_r = -1
        if self.workdir:
            _remove_tree(self.workdir)


def _spare(req_r: int, out_w: int, err_w: int, st_w: int, workdir: str, no_exec: bool) -> None:
    """The forked child: its own session and descriptors, then the runner in its place."""
    import fcntl
    import signal

    os.setsid()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD, signal.SIGPIPE, signal.SIGXCPU):
        signal.signal(sig, signal.SIG_DFL)
    # Everything the runner gets moves above 64 first, then to its place; the rest is closed
    # (the protocol, the other spares' pipes).
    compiled = _CODE_MEMFD >= 0
    kept = (out_w, err_w, st_w, req_r, *((_CODE_MEMFD,) if compiled else ()))
    high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in kept]
    null = os.open("/dev/null", os.O_RDWR)
    os.dup2(null, 0)
    for target, fd in zip((1, 2, STATUS_FD, REQUEST_FD, CODE_FD), high, strict=False):
        os.dup2(fd, target, inheritable=True)
    os.closerange((CODE_FD if compiled else REQUEST_FD) + 1, 1 << 16)
    if not compiled:
        os.closerange(REQUEST_FD + 1, CODE_FD + 1)
    interpreter = os.open(sys.executable, os.O_RDONLY | os.O_CLOEXEC)
    if interpreter != EXEC_FD:
        os.dup2(interpreter, EXEC_FD, inheritable=False)
        os.close(interpreter)
    if no_exec:
        forbid_exec()
    argv = runner_argv(workdir, compiled=compiled)
    os.execve(EXEC_FD, argv, {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"})  # noqa: S606


def _sandbox_pids() -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == SANDBOX_UID:
                    pids.append(int(entry))
            except OSError:
                continue
    return pids


_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pids: list[int]) -> float:
    """CPU time of `pids` and of the children they have reaped, from /proc/<pid>/stat."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        ticks += sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    return ticks / _TICKS


def _reap() -> None:
    """Reap what has died: the run, and its orphans (PID 1 inherits them); spares live on."""
    with suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _kill_runs() -> None:
    """Kill every process of the sandbox user, and reap them; the spares (root's) stay.

    A helper that becomes the sandbox user sends ``kill(-1, SIGKILL)``: one atomic sweep over
    every process of that user (a fork bomb cannot outrun it), itself included.
    """
    import time

    deadline = time.monotonic() + 5
    while _sandbox_pids() and time.monotonic() < deadline:
        killer = os.fork()
        if killer == 0:
            try:
                os.setgroups([])
                os.setgid(SANDBOX_UID)
                os.setuid(SANDBOX_UID)
                os.kill(-1, 9)
            finally:
                os._exit(0)
        with suppress(ChildProcessError):
            os.waitpid(killer, 0)
        _reap()
        time.sleep(0.001)
    _reap()


def _kill_all() -> None:
    """Kill every process of the sandbox but this one, and reap what was ours."""
    import signal
    import time

    if os.getpid() == 1:  # kill(-1) from PID 1 reaches every process but itself
        while True:
            with suppress(OSError):
                os.kill(-1, signal.SIGKILL)
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return
    # Not PID 1 (a zygote outside a fresh PID namespace): kill the sandbox user's processes.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        pids = _sandbox_pids()
        for pid in pids:
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        if not pids:
            return
        time.sleep(0.001)


def run(request: dict[str, Any], spare: Spare) -> dict[str, Any]:
    """Hand `request` to `spare`, watch it under the limits, then clear the sandbox."""
    import json
    import select
    import signal
    import time

    limits = request["limits"]
    pid, out_r, err_r, st_r = spare.pid, spare.out_r, spare.err_r, spare.st_r
    started = time.monotonic()
    spare.send(request)
    budget = int(limits["output_bytes"])
    timeout = float(limits["timeout_s"])
    pids_limit = int(limits["pids"])
    cpu_limit = float(limits["cpu_seconds"])
    cpu_used = 0.0
    buffers = {out_r: bytearray(), err_r: bytearray()}
    status = bytearray()
    open_fds = {out_r, err_r, st_r}
    limit: str | None = None
    truncated = False
    waited: tuple[int, int, Any] | None = None
    exited_at = 0.0
    next_count = started + 0.05

    def take(fd: int, chunk: bytes) -> None:
        nonlocal status, truncated, limit
        if fd == st_r:
            status += chunk[: max(0, 4096 - len(status))]
            return
        used = len(buffers[out_r]) + len(buffers[err_r])
        keep = max(0, budget - used)
        buffers[fd] += chunk[:keep]
        if len(chunk) > keep:
            truncated = True
            limit = limit or "output"

    while True:
        now = time.monotonic()
        if waited is None:
            got = os.wait4(pid, os.WNOHANG)
            if got[0] == pid:
                waited, exited_at = got, now
        if waited is not None and (not (open_fds - {st_r}) or now - exited_at > 0.2):
            break
        if waited is None and now - started > timeout:
            limit = "timeout"
            break
        if waited is None and now >= next_count:
            next_count = now + 0.05
            pids = _sandbox_pids()
            if len(pids) >= pids_limit > 1:
                limit = "pids"
                break
            # All of the run's processes together: RLIMIT_CPU counts each one on its own
            # (and only in whole seconds); it stays as the backstop.
            cpu_used = _cpu_seconds(pids)
            if cpu_used >= cpu_limit:
                limit = "cpu"
                break
        if not open_fds:
            time.sleep(0.002)
            continue
        ready, _, _ = select.select(list(open_fds), [], [], 0.01)
        for fd in ready:
            chunk = os.read(fd, 65536)
            if chunk:
                take(fd, chunk)
            else:
                open_fds.discard(fd)
        if limit == "output":
            break
    wall = time.monotonic() - started
    if waited is None:
        with suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        waited = os.wait4(pid, 0)
    _kill_runs()
    for fd in open_fds:  # what is still buffered in the pipes
        with suppress(OSError):
            while select.select([fd], [], [], 0)[0] and (chunk := os.read(fd, 65536)):
                take(fd, chunk)
    spare.close()
    _, wstatus, usage = waited
    exit_code: int | None = None
    sig: int | None = None
    if os.WIFEXITED(wstatus):
        exit_code = os.WEXITSTATUS(wstatus)
    elif os.WIFSIGNALED(wstatus):
        sig = os.WTERMSIG(wstatus)
    reported: dict[str, Any] = {}
    for line in bytes(status).splitlines():  # the first well-formed report wins
        with suppress(ValueError):
            candidate = json.loads(line)
            if isinstance(candidate, dict):
                reported = candidate
                break
    cpu_s = max(cpu_used, (usage.ru_utime + usage.ru_stime) if usage is not None else 0.0)
    if (
        limit is None
        and sig in (signal.SIGXCPU, signal.SIGKILL)
        and cpu_s >= float(limits["cpu_seconds"]) * 0.9
    ):
        limit = "cpu"
    # The run's own report is the more precise cause: a fork bomb that met the pids limit then
    # spins until the CPU limit, a failed allocation can end in any way.
    if limit in (None, "cpu") and reported.get("limit") in ("memory", "pids", "files"):
        limit = str(reported["limit"])
    return {
        "op": "result",
        "id": request.get("id"),
        "exit_code": exit_code,
        "signal": sig,
        "stdout": buffers[out_r].decode("utf-8", "replace"),
        "stderr": buffers[err_r].decode("utf-8", "replace"),
        "truncated": truncated,
        "wall_s": wall,
        "cpu_s": cpu_s,
        "peak_memory_bytes": (usage.ru_maxrss * 1024) if usage is not None else 0,
        "limit": limit,
    }


def serve() -> None:
    """Answer run requests on stdin/stdout until stdin closes or an exit frame comes.

    ``argv[1]`` is the filesystem mode (the one the bundle was made for). With
    ``--listen HOST:PORT`` the zygote serves TCP instead, one connection at a time, for a
    sandbox pod in a cluster (its Service is reachable only from its team's agents); there
    ``--policy JSON`` gives the limits of its SandboxPolicy (as ``SandboxLimits.wire`` writes
    them, passed by the operator), which every request may only tighten (:func:`tighten`), and
    ``--callers DIR`` the keys of the agents that may call (required: a sandbox on a network
    runs nothing for a caller that cannot prove who it is).
    """
    filesystem = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "temp"
    if "--listen" in sys.argv:
        host, _, port = sys.argv[sys.argv.index("--listen") + 1].rpartition(":")
        policy = None
        if "--policy" in sys.argv:
            import json

            policy = json.loads(sys.argv[sys.argv.index("--policy") + 1])
        if "--callers" not in sys.argv:
            sys.exit("bootstrap.py: --listen needs --callers DIR (the keys of its callers)")
        callers = sys.argv[sys.argv.index("--callers") + 1]
        address = host or "0.0.0.0"  # noqa: S104 - the pod's address
        listen(address, int(port), filesystem, policy, callers)
        return
    import signal

    proto_in, proto_out = os.dup(0), os.dup(1)
    null = os.open("/dev/null", os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(2, 1)  # stray prints of the zygote go to stderr, never into the protocol
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # a dead spare or host is an error, not death
    prepare()
    answer_requests(proto_in, proto_out, filesystem)


NUMERIC_LIMITS = ("memory_bytes", "cpu_seconds", "timeout_s", "pids", "output_bytes", "temp_bytes")
FILESYSTEMS = ("none", "readonly", "temp")  # the strictest first


def tighten(policy: dict[str, Any], requested: dict[str, Any]) -> dict[str, Any]:
    """The limits a run gets where a policy holds: the request's where they are at least as
    strict as the policy's, else the policy's (a looser request is clamped, never refused).

    Each number is the smaller of the two; the filesystem the stricter (none < readonly <
    temp); the denied modules the policy's and the request's; the allowed modules the request's
    that the policy's allow list covers (all of the request's when the policy allows every
    module not denied), the policy's where none of the request's is covered.
    """
    limits = dict(policy)
    for key in NUMERIC_LIMITS:
        if key in requested and key in policy:
            limits[key] = min(float(requested[key]), float(policy[key]))
            if isinstance(policy[key], int) and float(limits[key]).is_integer():
                limits[key] = int(limits[key])
    if "filesystem" in requested and "filesystem" in policy:
        asked, held = str(requested["filesystem"]), str(policy["filesystem"])
        if asked in FILESYSTEMS and FILESYSTEMS.index(asked) < FILESYSTEMS.index(held):
            limits["filesystem"] = asked
    denied = [str(m) for m in policy.get("deny", ())]
    limits["deny"] = denied + [str(m) for m in requested.get("deny", ()) if m not in denied]
    held_allow = frozenset(str(m) for m in policy.get("allow", ()))
    asked_allow = [str(m) for m in requested.get("allow", ())]
    if held_allow:
        covered = [m for m in asked_allow if _matches(m, held_allow)]
        limits["allow"] = covered or sorted(held_allow)
    else:
        limits["allow"] = asked_allow
    return limits


def listen(
    host: str, port: int, filesystem: str, policy: dict[str, Any] | None, callers: str
) -> None:
    """Serve the protocol on TCP: each connection gets a ready frame with a nonce, then its
    requests, each run only for a caller whose key is in `callers` and whose proof holds (under
    `policy`'s limits, which a request may only tighten, when it is given)."""
    import signal
    import socket

    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    prepare()
    server = socket.create_server((host, port), reuse_port=False)
    print(f"zygote listening on {host}:{port}", file=sys.stderr, flush=True)
    while True:
        connection, _ = server.accept()
        with connection:
            fd = connection.fileno()
            try:
                answer_requests(
                    fd, fd, filesystem, last_session=False, policy=policy, callers=callers
                )
            except OSError:  # the client went away mid-frame
                _kill_runs()


def answer_requests(
    proto_in: int,
    proto_out: int,
    filesystem: str,
    *,
    last_session: bool = True,
    policy: dict[str, Any] | None = None,
    callers: str | None = None,
) -> None:
    """The protocol: a ready frame, then one answer per run request, until EOF or exit.

    At its end the spares are retired and what the runs left is killed. Only the last session
    of the zygote (stdin mode) kills every process of the sandbox: a sandbox pod serves one
    connection after another, and the end of one must not kill what else runs in the pod (the
    next connection's spares, a `kubectl exec` into it), so there only the sandbox user's
    processes are killed.

    `SPARES` runners are started ahead (one before the ready frame, the rest after it, and
    again after each answer), so a request finds its runner already started: the fork and the
    fresh interpreter are off the request's path. They are of the kind the last request wanted
    (no programs when it denied ``subprocess``), the first ones of the safe kind.
    """
    kind = (filesystem, True)
    spares: list[Spare] = []

    def top_up(count: int = SPARES) -> None:
        """Make spares up to `count`, one at a time while no request is waiting."""
        while len(spares) < count:
            spares.append(Spare(next(_RUN_NUMBERS), *kind))
            if count > 1 and select.select([proto_in], [], [], 0)[0]:
                return  # the next request first: it needs one spare, not all of them

    import select

    top_up(1)
    ready: dict[str, Any] = {"op": "ready", "pid": os.getpid(), "python": sys.version}
    seen: set[str] = set()
    if callers is not None:
        ready["nonce"] = os.urandom(16).hex()
    _write_all(proto_out, encode(ready))
    top_up()
    try:
        while True:
            header = _read_exact(proto_in, HEADER.size)
            if header is None:
                return
            (size,) = HEADER.unpack(header)
            body = _read_exact(proto_in, size) if size <= MAX_FRAME else None
            if body is None:
                return
            request = decode(body)
            if request.get("op") == "exit":
                return
            if callers is not None:
                try:
                    caller = check_caller(callers, ready["nonce"], request, seen)
                except Refused as refused:
                    _log_access(request.get("caller"), "refused", str(refused))
                    answer = {
                        "op": "error",
                        "id": request.get("id"),
                        "code": "unauthenticated",
                        "message": f"refused: {refused}",
                    }
                    _write_all(proto_out, encode(answer))
                    continue
                _log_access(caller, "allowed", f"run {request.get('id')}")
            try:
                if policy is not None:
                    request["limits"] = tighten(policy, request.get("limits") or {})
                limits = request["limits"]
                wanted = (
                    str(limits.get("filesystem", filesystem)),
                    "subprocess" in limits.get("deny", ()),
                )
                if wanted != kind:
                    while spares:
                        spares.pop().retire()
                    kind = wanted
                top_up(1)
                answer = run(request, spares.pop(0))
            except Exception as exc:
                answer = {
                    "op": "error",
                    "id": request.get("id"),
                    "message": f"{type(exc).__name__}: {exc}",
                }
                _kill_runs()
            _write_all(proto_out, encode(answer))
            top_up()
    finally:
        while spares:
            spares.pop().retire()
        if last_session:
            _kill_all()
        else:
            _kill_runs()


if __name__ == "__main__":
    if sys.argv[1:2] == [RUN_FLAG]:
        runner(sys.argv[2] if len(sys.argv) > 2 else "")
    else:
        serve()
