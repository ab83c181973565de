"""Engines: ways of turning captured frames into ``SegmentBatch`` values.

Every engine yields the same model; nothing downstream knows which one ran.

- ``native``: pushscan's own streaming reader and vectorised decoder (the fast default);
- ``scapy``: scapy's streaming readers (``PcapReader``, pcap and pcapng, never ``rdpcap``)
  and scapy's dissection of the link layer, IP/IPv6 and TCP;
- ``tshark``: pyshark over tshark, asking tshark for frame, IP, TCP and ICMP layers
  only, with TCP analysis and reassembly turned off; reads every format tshark reads.

An engine's ``batches()`` yields ``(batch, frames)``: a batch and how many frames (of
any kind) it covered, so frame numbers continue across files.
"""
from __future__ import annotations

import ipaddress
import os
import shutil
import stat
import subprocess
import sys
from typing import Any, BinaryIO, Callable, Iterator, Optional, Union

import numpy as np

from ..decode import decode
from ..decode.icmp import icmp_text
from ..decode.options import NO_OPTIONS, Options, tcp_options
from ..errors import CaptureDamaged, InputError, UsageError
from ..model import (OPT_OTHER, SEGMENT, TS_MAX, TS_MIN, DecodeStats, IcmpError, Segment,
                     SegmentBatch, flow_key)
from .capture import CaptureReader
from .streams import open_fifo_for_reading, rereadable

ENGINES = ("native", "scapy", "tshark")
BATCH = 20_000
TSHARK_MISSING = "the tshark engine needs tshark: apt-get install tshark"


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


class SegmentBuilder:
    """Collects segments one at a time (for engines that see one packet at a time)."""

    def __init__(self) -> None:
        self.rows: list[Segment] = []
        self.icmp: list[IcmpError] = []
        self.data = bytearray()
        self.flows: list[Any] = []
        self.flow_index: dict[Any, int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, frame: int, ts: int, version: int, src: int, sport: int, dst: int, dport: int,
            flags: int, seq: int, ack: int, plen: int, payload: bytes, win: int, ttl: int,
            ipid: int, options: Options = NO_OPTIONS) -> None:
        if not TS_MIN <= ts <= TS_MAX:   # a broken or hostile capture's clock: times are
            ts = TS_MIN if ts < 0 else TS_MAX   # 64-bit nanoseconds downstream (packed)
        key, d = flow_key(version, src, sport, dst, dport)
        fi = self.flow_index.get(key)
        if fi is None:
            fi = self.flow_index[key] = len(self.flows)
            self.flows.append(key)
        self.rows.append(Segment(
            frame=frame, ts=ts, flow=fi, dir=d, flags=flags, seq=seq, ack=ack, plen=plen,
            pay_off=len(self.data), pay_len=len(payload), mss=options.mss,
            wscale=options.wscale, win=win, ttl=ttl, ipid=ipid, opts=options.kinds,
            tsval=options.tsval, tsecr=options.tsecr, body_end=0, head=0, tail=0))
        self.data += payload

    def add_icmp(self, frame: int, ts: int, version: int, src: int, sport: int, dst: int,
                 dport: int, origin: str, kind: int, code: int, mtu: int = 0) -> None:
        """An ICMP error from ``origin`` quoting the segment ``src:sport -> dst:dport``."""
        key, d = flow_key(version, src, sport, dst, dport)
        self.icmp.append(IcmpError(frame, ts, key, d, icmp_text(version, code, kind, mtu),
                                   origin, kind, code, mtu))

    def take(self) -> SegmentBatch:
        """The segments collected so far, as a batch; the builder starts afresh."""
        b = SegmentBatch(seg=np.array(self.rows, dtype=SEGMENT), data=bytes(self.data),
                         flows=self.flows, icmp=self.icmp)
        self.__init__()  # type: ignore[misc]
        return b


def _ip_int(text: str) -> int:
    return int(ipaddress.ip_address(text))


def _ip_text(text: str) -> str:
    """An address as the native decoder writes it (``ipaddress``'s canonical text)."""
    return str(ipaddress.ip_address(text))


