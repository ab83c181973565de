"""Streaming reader for pcap and pcapng, plain or gzip-compressed, from a file or a pipe.

The reader reads the magic number, commits to a format, and never seeks: it works on
pipes (``tcpdump -w - | pushscan analyze -``). It yields ``RawBatch`` values: one buffer
of file bytes plus numpy columns locating each packet in it, so memory is bounded by the
batch size, never by the file size.

A damaged tail (truncated record, impossible length, bad block) stops the reading of
that file with ``CaptureDamaged`` *after* every complete packet before it was yielded.

Big plain (not compressed) pcap and pcapng files read with the compiled scanners
(``fast``) are memory-mapped instead: batches point into the mapping (no copies), and
pages already analysed are released from the process (they stay in the page cache), so
resident memory stays flat. In pcapng, runs of enhanced packet blocks go through the
compiled scanner; every other block through the Python code, the reference.
"""
from __future__ import annotations

import mmap
import os
import stat
import struct
import zlib
from typing import Any, BinaryIO, Iterator

import numpy as np

from ..errors import CaptureDamaged
from ..model import TS_MAX, RawBatch
from . import scan
from .mapping import broken, map_leased, prepare, shrunk

CHUNK = 4 << 20            # bytes read per step
BATCH = 16384              # packets per batch at most, so memory does not depend on packet size
MAX_RECORD = 1 << 20       # larger captured lengths are treated as corruption
MAX_BLOCK = 16 << 20       # larger pcapng blocks are treated as corruption

PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1": ("<", 1000),   # microseconds, little-endian
    b"\xa1\xb2\xc3\xd4": (">", 1000),
    b"\x4d\x3c\xb2\xa1": ("<", 1),      # nanoseconds
    b"\xa1\xb2\x3c\x4d": (">", 1),
}
PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
GZIP_MAGIC = b"\x1f\x8b"
# Compressed formats pushscan does not read, by their magic: name, and how to decompress
COMPRESSED = ((b"\xfd7zX", "xz", "xz -dc"), (b"BZh", "bzip2", "bzip2 -dc"),
              (b"\x28\xb5\x2f\xfd", "zstd", "zstd -dc"), (b"\x04\x22\x4d\x18", "lz4", "lz4 -dc"),
              (b"PK\x03\x04", "zip", "unzip -p"), (b"7z\xbc\xaf", "7z", "7z x -so"),
              (b"\x1f\x9d", "compress (.Z)", "gzip -dc"))
# The smallest length of each pcapng block type pushscan reads (header, fields, trailer)
MIN_BLOCK = {0x0A0D0D0A: 28, 1: 20, 2: 32, 3: 16, 5: 24, 6: 32}
REUSED = ("another program opened the file for writing or truncated it while it was read "
          "(a capture ring reusing it?)")
SHRUNK = "the file shrank while it was read (truncated by another program?)"


def _compressed(magic: bytes, inside_gzip: bool) -> str | None:
    """Why ``magic`` cannot be read, if it is a compressed format pushscan does not read."""
    if inside_gzip and magic[:2] == GZIP_MAGIC:
        return ("gzip inside gzip: decompress it once first "
                "(gzip -dc FILE | pushscan analyze -)")
    for head, name, command in COMPRESSED:
        if magic.startswith(head) and (name != "bzip2" or magic[3:4].isdigit()):
            where = " inside gzip" if inside_gzip else ""
            return (f"{name}-compressed data{where}: pushscan reads plain and gzip-compressed "
                    f"captures; decompress it first ({command} FILE | pushscan analyze -)")
    return None


class _Prefixed:
    """A read-only stream that first returns ``prefix``, then the rest of ``raw``."""

    def __init__(self, prefix: bytes, raw: BinaryIO) -> None:
        self._prefix = prefix
        self._raw = raw

    def read(self, n: int = -1) -> bytes:
        if self._prefix:
            head, self._prefix = self._prefix, b""
            if n < 0:
                return head + self._raw.read()
            if len(head) >= n:
                self._prefix = head[n:]
                return head[:n]
            return head + self._raw.read(n - len(head))
        return self._raw.read(n)


