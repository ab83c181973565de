"""Outputs that never destroy anything: reports, JUnit files, baselines, graphs, the file
``live --write`` saves.

- An output that is the same file as an input (same device and inode, however it is
  named) is refused before any work (``refuse_overwrite``).
- A regular file (or a new name) is written to a temporary file beside it, ``NAME.PID.tmp``,
  with the mode of the file it replaces, and renamed over it only when complete; through a
  symlink, the file it points to is replaced and the link kept. The temporary file is
  removed on every way out (``discard_pending``: errors, Ctrl-C, SIGTERM, SIGHUP).
- A FIFO, a device (``/dev/null``, ``/dev/full``) and standard output are written in place;
  a FIFO is waited for as an input is (``sources.streams``).
- Every write error (a full disk, an I/O error, a read-only file system, a closed standard
  output) is an ``OutputError``: one line naming the output, exit code 5. A closed pipe
  stays ``BrokenPipeError``: the reader went away, there is nobody to tell.
"""
from __future__ import annotations

import errno
import io
import os
import stat
import sys
from typing import Any, Iterable, Optional, TextIO

from ..errors import OutputError, UsageError
from ..sources.streams import open_fifo_for_writing

STDOUT = "standard output"
_pending: set[str] = set()      # temporary files being written now


def discard_pending() -> None:
    """Remove every temporary output file still being written (on any way out)."""
    for tmp in list(_pending):
        try:
            os.unlink(tmp)
        except OSError:
            pass
        _pending.discard(tmp)


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


class CheckedFile(io.RawIOBase):
    """A file descriptor written to; any write error becomes an ``OutputError`` that
    names the output (``BrokenPipeError`` excepted). ``quiet``: errors are dropped
    instead (standard error: there is nowhere to say it). ``closed_reason``: the
    descriptor stands for an output that was closed before pushscan started."""

    def __init__(self, fd: int, name: str, closefd: bool = True, quiet: bool = False,
                 closed_reason: Optional[str] = None) -> None:
        super().__init__()
        self.fd = fd
        self.name = name
        self.closefd = closefd
        self.quiet = quiet
        self.closed_reason = closed_reason

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        if self.closed_reason is not None:
            if self.quiet:
                return len(b)
            raise OutputError(f"cannot write {self.name}: {self.closed_reason}")
        try:
            return os.write(self.fd, b)
        except BrokenPipeError:
            if self.quiet:
                return len(b)
            raise
        except OSError as exc:
            if self.quiet:
                return len(b)
            raise OutputError(f"cannot write {self.name}: {_reason(exc)}") from None

    def fileno(self) -> int:
        return self.fd

    def isatty(self) -> bool:
        return self.closed_reason is None and os.isatty(self.fd)

    def close(self) -> None:
        if not self.closed and self.closefd:
            try:
                os.close(self.fd)
            except OSError as exc:
                if not self.quiet:
                    raise OutputError(f"cannot write {self.name}: {_reason(exc)}") from None
            finally:
                super().close()
        else:
            super().close()


def text_stream(raw: CheckedFile, line_buffering: bool = False, encoding: str = "utf-8") -> TextIO:
    """Text over ``raw``: UTF-8, and a file name that is not UTF-8 is written as the
    bytes it is made of (``surrogateescape``), literally."""
    return io.TextIOWrapper(io.BufferedWriter(raw), encoding=encoding, errors="surrogateescape",
                            line_buffering=line_buffering)


def silence_stdout() -> None:
    """Standard output failed and was said to: what is still buffered for it is dropped
    (no second message at the exit's flush)."""
    raw = getattr(getattr(sys.stdout, "buffer", None), "raw", None)
    if isinstance(raw, CheckedFile):
        raw.quiet = True


def guard_standard_streams() -> None:
    """Standard output and error through ``CheckedFile``; a standard stream closed
    before pushscan started (``>&-``) is held by ``/dev/null``, so that no file pushscan
    opens takes its number, and writing to standard output then says it is closed."""
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    for fd in (0, 1, 2):
        closed = False
        try:
            os.fstat(fd)
        except OSError:
            closed = True
            null = os.open(os.devnull, os.O_RDONLY if fd == 0 else os.O_WRONLY)
            if null != fd:
                os.dup2(null, fd)
                os.close(null)
        if fd == 0:
            if closed:
                sys.stdin = None
            continue
        raw = CheckedFile(fd, STDOUT if fd == 1 else "standard error", closefd=False,
                          quiet=fd == 2, closed_reason="it is closed" if closed else None)
        stream = text_stream(raw, line_buffering=fd == 2 or raw.isatty(), encoding=encoding)
        if fd == 1:
            sys.stdout = stream
        else:
            sys.stderr = stream


