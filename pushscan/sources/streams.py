"""What kind of thing a path names, for reading it once or more, and opening FIFOs
without hanging silently.

A regular file (or block device) can be read again: a pre-pass may peek at it and the
analysis read it afterwards. Anything else (standard input ``-``, a FIFO, a pipe given as
``/dev/fd/N`` by a shell's ``<(...)``, a character device, a socket) is a stream: what is
read of it is gone, so it must be read once, in the order given.

Opening a FIFO blocks until a program opens the other end, possibly for ever. Here the
wait is bounded: ``PUSHSCAN_FIFO_TIMEOUT`` seconds (default 60; ``inf`` waits for ever),
and after ``NOTICE_S`` the caller's ``notify`` hook (the command line prints it on
stderr) is told what pushscan waits for.
"""
from __future__ import annotations

import errno
import io
import os
import select
import stat
import time
from typing import BinaryIO, Callable, Optional

from ..errors import InputError, OutputError

NOTICE_S = 1.0
POLL_S = 0.25
DEFAULT_TIMEOUT_S = 60.0

# Told once per FIFO, after NOTICE_S, what pushscan waits for (None: nobody is told).
notify: Optional[Callable[[str], None]] = None


def rereadable(path: str) -> bool:
    """Whether ``path`` can be read more than once (a regular file or a block device).
    A path that does not exist counts as rereadable: opening it only says it is missing."""
    if path == "-":
        return False
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return True
    return stat.S_ISREG(mode) or stat.S_ISBLK(mode)


def is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def fifo_timeout() -> float:
    """Seconds to wait for the other end of a FIFO (``PUSHSCAN_FIFO_TIMEOUT``)."""
    text = os.environ.get("PUSHSCAN_FIFO_TIMEOUT", "")
    try:
        value = float(text) if text.strip() else DEFAULT_TIMEOUT_S
    except ValueError:
        return DEFAULT_TIMEOUT_S
    return value if value > 0 else DEFAULT_TIMEOUT_S


class _Waiting:
    """The wait for a FIFO's other end: says so once after NOTICE_S, gives up at the
    timeout."""

    def __init__(self, path: str, other_end: str) -> None:
        self.path = path
        self.other_end = other_end
        self.timeout = fifo_timeout()
        self.started = time.monotonic()
        self.told = False

    def left(self) -> float:
        """Seconds left (raises nothing; <= 0 when the time is up)."""
        waited = time.monotonic() - self.started
        if not self.told and waited >= NOTICE_S and notify is not None:
            self.told = True
            limit = "for ever" if self.timeout == float("inf") else \
                f"for up to {self.timeout:g} s (PUSHSCAN_FIFO_TIMEOUT)"
            notify(f"{self.path}: waiting {limit} for a program to open this FIFO for "
                   f"{self.other_end}")
        return self.timeout - waited


class _Prefixed(io.RawIOBase):
    """A raw stream that returns ``head`` first, then what ``fd`` gives."""

    def __init__(self, fd: int, head: bytes) -> None:
        self.fd = fd
        self.head = head

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray | memoryview) -> int:  # type: ignore[override]
        if self.head:
            n = min(len(b), len(self.head))
            b[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = os.read(self.fd, len(b))
        b[:len(data)] = data
        return len(data)

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if not self.closed:
            os.close(self.fd)
        super().close()


def _blocking(fd: int) -> None:
    os.set_blocking(fd, True)


def open_fifo_for_reading(path: str) -> BinaryIO:
    """Open a FIFO to read it, waiting (boundedly) for a program to open it for writing.
    Raises ``InputError`` when none did in time."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(path, "permission denied" if exc.errno == errno.EACCES
                         else exc.strerror or str(exc)) from None
    wait = _Waiting(path, "writing")
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP)
    head = b""
    try:
        while True:
            left = wait.left()
            if left <= 0:
                raise InputError(path, f"nothing was written to this FIFO within {wait.timeout:g} s "
                                 "(no program opened it for writing)")
            if poller.poll(int(min(POLL_S, left) * 1000) + 1):
                break              # data, or a writer came and went: read on
            try:
                head = os.read(fd, 1)   # no data yet: is a writer there at all?
            except BlockingIOError:
                break              # a writer holds it open and has not written yet
            if head:
                break
    except BaseException:
        os.close(fd)
        raise
    _blocking(fd)
    raw: io.RawIOBase = _Prefixed(fd, head) if head else io.FileIO(fd, "rb")
    return io.BufferedReader(raw)


def open_fifo_for_writing(path: str) -> int:
    """A file descriptor open for writing to a FIFO, once a program opened it for
    reading (waited for boundedly). Raises ``OutputError`` when none did in time."""
    wait = _Waiting(path, "reading")
    while True:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as exc:
            if exc.errno != errno.ENXIO:       # ENXIO: nobody reads it yet
                raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
        left = wait.left()
        if left <= 0:
            raise OutputError(f"cannot write {path}: no program opened this FIFO for reading "
                              f"within {wait.timeout:g} s")
        time.sleep(min(0.05, left))
    _blocking(fd)
    return fd
