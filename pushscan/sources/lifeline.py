"""Child processes never outlive pushscan.

``die_with_parent(sig)``: the calling process is sent ``sig`` when its parent dies
(Linux's ``PR_SET_PDEATHSIG``); ``-j`` workers use it.

A capture program (dumpcap, tcpdump) runs under a guard: this file run as a script,
``python -I -S lifeline.py PROGRAM ARGS...``, in a session of its own. The kernel drops
``PR_SET_PDEATHSIG`` when a program with file capabilities is started by another user
(``setcap cap_net_raw+eip dumpcap``, the usual set-up), so it cannot be put on the
capture program alone; the guard, plain Python, keeps it. The guard

- dies with pushscan: ``SIGTERM`` when pushscan's process ends, however it ends
  (``SIGKILL`` included), and at once if pushscan was already gone when it started;
- starts the program in a process group of its own, with ``PR_SET_PDEATHSIG`` set for
  it too (kept where the kernel keeps it: the guard itself killed);
- forwards pushscan's stop request (``SIGINT``) once, so that the program flushes;
- on ``SIGTERM`` or ``SIGHUP`` (or pushscan's death) ends the program's process group:
  ``SIGTERM``, then ``SIGKILL`` after ``GRACE_S``;
- exits with the program's status: its exit code, or 128 + N when signal N ended it.

Only the standard library is used: the guard starts fast and imports nothing of pushscan.
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from typing import Any

PR_SET_PDEATHSIG = 1
GRACE_S = 2


def die_with_parent(sig: int = signal.SIGKILL, parent: int = 0) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent dies; if the
    parent (``parent``: its pid, when known) is already gone, exit now. False where the
    kernel offers no such thing (not Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    if parent and os.getppid() != parent:
        os._exit(128 + int(sig))        # orphaned already: do what the signal would
    return True


class _Guard:
    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.child: Any = None
        self.forwarded = False
        self.ending = False

    def _group(self, sig: int) -> None:
        if self.child is None:
            return
        try:
            os.killpg(self.child.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def on_stop(self, _sig: int, _frame: Any) -> None:
        """pushscan asks the program to finish (it flushes its output)."""
        if not self.forwarded:
            self.forwarded = True
            self._group(signal.SIGINT)

    def on_end(self, _sig: int, _frame: Any) -> None:
        """pushscan is gone, or wants the program gone now."""
        if not self.ending:
            self.ending = True
            self._group(signal.SIGTERM)
            signal.alarm(GRACE_S)

    def on_alarm(self, _sig: int, _frame: Any) -> None:
        self._group(signal.SIGKILL)

    def run(self, parent: int) -> int:
        signal.signal(signal.SIGINT, self.on_stop)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, self.on_end)
        signal.signal(signal.SIGALRM, self.on_alarm)
        die_with_parent(signal.SIGTERM, parent)
        me = os.getpid()
        try:
            self.child = subprocess.Popen(
                self.argv, start_new_session=True,
                preexec_fn=lambda: die_with_parent(signal.SIGTERM, me))
        except OSError as exc:
            sys.stderr.write(f"{self.argv[0]}: {exc.strerror or exc}\n")
            return 127
        if self.ending:               # the end came while the program was starting
            self.ending = False
            self.on_end(signal.SIGTERM, None)
        code = int(self.child.wait())
        self._group(signal.SIGKILL)   # anything the program left in its group
        return 128 - code if code < 0 else code


def main() -> None:
    parent = int(sys.argv[1])
    sys.exit(_Guard(sys.argv[2:]).run(parent))


def guarded(argv: list[str]) -> list[str]:
    """The command line that runs ``argv`` under the guard (see the module)."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), *argv]


if __name__ == "__main__":
    main()
