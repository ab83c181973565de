"""Engines: ways of turning captured frames into ``SegmentBatch`` values.

Every engine yields the same model; nothing downstream knows which one ran.

- ``native``: pushscan's own streaming reader and vectorised decoder (the fast default);
- ``scapy``: scapy's readers and dissectors (``sources.scapy_engine``);
- ``tshark``: pyshark over tshark (``sources.tshark_engine``); reads every format tshark
  reads.

An engine's ``batches()`` yields ``(batch, frames)``: a batch and how many frames (of
any kind) it covered, so frame numbers continue across files.
"""
from __future__ import annotations

import os
import stat
import sys
from typing import BinaryIO, Callable, Iterator, Union

from ..decode import decode
from ..errors import InputError, UsageError
from ..model import DecodeStats, SegmentBatch
from .capture import CaptureReader
from .scapy_engine import ScapyEngine
from .tshark_engine import TsharkEngine, tshark_available, tshark_can_read
from .streams import open_fifo_for_reading, rereadable

ENGINES = ("native", "scapy", "tshark")


class NativeEngine:
    name = "native"

    def __init__(self, raw: BinaryIO, reader: CaptureReader) -> None:
        self.reader = reader
        self.format = reader.format
        self._fast = False

    @property
    def fast(self) -> bool:
        """Compiled scanner and decoder (set with the tracker's fast lane)."""
        return self._fast

    @fast.setter
    def fast(self, on: bool) -> None:
        self._fast = self.reader.fast = on

    @property
    def link_types(self) -> dict[int, int]:
        return self.reader.link_types

    @property
    def packets(self) -> int:
        return self.reader.packets

    @property
    def bytes_read(self) -> int:
        return self.reader.bytes_read

    @property
    def clock_back(self) -> tuple[int, int, int]:
        """Where the capture's clock went backwards: (packets earlier than the packet
        before them, the largest step back in ns, the first such packet of the file,
        1-based; 0 if none)."""
        r = self.reader
        return r.clock_back, r.clock_back_ns, r.clock_back_packet

    def batches(self, frame0: int, stats: DecodeStats) -> Iterator[tuple[SegmentBatch, int]]:
        for rb in self.reader.batches():
            if self.fast:
                from ..decode.fast import decode_fast   # compiled: for big inputs only
                yield decode_fast(rb, frame0, stats), len(rb)
            else:
                yield decode(rb, frame0, stats), len(rb)
            frame0 += len(rb)


Engine = Union[NativeEngine, ScapyEngine, TsharkEngine]


def open_input(path: str) -> tuple[BinaryIO, CaptureReader]:
    """Open one input read-only and commit to its format, or raise ``InputError``. A FIFO
    is waited for boundedly (``streams.open_fifo_for_reading``)."""
    if path == "-":
        if sys.stdin is None:
            raise InputError(path, "standard input is closed")
        raw: BinaryIO = sys.stdin.buffer
    else:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise InputError(path, "no such file") from None
        except OSError as exc:
            raise InputError(path, exc.strerror or str(exc)) from None
        if stat.S_ISDIR(st.st_mode):
            raise InputError(path, "is a directory, not a capture file")
        if stat.S_ISFIFO(st.st_mode):     # also a shell's <(...): /dev/fd/N
            raw = open_fifo_for_reading(path)
        else:
            try:
                raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
            except PermissionError:
                raise InputError(path, "permission denied") from None
            except OSError as exc:
                raise InputError(path, exc.strerror or str(exc)) from None
    try:
        return raw, CaptureReader(raw, path)
    except ValueError as exc:
        if path != "-":
            raw.close()
        raise InputError(path, str(exc)) from None
    except OSError as exc:
        if path != "-":
            raw.close()
        raise InputError(path, exc.strerror or str(exc)) from None


def open_engine(path: str, engine: str) -> tuple[Engine, Callable[[], None]]:
    """The engine that reads ``path``, and a function that closes what it opened.

    A file the native reader does not know (snoop, Network Monitor, ERF, ...) goes to the
    tshark engine when tshark is installed (the choice is recorded in ``inputs[].engine``);
    without tshark it is an ``InputError`` that says what to install.
    """
    try:
        raw, reader = open_input(path)
    except InputError as exc:
        if not exc.problem.startswith("not a pcap or pcapng capture") or not rereadable(path):
            raise      # (a stream: what tshark would need was read already)
        if not tshark_available():
            raise InputError(path, exc.problem + "; for other formats (snoop, Network Monitor, "
                             "ERF, ...) install tshark and use --engine tshark") from None
        complaint = tshark_can_read(path)
        if complaint is not None:
            raise InputError(path, "not a pcap or pcapng capture, nor any format tshark reads "
                             f"({complaint})") from None
        return TsharkEngine(path, None), lambda: None
    close: Callable[[], None] = (lambda: None) if path == "-" else raw.close
    if engine == "native":
        return NativeEngine(raw, reader), close
    close()
    if not rereadable(path):
        what = "standard input" if path == "-" else f"{path}, a FIFO or pipe"
        raise UsageError(f"the {engine} engine reads files, not {what} (the native engine reads "
                         "streams)")
    if engine == "scapy":
        return ScapyEngine(path, reader), lambda: None
    return TsharkEngine(path, reader.format), lambda: None