class _Gunzip:
    """Streams a gzip file (one or more members) from ``raw``, read-only and without
    seeking. Unlike ``gzip.GzipFile``, every byte decompressed before a cut or corrupt
    spot is returned first; the error comes on the next read."""

    def __init__(self, raw: BinaryIO | _Prefixed) -> None:
        self._raw = raw
        self._z = zlib.decompressobj(31)
        self._out = bytearray()
        self._error: BaseException | None = None
        self._done = False

    def _fill(self, n: int) -> None:
        while len(self._out) < n and not self._done and self._error is None:
            chunk = self._raw.read(1 << 16)
            try:
                if not chunk:
                    if not self._z.eof:
                        self._error = EOFError("gzip stream ends early")
                    self._done = True
                    self._out += self._z.flush()
                    return
                saved = self._z.copy()
                try:
                    self._feed(chunk)
                except zlib.error:
                    # zlib gives nothing back from a failing call: replay the chunk in
                    # small pieces to keep every byte before the corrupt spot
                    self._z = saved
                    for i in range(0, len(chunk), 256):
                        self._feed(chunk[i:i + 256])
            except zlib.error as exc:
                self._error = exc

    def _feed(self, chunk: bytes) -> None:
        self._out += self._z.decompress(chunk)
        while self._z.eof and self._z.unused_data:   # another gzip member follows
            rest = self._z.unused_data
            self._z = zlib.decompressobj(31)
            self._out += self._z.decompress(rest)

    def read(self, n: int = -1) -> bytes:
        self._fill(n if n >= 0 else 1 << 62)
        if not self._out and self._error is not None:
            raise self._error
        take = len(self._out) if n < 0 else min(n, len(self._out))
        data = bytes(self._out[:take])
        del self._out[:take]
        return data


def _read_full(stream: BinaryIO | _Prefixed | _Gunzip, n: int) -> bytes:
    parts = []
    while n > 0:
        b = stream.read(n)
        if not b:
            break
        parts.append(b)
        n -= len(b)
    return b"".join(parts)


def _gzip_error_text(exc: BaseException) -> str:
    if isinstance(exc, EOFError):
        return "gzip stream ends early"
    return f"gzip data is corrupt ({exc})"


