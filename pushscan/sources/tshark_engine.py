"""The tshark engine: pyshark over tshark, for files (``TsharkEngine``) and live
capture (``sources.capture_program.Sniffer``). tshark dissects the frame, its tunnels
(MPLS, pseudowires, PPPoE, GRE, ERSPAN, VXLAN, Geneve, GTP-U, Teredo, IP in IP), IP and
TCP with TCP analysis and reassembly turned off; reads every format tshark reads.

pyshark reads tshark's PDML (XML), not its JSON: JSON keeps one layer of each name, so a
packet's inner IP header (and every MPLS label but one) would be lost.
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Any, Iterator, Optional

from ..decode.layers import Tunnel
from ..decode.options import NO_OPTIONS, tcp_options
from ..errors import CaptureDamaged, UsageError
from ..model import DecodeStats, SegmentBatch, TunnelInfo
from .builder import SegmentBuilder, TunnelNotes, hex_or_int, ip_int, ip_text

BATCH = 20_000
TSHARK_MISSING = "the tshark engine needs tshark: apt-get install tshark"
# The layers asked of tshark, and its settings: no TCP analysis, reassembly or SMTP.
LAYERS = "frame ip ipv6 tcp icmp icmpv6 mpls pwethcw pppoes gre erspan vxlan geneve gtp teredo"
PARAMETERS = ["-j", LAYERS, "--disable-protocol", "smtp", "--disable-protocol", "imf"]
PREFERENCES = {"tcp.desegment_tcp_streams": "FALSE", "tcp.analyze_sequence_numbers": "FALSE",
               "tcp.relative_sequence_numbers": "FALSE", "tcp.calculate_timestamps": "FALSE",
               "ip.defragment": "FALSE", "ipv6.defragment": "FALSE"}


def tshark_available() -> bool:
    return shutil.which("tshark") is not None


class TsharkEngine:
    """pyshark over tshark; reads any format tshark reads."""

    name = "tshark"

    def __init__(self, path: str, fmt: Optional[str]) -> None:
        if not tshark_available():
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
            path, keep_packets=False, use_json=False, include_raw=False,
            custom_parameters=PARAMETERS, override_prefs=PREFERENCES)

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
            close_quietly(self._cap)
        if frames:
            yield out.take(), frames

def close_quietly(cap: Any) -> None:
    """Close a pyshark capture: it reports tshark's exit status again on close (said
    already), and its destructor would close it once more."""
    try:
        cap.close()
    except Exception:  # noqa: BLE001 - tshark's status, reported where it happened
        pass
    cap.close = lambda: None


def tshark_segments(pkt: Any, frame: int, stats: DecodeStats, out: SegmentBuilder,
                    link_types: dict[int, int], last_ts: int) -> int:
    """Turn one pyshark packet into ``out``; returns its timestamp (ns). A packet without
    a time (a pcapng simple packet block) takes ``last_ts``."""
    stats.packets += 1
    # Fields by their full names: pyshark finds those in a dict, others by a scan.
    info = pkt.frame_info
    lt = WTAP_TO_LINKTYPE.get(int(info.get_field("frame.encap_type") or -1), -1)
    link_types[lt] = link_types.get(lt, 0) + 1
    epoch = info.get_field("frame.time_epoch")
    if epoch is None:
        ts = last_ts
    else:
        sec, _, frac = epoch.partition(".")
        ts = int(sec) * 1_000_000_000 + int((frac + "000000000")[:9])
    layers = pkt.layers
    names = [layer.layer_name for layer in layers]
    if "wlan" in names and "llc" not in names:
        wlan = layers[names.index("wlan")]
        if (hex_or_int(wlan.get_field("wlan.fc.protected")) or 0) and "data" in names[names.index("wlan"):]:
            stats.wlan_protected += 1
        else:
            stats.wlan_control += 1
        return ts
    at = max((i for i, n in enumerate(names) if n in ("ip", "ipv6")), default=-1)
    if at < 0:
        stats.not_ip += 1
        return ts
    ip, version = layers[at], 4 if names[at] == "ip" else 6
    rest = names[at + 1:]
    if "tcp" in rest:
        tcp = layers[at + 1 + rest.index("tcp")]
        field = tcp.get_field
        plen = int(field("tcp.len"))
        if plen < 0:
            stats.malformed += 1
            return ts
        payload = b""
        if plen:
            shown = field("tcp.payload")
            payload = bytes.fromhex(shown.replace(":", "")) if shown else b""
        flags = int(field("tcp.flags"), 16) & 0xFF
        options = NO_OPTIONS
        if int(field("tcp.hdr_len") or 20) > 20:
            shown = field("tcp.options")
            if shown:
                raw_opts = bytes.fromhex(shown.replace(":", ""))
                options = tcp_options(raw_opts, 0, len(raw_opts))
        stats.tcp_segments += 1
        if len(payload) < plen:
            stats.snaplen_cut += 1
        tunnel = _tunnel(layers, names, at)
        if tunnel is not None:
            stats.tunneled += 1
        p = "ip." if version == 4 else "ipv6."
        out.add(frame, ts, version, ip_int(ip.get_field(p + "src")), int(field("tcp.srcport")),
                ip_int(ip.get_field(p + "dst")), int(field("tcp.dstport")), flags,
                int(field("tcp.seq_raw")), int(field("tcp.ack_raw")), plen, payload,
                int(field("tcp.window_size_value")),
                int(ip.get_field("ip.ttl") if version == 4 else ip.get_field("ipv6.hlim")),
                int(ip.get_field("ip.id"), 16) if version == 4 else -1, options, tunnel)
    elif "icmp" in rest or "icmpv6" in rest:
        own = "icmp" if version == 4 else "icmpv6"   # not ICMPv6 inside IPv4
        _icmp(layers[at + 1 + rest.index(own)] if own in rest else None,
              frame, ts, version, ip, stats, out)
    else:
        stats.not_tcp += 1
    return ts


def _icmp(ic: Any, frame: int, ts: int, version: int, ip: Any, stats: DecodeStats,
          out: SegmentBuilder) -> None:
    """An ICMP or ICMPv6 message: an error that quotes a TCP segment is noted; anything
    else (an echo, an error about UDP, ICMPv6 inside IPv4) is not TCP."""
    if ic is None:
        stats.not_tcp += 1
        return
    own = "icmp." if version == 4 else "icmpv6."
    kind, code = int(ic.get_field(own + "type")), int(ic.get_field(own + "code"))
    error = kind == 3 if version == 4 else kind in (1, 2)
    # PDML puts the quoted packet's fields in the ICMP layer (ip.src, tcp.srcport, ...)
    q = "ip." if version == 4 else "ipv6."
    quoted = [ic.get_field(name) for name in (q + "src", "tcp.srcport", q + "dst", "tcp.dstport")] \
        if error else []
    if not error or None in quoted:
        stats.not_tcp += 1
        return
    stats.icmp_errors += 1
    mtu = int(ic.get_field(own + "mtu") or 0) if (version, kind, code) in ((4, 3, 4), (6, 2, 0)) else 0
    src, sport, dst, dport = quoted
    out.add_icmp(frame, ts, version, ip_int(src), int(sport), ip_int(dst), int(dport),
                 ip_text(ip.get_field(q + "src")), kind, code, mtu,
                 numbered=ic.get_field("tcp.stream") is not None)


# tshark's tunnel layers: (layer name, what it is, the field of its id)
_TSHARK_TUNNELS = {"mpls": (Tunnel.MPLS, "mpls.label"), "pwethcw": (Tunnel.PSEUDOWIRE, None),
                   "pwethheuristic": (Tunnel.PSEUDOWIRE, None), "pwethnocw": (Tunnel.PSEUDOWIRE, None),
                   "pppoes": (Tunnel.PPPOE, "pppoe.session_id"), "erspan": (Tunnel.ERSPAN, "erspan.spanid"),
                   "vxlan": (Tunnel.VXLAN, "vxlan.vni"), "geneve": (Tunnel.GENEVE, "geneve.vni"),
                   "gtp": (Tunnel.GTPU, "gtp.teid"), "teredo": (Tunnel.TEREDO, None)}
_ETH_OVER_GRE = 0x6558


def _tunnel(layers: Any, names: list[str], inner: int) -> Optional[TunnelInfo]:
    """What the packet came through on the way to its IP layer at ``inner``."""
    notes = TunnelNotes()
    for i in range(inner + 1):
        name = names[i]
        if name in ("ip", "ipv6"):
            if i < inner:
                layer = layers[i]
                notes.carrier(4 if name == "ip" else 6, layer.get_field(name + ".src"),
                              layer.get_field(name + ".dst"), ip_in_ip=names[i + 1] in ("ip", "ipv6"))
        elif name == "gre":
            gre = layers[i]
            notes.layer(Tunnel.GRE, hex_or_int(gre.get_field("gre.key")))
            if hex_or_int(gre.get_field("gre.proto")) == _ETH_OVER_GRE:
                notes.layer(Tunnel.GRE_ETHERNET)
        elif name in _TSHARK_TUNNELS:
            kind, field = _TSHARK_TUNNELS[name]
            notes.layer(kind, hex_or_int(layers[i].get_field(field)) if field else None)
    return notes.info()


def _last_line(exc: BaseException) -> str:
    lines = [x.strip() for x in str(exc).splitlines() if x.strip()]
    useful = [x for x in lines if "error" in x.lower()] or lines
    return useful[0] if useful else type(exc).__name__


# tshark's encapsulation numbers (WTAP_ENCAP_*) of the link types pushscan decodes
WTAP_TO_LINKTYPE = {1: 1, 7: 101, 25: 113, 210: 276, 15: 0, 129: 228, 130: 229,
                    4: 9,        # PPP (tshark also reads PPP in HDLC framing, 50, as this)
                    28: 104, 23: 127, 83: 178, 141: 239, 180: 242}
WTAP_ENCAP_MIME = "134"   # tshark opens any file it recognises (ELF, PNG, ...) this way


def tshark_can_read(path: str) -> Optional[str]:
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
