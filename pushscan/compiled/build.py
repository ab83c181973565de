"""Building the compiled loops once ahead of time, or compiling them with numba's JIT.

``load()`` gives the entry points of the marked functions (``compiled.compiled``):

1. As an extension module built with numba's ahead-of-time compiler (``numba.pycc``),
   once per version of the kernels' sources, numpy and Python, in the cache directory
   (``PUSHSCAN_CACHE_DIR``, else ``$XDG_CACHE_HOME/pushscan`` or ``~/.cache/pushscan``).
   It loads in under a millisecond and does not load numba, whose import and first call
   cost 0.3 s and 110 MB on every run otherwise. Building it takes numba and a C
   compiler (``$CC`` or ``cc``), about 10 s; concurrent processes wait for one build.
2. Otherwise with numba's JIT, cached by numba in a directory of the cache keyed like
   the built module. So when no compiler is found, when the build failed (the reason is
   kept in ``<name>.failed`` in the cache directory; delete it to try again), when
   ``numba.pycc`` is gone, or when ``PUSHSCAN_KERNELS=jit``.

Either way the machine code comes from the same functions, compiled by numba with the
same options, and gives the same results (the tests run both). The key of a build (the
module's name) covers every pushscan module the kernel modules import, directly or not
(layouts, constants, sequence arithmetic), so that any change to what they compile in
makes a new build.

``numba.pycc`` is pending deprecation upstream. The plan (docs/performance.md): the JIT
path is kept tested as the fallback; when pycc goes, the build step fails soft (the JIT
is used, said once) until its replacement (numba's ahead-of-time successor, or a JIT
cache shipped warm) takes its place behind the same ``load()``.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import threading
import time
import zlib
from typing import Any, Callable, NamedTuple, Optional

import numpy as np


# The modules holding marked functions, and the entry points called from Python.
MODULES = ("pushscan.sources.scan_kernel", "pushscan.decode.peel", "pushscan.decode.kernel",
           "pushscan.tcp.kernel")
ENTRIES = {"scan": ("pushscan.sources.scan_kernel", "kernel"),
           "scan_epb": ("pushscan.sources.scan_kernel", "epb_kernel"),
           "decode": ("pushscan.decode.kernel", "_kernel"),
           "track": ("pushscan.tcp.kernel", "kernel")}
BUILD_TIMEOUT = 900          # seconds
STALE_DAYS = 7               # other builds in the cache directory older than this go
FAILED = "pushscan-build-failed: "   # how the build process states why it failed


class Kernels(NamedTuple):
    scan: Callable[..., Any]      # sources/scan_kernel.kernel
    scan_epb: Callable[..., Any]  # sources/scan_kernel.epb_kernel
    decode: Callable[..., Any]    # decode/kernel._kernel
    track: Callable[..., Any]     # tcp/kernel.kernel
    origin: str                   # "built: <path>" or "jit"


def signatures() -> dict[str, Any]:
    """The entry points' numba signatures (the ahead-of-time module checks no types, so
    these must be what the callers pass; a test compares them with what the JIT infers)."""
    import numba

    t: Any = numba.types            # (numba's own type hints are partial)
    from_dtype: Any = numba.from_dtype

    from ..decode.kernel import ICMP_AT, STATS
    from ..decode.peel import TUNNELED
    from ..model import SEGMENT
    from ..tcp.layout import BUFFERS, CONTROL, EVENT, ROW
    i8, u8, b = t.int64, t.uint8, t.boolean

    def arr(dtype: Any, ndim: int, readonly: bool = False) -> Any:
        return t.Array(dtype, ndim, "C", readonly=readonly)

    def rec(dtype: np.dtype) -> Any:
        return arr(from_dtype(dtype), 1)

    a1 = arr(i8, 1)
    buf = arr(u8, 1, readonly=True)   # the capture's bytes (bytes or a read-only mmap)
    return {
        "scan": t.Tuple((i8, i8, b))(buf, i8, b, i8, a1, a1, a1, a1, a1),
        "scan_epb": t.UniTuple(i8, 2)(buf, i8, b, i8, i8, a1, a1, a1, a1, a1),
        "decode": t.UniTuple(i8, 3)(buf, a1, a1, a1, a1, i8, rec(SEGMENT), arr(t.uint64, 2),
                                    a1, rec(ICMP_AT), rec(STATS), arr(t.uint64, 1),
                                    rec(TUNNELED), rec(TUNNELED)),
        "track": t.UniTuple(i8, 3)(rec(ROW), rec(BUFFERS), arr(u8, 3), rec(EVENT), rec(CONTROL),
                                   a1, rec(SEGMENT), buf, b, a1, a1, i8, a1, a1, a1, a1),
    }


# -- numba's JIT -------------------------------------------------------------------------
def jit_modules() -> None:
    """Replace every marked function of ``MODULES`` by its numba dispatcher (before any
    is called: numba reads a callee from its module when it compiles the caller)."""
    import numba
    from numba.core.dispatcher import Dispatcher

    made: dict[int, Any] = {}          # one dispatcher per function, whichever module names it
    for name in MODULES:
        mod = importlib.import_module(name)
        for attr, f in list(vars(mod).items()):
            if isinstance(f, Dispatcher):
                continue               # (imported from a module already compiled)
            options = getattr(f, "_numba_options", None)
            if options is not None and callable(f):
                if id(f) not in made:
                    made[id(f)] = numba.njit(**options)(f)
                setattr(mod, attr, made[id(f)])


def _jit() -> Optional[Kernels]:
    # numba's own cache notices changes to a function's file only, not to the constants
    # and helpers it compiles in from other modules: so it goes to a directory keyed like
    # the built module (set before numba loads, and in its config if it has loaded)
    where = os.path.join(cache_dir(), "jit-" + module_name())
    os.environ["NUMBA_CACHE_DIR"] = where
    if "numba" in sys.modules:
        sys.modules["numba"].config.CACHE_DIR = where
    try:
        jit_modules()
    except ImportError:
        return None
    fns = {k: getattr(importlib.import_module(m), f) for k, (m, f) in ENTRIES.items()}
    return Kernels(origin="jit", **fns)


# -- ahead of time -----------------------------------------------------------------------
# (os.path, and the build's modules imported when building: this runs on every big
# analysis, where pathlib, sysconfig and tempfile would add 5 ms)
PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cache_dir() -> str:
    env = os.environ.get("PUSHSCAN_CACHE_DIR")
    if env:
        return env
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pushscan")


_IMPORT = re.compile(r"^[ \t]*from[ \t]+(\.+[\w.]*|pushscan(?:\.[\w.]+)?)[ \t]+import[ \t]+(\([^)]*\)|[^\n#]+)", re.M)


def _module_file(name: str) -> Optional[str]:
    """The source file of pushscan module ``name``, if there is one."""
    base = os.path.join(PACKAGE, *name.split(".")[1:])
    for path in (base + ".py", os.path.join(base, "__init__.py")):
        if os.path.isfile(path):
            return path
    return None


def dependencies(names: tuple[str, ...] = ("pushscan.compiled.marker", "pushscan.compiled.build")
                 + MODULES) -> list[str]:
    """The source files of ``names`` and of every pushscan module they import, directly
    or not (read as text: ``from X import Y`` statements, relative or absolute)."""
    todo, seen, files = list(names), set(), []
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        files.append(path)
        package = name if path.endswith("__init__.py") else name.rpartition(".")[0]
        with open(path, encoding="utf-8") as f:
            text = f.read()
        for frm, what in _IMPORT.findall(text):
            if frm.startswith("."):
                dots = len(frm) - len(frm.lstrip("."))
                parts = package.split(".")[: len(package.split(".")) - dots + 1]
                base = ".".join(parts + ([frm.lstrip(".")] if frm.lstrip(".") else []))
            else:
                base = frm
            todo.append(base)
            for item in what.strip("() \n").split(","):   # "from . import scan": modules too
                word = item.split()[0] if item.split() else ""
                if word.isidentifier():
                    todo.append(f"{base}.{word}")
    return sorted(files)


@functools.lru_cache(maxsize=1)
def module_name() -> str:
    """The built module's name: a digest of everything its machine code depends on (read
    once per process): the sources of the kernel modules and of what they import."""
    data = b""
    for path in dependencies():
        with open(path, "rb") as f:
            data += path.encode() + b"\0" + f.read()
    data += f"{np.__version__} {sys.version} {sys.platform} {os.uname().machine}".encode()
    # two 32-bit checksums (zlib: hashlib would load OpenSSL, 8 ms on every big run)
    return f"pushscan_kernels_{zlib.crc32(data):08x}{zlib.adler32(data):08x}"


def module_path() -> str:
    """Where the built module for these sources is (or goes)."""
    return os.path.join(cache_dir(), module_name() + importlib.machinery.EXTENSION_SUFFIXES[0])


def compiler() -> Optional[str]:
    """The C compiler a build would use (as distutils chooses it), if installed."""
    import shutil
    import sysconfig

    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    words = cc.split()
    return shutil.which(words[0]) if words else None


def _note(text: str) -> None:
    print(f"pushscan: {text}", file=sys.stderr, flush=True)


def _build(cache: str, name: str) -> tuple[Optional[str], str]:
    """Build ``name`` into ``cache`` in a child process (numba and the compiler's memory
    go with it); returns the module's path, or None and why not."""
    import shutil
    import subprocess
    import sysconfig
    import tempfile

    if not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")):
        return None, "the Python headers (Python.h) are not installed; Debian: python3-dev"
    try:
        work = tempfile.mkdtemp(prefix="build-", dir=cache)
    except OSError as exc:
        return None, str(exc)
    try:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (os.path.dirname(PACKAGE), os.environ.get("PYTHONPATH")) if p))
        try:
            proc = subprocess.run([sys.executable, "-m", "pushscan.compiled.build", work, name], check=False,
                                  capture_output=True, text=True, env=env,
                                  timeout=BUILD_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as exc:
            return None, str(exc)
        built = [f for f in os.listdir(work) if f.startswith(name + ".")]
        if proc.returncode != 0 or len(built) != 1:
            lines = [ln.strip() for ln in (proc.stderr or "").splitlines() if ln.strip()]
            said = [ln[len(FAILED):] for ln in lines if ln.startswith(FAILED)]
            return None, (said or lines or [f"exit status {proc.returncode}"])[-1]
        path = os.path.join(cache, built[0])
        os.replace(os.path.join(work, built[0]), path)
        return path, ""
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _prune(cache: str, keep: str) -> None:
    """Remove builds (and JIT caches) of other source versions not modified for
    ``STALE_DAYS``."""
    import shutil

    old = time.time() - STALE_DAYS * 86400
    for f in os.listdir(cache):
        name = f[4:] if f.startswith("jit-") else f
        if name.startswith("pushscan_kernels_") and not name.startswith(keep):
            path = os.path.join(cache, f)
            with contextlib.suppress(OSError):
                if os.stat(path).st_mtime < old:
                    if os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
                    else:
                        os.unlink(path)


def built_module() -> Optional[str]:
    """The ahead-of-time module for these sources: found in the cache or built now
    (None if it cannot be: no compiler, unwritable cache, a failed build)."""
    path = module_path()
    cache = os.path.dirname(path)
    name = module_name()
    failed = os.path.join(cache, name + ".failed")
    if os.path.exists(path):
        return path
    if os.path.exists(failed) or compiler() is None:
        return None
    try:
        os.makedirs(cache, exist_ok=True)
        lock = open(os.path.join(cache, "build.lock"), "a")  # noqa: SIM115
    except OSError:
        return None
    with lock:
        try:
            import fcntl
            fcntl.flock(lock, fcntl.LOCK_EX)   # one build; other processes wait for it
        except (ImportError, OSError):   # no POSIX locks here: builds may race (each
            pass                         # writes its own temporary directory)
        if os.path.exists(path):
            return path
        if os.path.exists(failed):
            return None
        if sys.stderr.isatty():
            _note("building the compiled kernels, once for this version (about 10 s)")
        built, why = _build(cache, name)
        if built is None:
            with contextlib.suppress(OSError), open(failed, "w") as f:
                f.write(why + "\n")
            _note(f"could not build the compiled kernels ({why}); using numba's JIT "
                  f"(to try again, delete {failed})")
            return None
        _prune(cache, name)
        return built


def _load(path: str) -> Optional[Kernels]:
    """Import the built module; a module that does not load is removed (built again
    next time) and the JIT used."""
    name = os.path.basename(path).split(".", 1)[0]
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        mod = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(mod)  # type: ignore[union-attr]
        fns = {k: getattr(mod, k) for k in ENTRIES}
    except (ImportError, OSError, AttributeError) as exc:
        _note(f"could not load {path} ({exc}); removed it, using numba's JIT")
        with contextlib.suppress(OSError):
            os.unlink(path)
        return None
    return Kernels(origin=f"built: {path}", **fns)


_lock = threading.Lock()
_kernels: list[Optional[Kernels]] = []


def load() -> Optional[Kernels]:
    """The compiled entry points (ahead of time if possible, else JIT), or None if
    neither is available (numba not installed and no module built)."""
    with _lock:
        if not _kernels:
            k = None
            if os.environ.get("PUSHSCAN_KERNELS", "auto") != "jit":
                path = built_module()
                k = _load(path) if path is not None else None
            _kernels.append(k or _jit())
        return _kernels[0]


def available() -> bool:
    """Whether the fast lane can run (its kernels are compiled or compilable)."""
    return load() is not None


def ready() -> bool:
    """Whether the built module is at hand (loaded, or in the cache), so that the fast
    lane starts at no cost; neither loads nor builds anything."""
    if _kernels:
        return _kernels[0] is not None and _kernels[0].origin.startswith("built")
    if os.environ.get("PUSHSCAN_KERNELS", "auto") == "jit":
        return False
    return os.path.exists(module_path())


def kernels() -> Kernels:
    """``load()``, for callers that checked ``available()``."""
    k = load()
    if k is None:
        raise RuntimeError("the fast lane's compiled kernels are not available (numba?)")
    return k


# -- the build, in a child process: python -m pushscan.compiled.build DIR NAME -------------
def _main(out_dir: str, name: str) -> None:
    import warnings

    warnings.simplefilter("ignore")        # pycc is "pending deprecation" in numba 0.5x-0.6x
    import numba.pycc
    import numba.pycc.compiler

    CC: Any = getattr(numba.pycc, "CC")
    pycc_compiler: Any = numba.pycc.compiler

    class Flags(pycc_compiler.Flags):  # type: ignore[misc]
        """pycc's flags, but its wrappers let other threads run during a call, as the
        JIT's ``nogil=True`` does (the read-ahead thread decodes while the main thread
        tracks)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    pycc_compiler.Flags = Flags
    jit_modules()
    cc = CC(name)
    cc.output_dir = out_dir
    cc.use_nrt = False                      # as OPTIONS' _nrt=False
    sigs = signatures()
    for entry, (modname, fname) in ENTRIES.items():
        cc.export(entry, sigs[entry])(getattr(importlib.import_module(modname), fname).py_func)
    cc.compile()


if __name__ == "__main__":
    try:
        _main(sys.argv[1], sys.argv[2])
    except Exception as exc:  # noqa: BLE001 - the parent reports it in one line, uses the JIT
        why = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
        print(f"{FAILED}{type(exc).__name__}: {why}", file=sys.stderr)
        sys.exit(1)