class CaptureReader:
    """Reads one capture stream. Attributes describe what was found so far.

    ``format`` is ``pcap``, ``pcap-ns`` or ``pcapng`` (with ``+gzip`` when compressed);
    ``link_types`` maps LINKTYPE values to packet counts.
    """

    def __init__(self, raw: BinaryIO, name: str) -> None:
        self.name = name
        self.link_types: dict[int, int] = {}
        self.packets = 0
        self.bytes_read = 0
        self._last_ts = 0
        self.drops: dict[int, int] = {}   # interface -> packets the kernel dropped (pcapng ISB)
        self.fast = False                 # compiled scanner from the first packet on
        self.clock_back = 0               # packets earlier than the one before (see _clock)
        self.clock_back_ns = 0
        self.clock_back_packet = 0
        self._prev_ts: int | None = None
        self._raw = raw
        stream: BinaryIO | _Prefixed | _Gunzip = raw
        magic = _read_full(stream, 4)
        compressed = False
        if magic[:2] == GZIP_MAGIC:
            compressed = True
            stream = _Gunzip(_Prefixed(magic, raw))
            try:
                magic = _read_full(stream, 4)
            except (OSError, EOFError, zlib.error) as exc:
                raise ValueError(_gzip_error_text(exc)) from None
        self._stream = stream
        self._compressed = compressed
        self.bytes_read = len(magic)
        if not magic:
            raise ValueError("empty file" if not compressed else "empty gzip stream")
        packed = _compressed(magic, compressed)
        if packed is not None:
            raise ValueError(packed)
        if magic in PCAP_MAGICS:
            self._kind = "pcap"
            self._endian, self._tsmul = PCAP_MAGICS[magic]
            self.format = "pcap" if self._tsmul == 1000 else "pcap-ns"
            rest = self._header(20)
            if len(rest) < 20:
                raise ValueError("truncated pcap file header")
            magic += rest
        elif magic == PCAPNG_SHB:
            self._kind = "pcapng"
            self.format = "pcapng"
            rest = self._header(8)
            if len(rest) < 8:
                raise ValueError("truncated pcapng section header")
            if rest[4:8] not in (b"\x4d\x3c\x2b\x1a", b"\x1a\x2b\x3c\x4d"):
                raise ValueError("pcapng section header has a bad byte-order magic")
            (blen,) = struct.unpack("<I" if rest[4:8] == b"\x4d\x3c\x2b\x1a" else ">I", rest[:4])
            if blen < MIN_BLOCK[0x0A0D0D0A] or blen % 4 or blen > MAX_BLOCK:
                # the first block is the file's header: without it nothing can be read
                raise ValueError(f"pcapng section header has a bad length {blen}")
            magic += rest
        else:
            raise ValueError("not a pcap or pcapng capture (unknown magic number "
                             f"{magic.hex()})")
        if compressed:
            self.format += "+gzip"
        self._head = magic
        self._file_fd = self._regular_fd(raw)    # a regular file: watched for shrinking
        self._leased_fd = -1                     # mapped under a lease (sources.mapping)

    @staticmethod
    def _regular_fd(raw: Any) -> int:
        try:
            fd = int(raw.fileno())
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return -1
        except (AttributeError, OSError, ValueError):
            return -1
        prepare()        # now, on the thread that opens: it may be mapped on another
        return fd

    def _header(self, n: int) -> bytes:
        try:
            b = _read_full(self._stream, n)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(_gzip_error_text(exc) if self._compressed else str(exc)) from None
        self.bytes_read += len(b)
        return b

    # -- raw byte supply -------------------------------------------------------------
    def _read(self, n: int) -> bytes:
        try:
            b = self._stream.read(n)
        except (OSError, EOFError, zlib.error) as exc:
            if self._compressed:
                raise CaptureDamaged(_gzip_error_text(exc)) from None
            raise CaptureDamaged(f"read error: {exc}") from None
        if self._file_fd >= 0 and shrunk(self._file_fd, self._raw.tell()):
            raise CaptureDamaged(SHRUNK)
        self.bytes_read += len(b)
        return b

    def batches(self) -> Iterator[RawBatch]:
        """Yield batches of packets in file order until the end or the first damage."""
        mm = self._mapped()
        if self._kind == "pcap":
            yield from (self._pcap_mapped(mm) if mm is not None else self._pcap())
        else:
            yield from self._pcapng(mm)

    # -- pcap ------------------------------------------------------------------------
    def _pcap_header(self) -> tuple[int, int, bool]:
        """The pcap file header's link type, the largest record length believed, and
        whether the file is big-endian."""
        snaplen, network = struct.unpack(self._endian + "II", self._head[16:24])
        return network & 0x0FFFFFFF, max(MAX_RECORD, snaplen if snaplen < (64 << 20) else 0), \
            self._endian == ">"

    def _pcap_batch(self, buf: Any, linktype: int, k: int, offs: Any, caps: Any, origs: Any,
                    secs: Any, fracs: Any) -> RawBatch:
        """The k records just scanned in ``buf``, counted."""
        ts = secs * 1_000_000_000 + fracs * self._tsmul
        self._clock(ts)
        self.packets += k
        self.link_types[linktype] = self.link_types.get(linktype, 0) + k
        return RawBatch(buf, offs, caps, origs, ts, np.full(k, linktype, dtype=np.int64))

    def _clock(self, ts: np.ndarray) -> None:
        """Note where the capture's clock went backwards (a clock step on the capturing
        host): ``clock_back`` packets, by ``clock_back_ns`` at most, first at packet
        ``clock_back_packet`` of this file (1-based)."""
        if not len(ts):
            return
        steps = np.diff(ts, prepend=ts[0] if self._prev_ts is None else self._prev_ts)
        back = steps < 0
        if back.any():
            if not self.clock_back:
                self.clock_back_packet = self.packets + int(np.argmax(back)) + 1
            self.clock_back += int(back.sum())
            self.clock_back_ns = max(self.clock_back_ns, int(-steps.min()))
        self._prev_ts = int(ts[-1])

    def _pcap(self) -> Iterator[RawBatch]:
        linktype, limit, big = self._pcap_header()
        buf = b""
        pos = 0
        eof = False
        need = True
        while True:
            if need and not eof:
                more = self._read(CHUNK)
                eof = not more
                buf = buf[pos:] + more if pos < len(buf) else more
                pos = 0
            k, end, damaged, offs, caps, origs, secs, fracs = scan.choose(self.packets, fast=self.fast)(
                buf, pos, big, limit, BATCH)
            if k:
                yield self._pcap_batch(buf, linktype, k, offs, caps, origs, secs, fracs)
            if damaged:
                at = self.bytes_read - len(buf) + end
                raise CaptureDamaged(f"record at byte {at} claims an impossible length")
            pos = end
            need = k < BATCH
            if need and eof:
                break
        if pos < len(buf):
            raise CaptureDamaged(f"truncated record at the end ({len(buf) - pos} bytes left over)")

    def _mapped(self) -> mmap.mmap | None:
        """The whole file mapped read-only, for a big plain (not compressed) file read
        fast, under a read lease that keeps other programs from changing it meanwhile
        (``sources.mapping``); None: read it with ``read()``."""
        if not self.fast or self._compressed or self._file_fd < 0:
            return None
        try:
            if self._raw.tell() != len(self._head):
                return None
        except (OSError, ValueError):
            return None
        mm = map_leased(self._file_fd)
        if mm is not None:
            self._leased_fd = self._file_fd
        return mm

    def _still_leased(self) -> None:
        """Before each batch of a mapped file: stop if another program wants to change
        the file (it waits until pushscan lets go of it)."""
        if broken(self._leased_fd):
            raise CaptureDamaged(REUSED)

    def _pcap_mapped(self, mm: mmap.mmap) -> Iterator[RawBatch]:
        """``_pcap`` over a mapping: same batches, same errors."""
        linktype, limit, big = self._pcap_header()
        size = len(mm)
        pos = 24
        done = 0        # pages before this offset are released
        starts: list[int] = []
        while True:
            self._still_leased()
            k, end, damaged, offs, caps, origs, secs, fracs = scan.scan_pcap_compiled(
                mm, pos, big, limit, BATCH)  # type: ignore[arg-type]
            if k:
                self.bytes_read = end
                yield self._pcap_batch(mm, linktype, k, offs, caps, origs, secs, fracs)
                done = _release(mm, starts, pos, done)
            if damaged:
                raise CaptureDamaged(f"record at byte {end} claims an impossible length")
            pos = end
            if k < BATCH:
                break
        self.bytes_read = size
        if pos < size:
            raise CaptureDamaged(f"truncated record at the end ({size - pos} bytes left over)")

    # -- pcapng ----------------------------------------------------------------------
    def _pcapng(self, mm: mmap.mmap | None = None) -> Iterator[RawBatch]:
        """pcapng blocks, from the stream or from the whole file mapped (``mm``: same
        batches, same errors). Runs of enhanced packet blocks go through the compiled
        scanner once the input is known to be big (``scan.compiled_ready``); every other
        block, and any block it does not take, through the code below (the reference)."""
        buf: Any = self._head if mm is None else mm
        base = 0       # file offset of buf[0]
        pos = 0
        e = "<"
        ifaces: list[tuple[int, int, int, int]] = []  # (linktype, snaplen, ts_num, ts_den)
        eof = mm is not None
        first = True
        stalled = False   # the buffer holds no complete block after pos: must read more
        done = 0          # mapped: pages before this offset are released
        starts: list[int] = []
        while True:
            if mm is not None:
                self._still_leased()
            if not eof and (stalled or len(buf) - pos < CHUNK):
                more = self._read(CHUNK)
                eof = not more
                buf = buf[pos:] + more
                base += pos
                pos = 0
            n = len(buf)
            start = pos
            fast = scan.compiled_ready(self.packets, fast=self.fast)
            cols: list[tuple[np.ndarray, ...]] = []   # packets of the batch so far, in parts
            count = 0
            offs: list[int] = []     # the current part, from the code below
            caps: list[int] = []
            origs: list[int] = []
            rawts: list[int] = []
            ifs: list[int] = []
            damaged = None
            while pos + 12 <= n and count < BATCH:
                if fast and struct.unpack_from(e + "I", buf, pos)[0] == 6:
                    k, end, *run = scan.scan_epb_compiled(buf, pos, e == ">", len(ifaces),
                                                          MAX_BLOCK, BATCH - count)
                    if k:
                        if offs:
                            cols.append(_part(offs, caps, origs, rawts, ifs))
                            offs, caps, origs, rawts, ifs = [], [], [], [], []
                        cols.append(tuple(run))
                        count += k
                        pos = end
                        first = False
                        continue
                btype_b = buf[pos:pos + 4]
                if btype_b == PCAPNG_SHB:
                    bom = buf[pos + 8:pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        e = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        e = ">"
                    else:
                        damaged = "pcapng section header has a bad byte-order magic"
                        break
                btype, blen = struct.unpack_from(e + "II", buf, pos)
                if blen < 12 or blen % 4 or blen > MAX_BLOCK:
                    damaged = f"pcapng block at byte {base + pos} has a bad length {blen}"
                    break
                if blen < MIN_BLOCK.get(btype, 12):
                    damaged = (f"pcapng block at byte {base + pos} is too short for its type "
                               f"{btype} ({blen} bytes)")
                    break
                if pos + blen > n:
                    break
                if btype == 6:  # enhanced packet block
                    iface, tsh, tsl, cap, orig = struct.unpack_from(e + "IIIII", buf, pos + 8)
                    if iface >= len(ifaces) or 28 + cap > blen:
                        damaged = f"pcapng packet block at byte {base + pos} is inconsistent"
                        break
                    offs.append(pos + 28)
                    caps.append(cap)
                    origs.append(orig)
                    rawts.append(min((tsh << 32) | tsl, TS_MAX))
                    ifs.append(iface)
                    count += 1
                elif btype == 3:  # simple packet block
                    if not ifaces:
                        damaged = "pcapng simple packet block before any interface"
                        break
                    (orig,) = struct.unpack_from(e + "I", buf, pos + 8)
                    snap = ifaces[0][1] or orig
                    cap = min(orig, snap, blen - 16)
                    offs.append(pos + 12)
                    caps.append(cap)
                    origs.append(orig)
                    rawts.append(-1)
                    ifs.append(0)
                    count += 1
                elif btype == 2:  # obsolete packet block
                    iface, _drops, tsh, tsl, cap, orig = struct.unpack_from(e + "HHIIII", buf, pos + 8)
                    if iface >= len(ifaces) or 28 + cap > blen:
                        damaged = "pcapng packet block is inconsistent"
                        break
                    offs.append(pos + 28)
                    caps.append(cap)
                    origs.append(orig)
                    rawts.append(min((tsh << 32) | tsl, TS_MAX))
                    ifs.append(iface)
                    count += 1
                elif btype == 5:  # interface statistics block: kernel drops
                    iface_id = struct.unpack_from(e + "I", buf, pos + 8)[0]
                    drops = _isb_ifdrop(buf, pos + 20, pos + blen - 4, e)
                    if drops is not None:
                        self.drops[iface_id] = drops
                elif btype == 1:  # interface description block
                    lt, _res, snap = struct.unpack_from(e + "HHI", buf, pos + 8)
                    num, den = _if_tsresol(buf, pos + 16, pos + blen - 4, e)
                    ifaces.append((lt, snap, num, den))
                elif btype == 0x0A0D0D0A:
                    # a new section renumbers interfaces: flush packets of the old one first
                    if offs:
                        cols.append(_part(offs, caps, origs, rawts, ifs))
                        offs, caps, origs, rawts, ifs = [], [], [], [], []
                    if cols:
                        yield self._ng_batch(buf, cols, ifaces)
                        cols, count = [], 0
                    ifaces = []
                elif first:
                    damaged = "pcapng file does not start with a section header"
                    break
                first = False
                pos += blen
            if offs:
                cols.append(_part(offs, caps, origs, rawts, ifs))
            if cols:
                yield self._ng_batch(buf, cols, ifaces)
            if damaged:
                raise CaptureDamaged(damaged)
            if mm is not None:
                self.bytes_read = pos
                done = _release(mm, starts, start, done)
            stalled = pos == start
            if count >= BATCH:
                continue   # more complete blocks may wait in the buffer: no read yet
            if eof:
                if pos < n:
                    raise CaptureDamaged(f"truncated block at the end ({n - pos} bytes left over)")
                return

    def _ng_batch(self, buf: Any, cols: list[tuple[np.ndarray, ...]],
                  ifaces: list[tuple[int, int, int, int]]) -> RawBatch:
        offs, caps, origs, raw, ifa = (np.concatenate(c) if len(cols) > 1 else c[0]
                                       for c in zip(*cols))
        k = len(offs)
        lts = np.array([i[0] for i in ifaces], dtype=np.int64)[ifa]
        ts = np.zeros(k, dtype=np.int64)
        for idx, (_lt, _snap, num, den) in enumerate(ifaces):
            m = ifa == idx
            if m.any():
                # ts units are num/den seconds; convert to ns without float rounding (a
                # time past 64-bit nanoseconds, hostile or broken, is kept at the limit)
                r = raw[m]
                if (num * 1_000_000_000) % den == 0:
                    mul = num * 1_000_000_000 // den
                    ts[m] = np.where(r > TS_MAX // mul, TS_MAX, r * mul)
                else:
                    f = r.astype(np.float64) * (num * 1e9 / den)
                    ts[m] = np.where(f >= float(TS_MAX), TS_MAX, f.astype(np.int64))
        missing = raw < 0
        if missing.any():
            # simple packet blocks carry no timestamp: they take the previous packet's
            prev = np.maximum.accumulate(np.where(missing, -1, np.arange(k)))
            ts[missing] = np.where(prev[missing] >= 0, ts[np.maximum(prev[missing], 0)],
                                   self._last_ts)
        self._last_ts = int(ts[-1])
        self._clock(ts)
        self.packets += k
        for lt, cnt in zip(*np.unique(lts, return_counts=True)):
            self.link_types[int(lt)] = self.link_types.get(int(lt), 0) + int(cnt)
        return RawBatch(buf, offs, caps, origs, ts, lts)


def _release(mm: mmap.mmap, starts: list[int], start: int, done: int) -> int:
    """A batch from ``start`` was handed on; the pages of batches older than the
    read-ahead are done with and given back (they stay in the page cache). Returns the
    offset below which pages are given back now."""
    starts.append(start)
    if len(starts) > 4:
        upto = starts.pop(0) // mmap.PAGESIZE * mmap.PAGESIZE
        if upto > done and hasattr(mm, "madvise"):
            mm.madvise(mmap.MADV_DONTNEED, done, upto - done)
            return upto
    return done


def _part(offs: list[int], caps: list[int], origs: list[int], rawts: list[int],
          ifs: list[int]) -> tuple[np.ndarray, ...]:
    """Packets the reference code located, as the compiled scanner's columns."""
    return tuple(np.array(x, dtype=np.int64) for x in (offs, caps, origs, rawts, ifs))


def _isb_ifdrop(buf: bytes, pos: int, end: int, e: str) -> int | None:
    """The isb_ifdrop option (packets dropped by the interface/kernel) of a statistics block."""
    while pos + 4 <= end:
        code, length = struct.unpack_from(e + "HH", buf, pos)
        if code == 0:
            break
        if code == 5 and length == 8 and pos + 12 <= end:
            return int(struct.unpack_from(e + "Q", buf, pos + 4)[0])
        pos += 4 + ((length + 3) & ~3)
    return None


def _if_tsresol(buf: bytes, pos: int, end: int, e: str) -> tuple[int, int]:
    """Return the interface timestamp unit as a fraction num/den of a second."""
    num, den = 1, 1_000_000
    while pos + 4 <= end:
        code, length = struct.unpack_from(e + "HH", buf, pos)
        if code == 0:
            break
        if code == 9 and length >= 1:
            v = buf[pos + 4]
            if v & 0x80:
                num, den = 1, 1 << (v & 0x7F)
            else:
                num, den = 1, 10 ** v
        pos += 4 + ((length + 3) & ~3)
    return num, den