class ScapyEngine:
    """scapy's own streaming readers and dissectors."""

    name = "scapy"

    def __init__(self, path: str, reader: CaptureReader) -> None:
        # loaded only when this engine is used; the layer modules register the link types
        import scapy.layers.inet  # noqa: F401
        import scapy.layers.inet6  # noqa: F401
        import scapy.layers.l2  # noqa: F401
        from scapy.utils import PcapReader

        self.format = reader.format
        self.link_types: dict[int, int] = {}
        self.packets = 0
        self.bytes_read = 0
        try:
            self._reader = PcapReader(path)
        except Exception as exc:  # scapy raises its own Scapy_Exception types
            raise InputError(path, f"scapy cannot read it: {exc}") from None

    def batches(self, frame0: int, stats: DecodeStats) -> Iterator[tuple[SegmentBatch, int]]:
        out = SegmentBuilder()
        frames = 0
        it = iter(self._reader)
        while True:
            try:
                pkt = next(it)
            except StopIteration:
                break
            except Exception as exc:  # a damaged record: keep what was read
                if frames:
                    yield out.take(), frames
                raise CaptureDamaged(f"scapy stopped reading: {exc}") from None
            frames += 1
            self.packets += 1
            scapy_segments(pkt, frame0 + frames, stats, out)
            if len(out) >= BATCH:
                yield out.take(), frames
                frame0 += frames
                frames = 0
        if frames:
            yield out.take(), frames
        self._note_link_types()

    def _note_link_types(self) -> None:
        """Link types as the reader declares them: the file's for pcap; for pcapng those
        of the interfaces scapy read (it does not say which packet came from which)."""
        if not self.packets:
            return
        declared = [i[0] for i in getattr(self._reader, "interfaces", [])]
        lt = getattr(self._reader, "linktype", None)
        for t in declared or ([lt] if lt is not None else []):
            self.link_types[t] = self.link_types.get(t, 0) + 1


def _scapy_time_ns(t: Any) -> int:
    """Nanoseconds from a scapy packet time: exact for the decimals its readers give; a
    float (its live sniffer: microsecond socket times) is rounded to the microsecond, as
    a pcap file stores it."""
    if isinstance(t, float):
        sec = int(t)
        return sec * 1_000_000_000 + int(round((t - sec) * 1_000_000)) * 1000
    return int(t * 1_000_000_000)


# scapy's names of the TCP option kinds it parses
_SCAPY_KINDS = {"EOL": 0, "NOP": 1, "MSS": 2, "WScale": 3, "SAckOK": 4, "SAck": 5,
                "Timestamp": 8, "AltChkSum": 14, "AltChkSumOpt": 15, "MD5": 19, "Mood": 25,
                "UTO": 28, "AO": 29, "TFO": 34}


def scapy_options(opts: Any) -> Options:
    """``Options`` from scapy's parsed TCP options."""
    mss, wscale, kinds, tsval, tsecr = 0, -1, 0, -1, -1
    for name, value in opts:
        kind = _SCAPY_KINDS.get(name, name) if isinstance(name, str) else name
        if not isinstance(kind, int) or kind in (0, 1):
            continue
        kinds |= (1 << kind) if kind < 31 else OPT_OTHER
        if kind == 2:
            mss = int(value)
        elif kind == 3:
            wscale = int(value)
        elif kind == 8:
            tsval, tsecr = int(value[0]), int(value[1])
    return Options(mss, wscale, kinds, tsval, tsecr)


