"""Memory-mapping a capture file that cannot change under the mapping.

A mapped file that another program truncates (``tcpdump -C/-W`` reusing a ring file,
``logrotate``'s ``copytruncate``) kills the reader with SIGBUS at its next access to a
page past the new end, wherever that access is (the scanner, the decoder, the fast
lane's conflict windows); Python cannot catch that. So a file is mapped only under a
*read lease* (``fcntl(F_SETLEASE, F_RDLCK)``): while it is held, the kernel makes any
program that opens the file for writing, or truncates it, wait (at most
``/proc/sys/fs/lease-break-time`` seconds, 45 by default) and tells the holder, whose
lease then reads ``F_UNLCK`` (``broken``). The reader stops at its next batch and reports
a damaged tail; the writer goes on once the mapping is let go (the file closed and the
last batch pointing into it dropped), at the latest when the kernel's time is up.

No lease, no mapping: when the file is open for writing already (a capture still being
written), on file systems without leases, for a file of another user without
``CAP_LEASE``, or outside the main thread (the lease signal must be ignored first), the
file is read with ``read()`` instead, which a truncation only cuts short.
"""
from __future__ import annotations

import fcntl
import mmap
import os
import signal
import threading
from typing import Optional

# The signal the kernel sends when a lease breaks (F_SETSIG): one of its own, ignored, so
# that nobody else's handler sees it; the break is read from F_GETLEASE instead.
LEASE_SIGNAL = signal.SIGRTMIN + 7 if hasattr(signal, "SIGRTMIN") else 0


def prepare() -> bool:
    """Make the lease signal ignored, if nobody else handles it; only the main thread
    can (the reader calls this when it opens a file, as the mapping may be made on the
    read-ahead thread). True if leases can be taken."""
    if not LEASE_SIGNAL:
        return False
    current = signal.getsignal(LEASE_SIGNAL)
    if current == signal.SIG_IGN:
        return True
    if current not in (signal.SIG_DFL, None) or threading.current_thread() is not threading.main_thread():
        return False
    try:
        signal.signal(LEASE_SIGNAL, signal.SIG_IGN)
    except (ValueError, OSError):
        return False
    return True


def lease(fd: int) -> bool:
    """Take a read lease on the regular file open (read-only) as ``fd``; False if it
    cannot be had (see the module)."""
    if not hasattr(fcntl, "F_SETLEASE") or not prepare():
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, LEASE_SIGNAL)
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError:
        return False
    return True


def broken(fd: int) -> bool:
    """A program wants to write or truncate the leased file ``fd`` (the lease is being
    broken, or was)."""
    try:
        return bool(fcntl.fcntl(fd, fcntl.F_GETLEASE) != fcntl.F_RDLCK)
    except OSError:
        return True


def map_leased(fd: int) -> Optional[mmap.mmap]:
    """The whole file ``fd`` mapped read-only under a read lease, or None (read it with
    ``read()``). The lease lasts as long as the file or the mapping is open."""
    if not lease(fd):
        return None
    try:
        mm = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        _unlease(fd)
        return None
    if broken(fd):             # a writer came between the lease and the mapping
        mm.close()
        _unlease(fd)           # it may go on at once: the file is read with read()
        return None
    return mm


def _unlease(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
    except OSError:
        pass


def shrunk(fd: int, position: int) -> bool:
    """The regular file ``fd`` is now shorter than ``position`` (truncated while read)."""
    try:
        return os.fstat(fd).st_size < position
    except OSError:
        return False