def _identity(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def refuse_overwrite(outputs: Iterable[tuple[str, Optional[str]]], inputs: Iterable[str]) -> None:
    """A ``UsageError`` if an output (``(option, path)``; path None or ``-``: standard
    output) is the same file as an input or as another output: same device and inode,
    through symlinks, hard links and relative paths."""
    known: dict[tuple[int, int], str] = {}
    for p in inputs:
        try:
            st = os.fstat(0) if p == "-" else os.stat(p)
        except (OSError, ValueError):
            continue
        known.setdefault(_identity(st), "standard input" if p == "-" else p)
    written: dict[object, str] = {}
    for option, path in outputs:
        to_stdout = path is None or path == "-"
        what = STDOUT if to_stdout else f"{option} {path}"
        try:
            st = os.fstat(1) if to_stdout or path is None else os.stat(path)
        except OSError:           # a new file: no input can be it, another output can
            new = os.path.realpath(path or "-")
            if new in written:
                raise UsageError(f"{what} and {written[new]} are the same file") from None
            written[new] = what
            continue
        if to_stdout and stat.S_ISCHR(st.st_mode):
            continue              # a terminal or /dev/null: nothing to destroy
        key = _identity(st)
        if key in known:
            raise UsageError(f"{what} is the input {known[key]} (the same file): pushscan never "
                             "writes over its inputs")
        if key in written and not to_stdout:
            raise UsageError(f"{what} and {written[key]} are the same file")
        written[key] = what


class Output:
    """One output of a command (see the module's rules): ``stream`` to write to, text
    or (``binary``) bytes; ``commit`` when complete, ``abort`` otherwise. As a context
    manager it commits on success and aborts on any exception."""

    def __init__(self, path: Optional[str], binary: bool = False) -> None:
        self.path = path
        self.binary = binary
        self.tmp: Optional[str] = None
        self.target: Optional[str] = None
        self.done = False
        if path is None or path == "-":
            self.name = STDOUT
            if sys.stdout is None:
                raise OutputError(f"cannot write {STDOUT}: it is closed")
            self.stream: Any = sys.stdout.buffer if binary else sys.stdout
            self.raw: Optional[CheckedFile] = None
            return
        self.name = path
        try:
            st: Optional[os.stat_result] = os.stat(path)
        except FileNotFoundError:
            st = None
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {_reason(exc)}") from None
        if st is not None and not stat.S_ISREG(st.st_mode):
            if stat.S_ISDIR(st.st_mode):
                raise OutputError(f"cannot write {path}: it is a directory")
            fd = open_fifo_for_writing(path) if stat.S_ISFIFO(st.st_mode) else self._open(path, os.O_WRONLY)
        else:
            self.target = os.path.realpath(path)
            self.tmp = f"{self.target}.{os.getpid()}.tmp"
            fd = self._open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            _pending.add(self.tmp)
            if st is not None:
                self._keep_mode(fd, st)
        self.raw = CheckedFile(fd, path)
        self.stream = io.BufferedWriter(self.raw) if binary else text_stream(self.raw)

    def _open(self, path: str, flags: int, mode: int = 0o666) -> int:
        try:
            return os.open(path, flags | os.O_CLOEXEC, mode)
        except OSError as exc:
            why = _reason(exc)
            if exc.errno in (errno.EACCES, errno.EROFS) and self.tmp is not None:
                why += " (the report is written to a temporary file in its directory first)"
            raise OutputError(f"cannot write {self.name}: {why}") from None

    @staticmethod
    def _keep_mode(fd: int, st: os.stat_result) -> None:
        """The new file keeps the mode (and, for root, the owner) of the one it replaces."""
        try:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
        except OSError:
            pass

    def write(self, data: bytes) -> None:
        """Write bytes (a binary output, or the text output's byte layer)."""
        (self.stream if self.binary else self.stream.buffer).write(data)

    def commit(self) -> None:
        """Everything is written: flush it (standard output), or move the complete file
        into place. Raises ``OutputError`` (and leaves nothing) if that fails."""
        if self.done:
            return
        self.done = True
        if self.raw is None:
            self.stream.flush()
            return
        try:
            self.stream.flush()
            if self.tmp is not None:
                os.fsync(self.raw.fd)
            self.stream.close()
            if self.tmp is not None:
                os.replace(self.tmp, self.target)  # type: ignore[arg-type]
                _pending.discard(self.tmp)
        except OSError as exc:
            self.done = False
            self.abort()
            raise OutputError(f"cannot write {self.name}: {_reason(exc)}") from None
        except OutputError:
            self.done = False
            self.abort()
            raise

    def abort(self) -> None:
        """Give up: a temporary file is removed; what reached a FIFO, a device or
        standard output stays there."""
        if self.done:
            return
        self.done = True
        if self.raw is not None:
            self.raw.quiet = True          # nothing more to say about this output
            try:
                self.stream.close()
            except (OSError, ValueError, OutputError):
                pass
        if self.tmp is not None:
            try:
                os.unlink(self.tmp)
            except OSError:
                pass
            _pending.discard(self.tmp)

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is None:
            self.commit()
        else:
            self.abort()


def write_output(path: str, data: bytes) -> None:
    """``data`` as the whole of output ``path`` (atomically for a regular file)."""
    with Output(path, binary=True) as out:
        out.write(data)


__all__ = ["CheckedFile", "Output", "OutputError", "discard_pending", "guard_standard_streams",
           "refuse_overwrite", "silence_stdout", "text_stream", "write_output"]