def scapy_segments(pkt: Any, frame: int, stats: DecodeStats, out: SegmentBuilder) -> None:
    """Dissect one scapy packet (frame number ``frame``) into ``out`` with scapy's layers."""
    from scapy.layers.inet import ICMP, IP, TCP, IPerror, TCPerror
    from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6PacketTooBig, IPerror6, IPv6,
                                    IPv6ExtHdrDestOpt,
                                    IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)

    ext6 = (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting)
    stats.packets += 1
    ts = _scapy_time_ns(pkt.time)
    layer = pkt
    while layer is not None and type(layer) not in (IP, IPv6) and layer.payload:
        layer = layer.payload
    ip: Any
    if type(layer) is IP:
        ip, version = layer, 4
        if ip.flags.MF or ip.frag:
            stats.fragments += 1
            return
        l4 = ip.payload
        l4len = ip.len - ip.ihl * 4 if ip.len else len(bytes(ip)) - ip.ihl * 4
    elif type(layer) is IPv6:
        ip, version = layer, 6
        l4 = ip.payload
        l4len = ip.plen
        fragment = False
        while isinstance(l4, ext6 + (IPv6ExtHdrFragment,)):
            if isinstance(l4, IPv6ExtHdrFragment):
                fragment = fragment or bool(l4.offset or l4.m)
                l4len -= 8
            else:
                l4len -= (l4.len + 1) * 8
            l4 = l4.payload
        if fragment:
            stats.fragments += 1
            return
    else:
        stats.not_ip += 1
        return
    if type(l4) is TCP:
        hdr = (l4.dataofs or 5) * 4
        plen = l4len - hdr
        if plen < 0:
            stats.malformed += 1
            return
        payload = bytes(l4.payload)[:plen]
        stats.tcp_segments += 1
        if len(payload) < plen:
            stats.snaplen_cut += 1
        out.add(frame, ts, version, _ip_int(ip.src), l4.sport, _ip_int(ip.dst), l4.dport,
                int(l4.flags), l4.seq, l4.ack, plen, payload, int(l4.window),
                int(ip.ttl if version == 4 else ip.hlim), int(ip.id) if version == 4 else -1,
                scapy_options(l4.options))
    elif type(l4) is ICMP and l4.type == 3 and IPerror in l4 and TCPerror in l4:
        q, t = l4[IPerror], l4[TCPerror]
        if q.proto == 6:
            stats.icmp_errors += 1
            out.add_icmp(frame, ts, 4, _ip_int(q.src), t.sport, _ip_int(q.dst), t.dport,
                         _ip_text(ip.src), 3, int(l4.code), int(l4.nexthopmtu) if l4.code == 4 else 0)
    elif type(l4) in (ICMPv6DestUnreach, ICMPv6PacketTooBig) and IPerror6 in l4 and TCPerror in l4:
        q, t = l4[IPerror6], l4[TCPerror]
        stats.icmp_errors += 1
        too_big = type(l4) is ICMPv6PacketTooBig
        out.add_icmp(frame, ts, 6, _ip_int(q.src), t.sport, _ip_int(q.dst), t.dport,
                     _ip_text(ip.src), 2 if too_big else 1, int(l4.code), int(l4.mtu) if too_big else 0)
    else:
        stats.not_tcp += 1


class TsharkEngine:
    """pyshark over tshark; reads any format tshark reads."""

    name = "tshark"

    def __init__(self, path: str, fmt: Optional[str]) -> None:
        if shutil.which("tshark") is None:
            raise UsageError(TSHARK_MISSING)
        if path == "-":
            raise UsageError("the tshark engine reads files, not standard input")
        import pyshark  # loaded only when this engine is used

        self.format = fmt or "other (read by tshark)"
        self.link_types: dict[int, int] = {}
        self.packets = 0
        self.bytes_read = 0
        self._last_ts = 0
        self._cap = pyshark.FileCapture(
            path, keep_packets=False, use_json=True, include_raw=False,
            custom_parameters=["-j", "frame ip ipv6 tcp icmp icmpv6",
                               "--disable-protocol", "smtp", "--disable-protocol", "imf"],
            override_prefs={"tcp.desegment_tcp_streams": "FALSE",
                            "tcp.analyze_sequence_numbers": "FALSE",
                            "tcp.relative_sequence_numbers": "FALSE",
                            "tcp.calculate_timestamps": "FALSE",
                            "ip.defragment": "FALSE", "ipv6.defragment": "FALSE"})

    def batches(self, frame0: int, stats: DecodeStats) -> Iterator[tuple[SegmentBatch, int]]:
        out = SegmentBuilder()
        frames = 0
        try:
            for pkt in self._cap:
                frames += 1
                self.packets += 1
                frame = frame0 + frames
                self._last_ts = tshark_segments(pkt, frame, stats, out, self.link_types, self._last_ts)
                if len(out) >= BATCH:
                    yield out.take(), frames
                    frame0 += frames
                    frames = 0
        except Exception as exc:  # tshark's own complaint about a damaged file
            if frames:
                yield out.take(), frames
            raise CaptureDamaged(f"tshark stopped reading: {_last_line(exc)}") from None
        finally:
            try:
                self._cap.close()
            except Exception:  # pyshark reports tshark's exit status again on close
                pass
        if frames:
            yield out.take(), frames

def tshark_segments(pkt: Any, frame: int, stats: DecodeStats, out: SegmentBuilder,
                link_types: dict[int, int], last_ts: int) -> int:
    """Turn one pyshark packet into ``out``; returns its timestamp (ns). A packet without
    a time (a pcapng simple packet block) takes ``last_ts``."""
    stats.packets += 1
    info = pkt.frame_info
    lt = WTAP_TO_LINKTYPE.get(int(info.get_field("encap_type") or -1), -1)
    link_types[lt] = link_types.get(lt, 0) + 1
    epoch = info.get_field("time_epoch")
    if epoch is None:
        ts = last_ts
    else:
        sec, _, frac = epoch.partition(".")
        ts = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
    names = [layer.layer_name for layer in pkt.layers]
    version = 4 if "ip" in names else 6 if "ipv6" in names else 0
    if not version:
        stats.not_ip += 1
        return ts
    ip = pkt.ip if version == 4 else pkt.ipv6
    if "tcp" in names:
        tcp = pkt.tcp
        if int(tcp.len) < 0:
            stats.malformed += 1
            return ts
        plen = int(tcp.len)
        payload = bytes.fromhex(tcp.payload.replace(":", "")) if plen and "payload" in tcp.field_names else b""
        flags = int(tcp.flags, 16) & 0xFF
        options = NO_OPTIONS
        if "options" in tcp.field_names:
            raw_opts = bytes.fromhex(tcp.options.replace(":", ""))
            options = tcp_options(raw_opts, 0, len(raw_opts))
        stats.tcp_segments += 1
        if len(payload) < plen:
            stats.snaplen_cut += 1
        out.add(frame, ts, version, _ip_int(ip.src), int(tcp.srcport), _ip_int(ip.dst),
                int(tcp.dstport), flags, int(tcp.seq_raw), int(tcp.ack_raw), plen, payload,
                int(tcp.window_size_value), int(ip.ttl if version == 4 else ip.hlim),
                int(ip.id, 16) if version == 4 else -1, options)
    elif "icmp" in names or "icmpv6" in names:
        ic = pkt.icmp if version == 4 else pkt.icmpv6
        kind, code = int(ic.type), int(ic.code)
        if (kind == 3 if version == 4 else kind in (1, 2)) and ic.get_field("tcp") is not None:
            q = ic.get_field("ip") if version == 4 else ic.get_field("ipv6")
            t = ic.get_field("tcp")
            stats.icmp_errors += 1
            mtu = int(ic.get_field("mtu") or 0) if (version, kind, code) in ((4, 3, 4), (6, 2, 0)) else 0
            out.add_icmp(frame, ts, version, _ip_int(q.src), int(t.srcport), _ip_int(q.dst),
                         int(t.dstport), _ip_text(ip.src), kind, code, mtu)
        else:
            stats.not_tcp += 1
    else:
        stats.not_tcp += 1
    return ts


def _last_line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    useful = [x for x in lines if "error" in x.lower()] or lines
    return useful[0] if useful else type(exc).__name__


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


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


# tshark's encapsulation numbers (WTAP_ENCAP_*) of the link types pushscan decodes
WTAP_TO_LINKTYPE = {1: 1, 7: 101, 25: 113, 210: 276, 15: 0, 129: 228, 130: 229}
WTAP_ENCAP_MIME = "134"   # tshark opens any file it recognises (ELF, PNG, ...) this way


def _tshark_can_read(path: str) -> Optional[str]:
    """None if tshark reads the file as a packet capture, else why not (one line)."""
    try:
        r = subprocess.run(["tshark", "-r", path, "-c", "1", "-T", "fields", "-e", "frame.encap_type",
                            "-e", "frame.protocols"], capture_output=True, text=True, timeout=60,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return "tshark did not read its first packet within 60 s"
    if r.returncode == 0:
        encap, _, protocols = r.stdout.strip().partition("\t")
        if encap == WTAP_ENCAP_MIME:
            kind = protocols.rpartition(":")[2].upper() or "non-capture"
            return f"tshark sees {'an' if kind[0] in 'AEIOU' else 'a'} {kind} file, not packets"
        return None
    lines = [x for x in r.stderr.splitlines() if x.strip() and "Running as user" not in x]
    return lines[-1].strip() if lines else f"tshark exit code {r.returncode}"


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
        complaint = _tshark_can_read(path)
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
