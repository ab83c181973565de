"""Record real TCP/SMTP failures between Linux TCP stacks. Needs root.

    .venv/bin/python captures/record_causes.py [OUTDIR] [--only NAME ...]

Every scenario builds three fresh network namespaces

    pscap-cli  192.0.2.10/24  veth-c  ==  veth-ra 192.0.2.1/24    pscap-rtr
    pscap-srv  198.51.100.25/24 veth-s == veth-rb 198.51.100.1/24 pscap-rtr (forwarding)

runs a real server (a small scripted SMTP server on Python sockets, or aiosmtpd) in
pscap-srv and a real client (Python smtplib or swaks) in pscap-cli, breaks the path
with nftables rules in the router (or in the server) and with per-namespace sysctls,
and records the client's side with tcpdump on veth-c inside pscap-cli. Offloads are
switched off on every veth, so the capture holds wire-size segments with real
checksums. Packets the server sends arrive with TTL 63 (one hop); packets the router
makes itself (nft `reject`) arrive with TTL 64.

Each recording is checked (see the `check_*` functions) and written as
OUTDIR/NAME.pcap only when it shows what it should; otherwise the scenario is tried
once more, and a recording that still fails is left as NAME.pcap.tmp. The namespaces
(and with them the veths, nft tables and sysctls) are deleted after every scenario
and on any exit, Ctrl-C included.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import os
import signal
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiosmtpd.handlers import Sink
from aiosmtpd.smtp import SMTP

CLIENT, SERVER = "192.0.2.10", "198.51.100.25"
ROUTER_A, ROUTER_B = "192.0.2.1", "198.51.100.1"
NS_CLI, NS_RTR, NS_SRV = "pscap-cli", "pscap-rtr", "pscap-srv"
NAMESPACES = (NS_CLI, NS_RTR, NS_SRV)
CAPTURE_IFACE = "veth-c"          # the client's interface, inside NS_CLI
MAX_BYTES = 200_000               # every recording must stay well below this
FIRST_PORT = 40000                # scenario i uses client port FIRST_PORT + i

# ---------------------------------------------------------------------------
# commands, namespaces, offloads
# ---------------------------------------------------------------------------


def run(*cmd: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run a command quietly; on failure raise with its stderr."""
    r = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60, check=False)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def nsrun(ns: str, *cmd: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return run("ip", "netns", "exec", ns, *cmd, stdin=stdin)


def sysctl(ns: str, *settings: str, missing_ok: bool = False) -> None:
    """Set sysctls ("key=value") inside a namespace (net.* keys are per namespace)."""
    nsrun(ns, "sysctl", "-q", *(["-e"] if missing_ok else []), "-w", *settings)


def nft(ns: str, text: str) -> None:
    """Load nft commands or a ruleset (text) inside a namespace."""
    nsrun(ns, "nft", "-f", "-", stdin=text)


def remove_namespaces() -> None:
    """Delete this script's namespaces; their veths, nft tables and sysctls go with them."""
    for ns in NAMESPACES:
        if os.path.exists(f"/run/netns/{ns}"):
            run("ip", "netns", "del", ns, check=False)


_libc = ctypes.CDLL(None, use_errno=True)
_CLONE_NEWNET = 0x40000000


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


@contextlib.contextmanager
def in_netns(ns: str) -> Iterator[None]:
    """Run the block with the calling thread in namespace `ns` (setns is per thread).

    Sockets created inside stay in that namespace after the thread has left it, so
    one process can hold both the client's and the server's sockets."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


# Legacy ethtool ioctls (linux/ethtool.h): "get" is "set" - 1. Turning these off makes
# the kernel hand the capture real MSS-size segments with computed checksums.
_SIOCETHTOOL = 0x8946
_OFFLOADS = {"tx-checksum": 0x17, "scatter-gather": 0x19, "tso": 0x1F, "gso": 0x24, "gro": 0x2C}


def _ethtool(sock: socket.socket, ifname: str, cmd: int, value: int = 0) -> int:
    buf = ctypes.create_string_buffer(struct.pack("II", cmd, value))
    ifreq = ifname.encode().ljust(16, b"\0") + struct.pack("P", ctypes.addressof(buf)) + bytes(16)
    fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, ifreq)
    return struct.unpack("II", buf.raw[:8])[1]


def offloads_off(ns: str, ifname: str) -> None:
    with in_netns(ns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name, cmd in _OFFLOADS.items():
            with contextlib.suppress(OSError):
                _ethtool(s, ifname, cmd, 0)
            if _ethtool(s, ifname, cmd - 1):
                raise RuntimeError(f"{ns}/{ifname}: could not turn {name} off")


@contextlib.contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# ---------------------------------------------------------------------------
# the server side: one scripted SMTP session per scenario
# ---------------------------------------------------------------------------

STOP = object()   # returned by a command hook: the dialogue is over
EHLO_REPLY = ["mail.example.net", "PIPELINING", "8BITMIME", "SIZE 10240000"]


class Session:
    """One accepted connection on the server side, with line and body reading."""

    def __init__(self, conn: socket.socket, lab: Lab) -> None:
        self.conn, self.lab, self.buf = conn, lab, b""

    def send(self, *lines: str) -> None:
        self.conn.sendall("".join(f"{line}\r\n" for line in lines).encode())

    def reply(self, code: int, texts: list[str]) -> None:
        """A (multi-line) reply: `250-a`, `250-b`, `250 c`."""
        self.send(*(f"{code}{'-' if i < len(texts) - 1 else ' '}{t}" for i, t in enumerate(texts)))

    def _fill(self, timeout: float | None) -> bool:
        self.conn.settimeout(timeout)
        chunk = self.conn.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def readline(self, timeout: float | None = None) -> bytes | None:
        """The next command line, None at end of stream (TimeoutError on timeout)."""
        while b"\n" not in self.buf:
            if not self._fill(timeout):
                return None
        line, _, self.buf = self.buf.partition(b"\n")
        return line + b"\n"

    def read_body(self) -> bytes | None:
        """The DATA body up to and without the final dot line; None at end of stream."""
        while (end := self.buf.find(b"\r\n.\r\n")) < 0:
            if not self._fill(None):
                return None
        body, self.buf = self.buf[:end + 2], self.buf[end + 5:]
        return body

    def wait(self, seconds: float) -> None:
        """Sleep, but wake at once when the scenario is being torn down."""
        self.lab.stopping.wait(seconds)

    def abort(self) -> None:
        """Close with SO_LINGER on and a zero linger time: the kernel sends a RST."""
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.conn.close()

    def close(self) -> None:
        self.conn.close()


Hook = Callable[[Session, bytes], object]


def smtp_dialogue(s: Session, *, greet: bool = True, extensions: tuple[str, ...] = (),
                  on: dict[str, Hook] | None = None, idle: float | None = None) -> None:
    """A plain SMTP server loop. `on` maps a verb to a hook that answers it instead
    (a hook returning STOP ends the dialogue); `idle` is the seconds a command may
    take before the server gives up with 421, as real servers do."""
    on = on or {}
    if greet:
        s.send("220 mail.example.net ESMTP ready")
    while True:
        try:
            line = s.readline(timeout=idle)
        except TimeoutError:
            s.lab.note("server: idle, sends 421 and closes")
            s.send("421 4.4.2 mail.example.net Error: timeout exceeded")
            s.close()
            return
        if line is None:
            s.close()
            return
        verb = line.split(b" ", 1)[0].strip().upper().decode("ascii", "replace")
        if verb in on:
            if on[verb](s, line) is STOP:
                return
        elif verb == "EHLO":
            s.reply(250, EHLO_REPLY[:1] + list(extensions) + EHLO_REPLY[1:])
        elif verb == "HELO":
            s.send("250 mail.example.net")
        elif verb == "MAIL":
            s.send("250 2.1.0 Ok")
        elif verb == "RCPT":
            s.send("250 2.1.5 Ok")
        elif verb in ("RSET", "NOOP"):
            s.send("250 2.0.0 Ok")
        elif verb == "DATA":
            s.send("354 End data with <CR><LF>.<CR><LF>")
            if s.read_body() is None:
                s.close()
                return
            s.send("250 2.0.0 Ok: queued as 4XJ2Q0")
        elif verb == "QUIT":
            s.send("221 2.0.0 Bye")
            s.close()
            return
        else:
            s.send("502 5.5.2 Error: command not recognized")


# ---------------------------------------------------------------------------
# the lab: namespaces, capture, servers and clients of one scenario
# ---------------------------------------------------------------------------


@dataclass
class Lab:
    sport: int                        # the client's (fixed) source port
    pcap: Path                        # where tcpdump writes
    bpf: str = "ip"                   # capture filter (IPv4 only: no ARP)
    notes: list[str] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _socks: list[socket.socket] = field(default_factory=list)
    _handlers: list[threading.Thread] = field(default_factory=list)
    _stoppers: list[Callable[[], object]] = field(default_factory=list)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    _tcpdump: subprocess.Popen[bytes] | None = None
    _tcpdump_err: list[str] = field(default_factory=list)
    _t0: float = field(default_factory=time.monotonic)

    def note(self, text: str) -> None:
        self.notes.append(f"{time.monotonic() - self._t0:5.1f}s {text}")

    # -- topology -----------------------------------------------------------
    def build(self) -> None:
        remove_namespaces()
        for ns in NAMESPACES:
            run("ip", "netns", "add", ns)
            # no IPv6 on the links: no router solicitations, MLD reports, ...
            sysctl(ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1",
                   missing_ok=True)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", "veth-c", "netns", NS_CLI, "address", "02:00:00:00:0a:0a", "type", "veth",
            "peer", "name", "veth-ra", "netns", NS_RTR, "address", "02:00:00:00:0a:01")
        run("ip", "link", "add", "veth-rb", "netns", NS_RTR, "address", "02:00:00:00:0b:01", "type", "veth",
            "peer", "name", "veth-s", "netns", NS_SRV, "address", "02:00:00:00:0b:19")
        for ns, dev, addr in ((NS_CLI, "veth-c", f"{CLIENT}/24"), (NS_RTR, "veth-ra", f"{ROUTER_A}/24"),
                              (NS_RTR, "veth-rb", f"{ROUTER_B}/24"), (NS_SRV, "veth-s", f"{SERVER}/24")):
            offloads_off(ns, dev)   # wire-size segments with computed checksums
            run("ip", "-n", ns, "addr", "add", addr, "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        run("ip", "-n", NS_CLI, "route", "add", "default", "via", ROUTER_A)
        run("ip", "-n", NS_SRV, "route", "add", "default", "via", ROUTER_B)
        # the router forwards, and its ICMP errors are not rate limited (one per segment)
        sysctl(NS_RTR, "net.ipv4.ip_forward=1", "net.ipv4.icmp_ratelimit=0")

    def close(self) -> None:
        """Stop everything the scenario started and delete the namespaces; a second
        Ctrl-C meanwhile is ignored, so that the cleanup is not cut short."""
        with _signals_ignored():
            self._close()

    def _close(self) -> None:
        self.stopping.set()
        self.stop_capture(flush=0.0)
        for stop in self._stoppers:
            with contextlib.suppress(Exception):
                stop()
        for s in self._socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)   # wakes a thread blocked in accept/recv
            with contextlib.suppress(OSError):
                s.close()
        for p in self._procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        for t in self._handlers:
            t.join(timeout=2)
        remove_namespaces()

    # -- capture --------------------------------------------------------------
    def start_capture(self) -> None:
        # -Z root: Debian's tcpdump would otherwise hand the file to user "tcpdump"
        cmd = ["tcpdump", "-n", "-Z", "root", "-i", CAPTURE_IFACE, "-s", "0", "-U", "--immediate-mode",
               "-w", str(self.pcap), self.bpf]
        p = subprocess.Popen(["ip", "netns", "exec", NS_CLI, *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self._tcpdump = p
        attached = threading.Event()

        def read_stderr() -> None:
            assert p.stderr is not None
            for raw in p.stderr:
                line = raw.decode(errors="replace").strip()
                self._tcpdump_err.append(line)
                if "listening on" in line:
                    attached.set()

        threading.Thread(target=read_stderr, daemon=True).start()
        deadline = time.monotonic() + 20
        while not attached.wait(0.1):
            if p.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("tcpdump did not start: " + " | ".join(self._tcpdump_err))
        time.sleep(1.0)   # "listening on" is printed before the socket is attached
        self._t0 = time.monotonic()

    def stop_capture(self, flush: float = 1.0) -> None:
        p, self._tcpdump = self._tcpdump, None
        if p is None:
            return
        time.sleep(flush)  # let the last packets reach the file
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        time.sleep(0.1)
        dropped = [x for x in self._tcpdump_err if "dropped by kernel" in x and not x.startswith("0 ")]
        if dropped:
            self.note("tcpdump: " + dropped[0])

    @contextlib.contextmanager
    def recording(self, join: float = 2.0) -> Iterator[None]:
        """Capture the block; at its end give the server's handler up to `join`
        seconds to finish, then let the last packets in and stop tcpdump."""
        self.start_capture()
        yield
        deadline = time.monotonic() + join
        for t in self._handlers:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        self.stop_capture()

    # -- servers --------------------------------------------------------------
    def listen(self, port: int = 25, rcvbuf: int | None = None) -> socket.socket:
        """A listening socket in the server namespace (ready before the client starts)."""
        with in_netns(NS_SRV):
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf is not None:   # before listen(): inherited by the accepted socket
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        ls.bind((SERVER, port))
        ls.listen(8)
        self._socks.append(ls)
        return ls

    def serve(self, handler: Callable[[Session], None], port: int = 25, rcvbuf: int | None = None) -> None:
        """Accept one connection and run `handler` on it in a thread."""
        ls = self.listen(port, rcvbuf)

        def main() -> None:
            try:
                conn, _ = ls.accept()
            except OSError:
                return
            self._socks.append(conn)
            try:
                handler(Session(conn, self))
            except (OSError, ValueError) as e:
                if not self.stopping.is_set():
                    self.note(f"server: {type(e).__name__}: {e}")

        t = threading.Thread(target=main, daemon=True)
        self._handlers.append(t)
        t.start()

    def serve_aiosmtpd(self) -> None:
        """aiosmtpd's SMTP server (with a sink handler) on port 25, in a thread."""
        ls = self.listen(25)
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(loop.create_server(
                lambda: SMTP(Sink(), hostname="mail.example.net"), sock=ls))
            loop.call_soon(ready.set)
            loop.run_forever()
            server.close()
            loop.run_until_complete(server.wait_closed())
            loop.close()

        t = threading.Thread(target=main, daemon=True)
        t.start()
        self._stoppers.append(lambda: loop.call_soon_threadsafe(loop.stop))
        self._stoppers.append(lambda: t.join(timeout=5))
        if not ready.wait(20):
            raise RuntimeError("aiosmtpd did not start")

    # -- clients --------------------------------------------------------------
    def smtp(self, timeout: float, port: int = 25, tls: ssl.SSLContext | None = None) -> smtplib.SMTP:
        """An smtplib client connected from the client namespace (greeting read)."""
        me, source = "client.example.com", (CLIENT, self.sport)
        with in_netns(NS_CLI):
            if tls is not None:
                c: smtplib.SMTP = smtplib.SMTP_SSL(SERVER, port, me, timeout=timeout, source_address=source,
                                                   context=tls)
            else:
                c = smtplib.SMTP(SERVER, port, me, timeout=timeout, source_address=source)
        assert c.sock is not None
        self._socks.append(c.sock)
        return c

    def tcp(self, timeout: float, port: int = 25) -> socket.socket:
        """A plain TCP connection from the client namespace."""
        with in_netns(NS_CLI):
            c = socket.create_connection((SERVER, port), timeout=timeout, source_address=(CLIENT, self.sport))
        self._socks.append(c)
        return c

    def attempt(self, what: str, fn: Callable[..., object], *args: object, **kw: object) -> object:
        """Call a client step, note how it ended; failures are expected here."""
        try:
            r = fn(*args, **kw)
        except (smtplib.SMTPException, OSError) as e:
            self.note(f"client: {what} -> {type(e).__name__}: {e}")
            return None
        self.note(f"client: {what} -> ok")
        return r

    def spawn(self, ns: str, *cmd: str) -> subprocess.Popen[bytes]:
        """Start a program in a namespace (stopped at the end if still running)."""
        p = subprocess.Popen(["ip", "netns", "exec", ns, *cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._procs.append(p)
        return p


def keepalive(client: smtplib.SMTP, idle: int, interval: int, count: int) -> None:
    """Keep-alive probes after `idle` s of silence, every `interval` s, `count` unanswered ones kill."""
    sock = client.sock
    assert sock is not None
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, interval)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, count)


def message(size: int, subject: str) -> bytes:
    """A message of about `size` bytes in 76-byte lines."""
    head = (f"From: <sender@example.com>\r\nTo: <rcpt@example.org>\r\nSubject: {subject}\r\n\r\n").encode()
    line = b"pushscan recorded body line: 0123456789 abcdefghijklmnopqrstuvwxyz ......\r\n"
    return head + line * max(1, (size - len(head)) // len(line))


FROM, TO = "sender@example.com", ["rcpt@example.org"]
_TLS_DIR: Path | None = None


def tls_server_context(minimum: ssl.TLSVersion | None = None, maximum: ssl.TLSVersion | None = None,
                       ciphers: str | None = None) -> ssl.SSLContext:
    """A server context with a self-signed P-256 certificate made at run time."""
    assert _TLS_DIR is not None
    cert, key = _TLS_DIR / "cert.pem", _TLS_DIR / "key.pem"
    if not cert.exists():
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=mail.example.net")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    if minimum:
        ctx.minimum_version = minimum
    if maximum:
        ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def tls_client_context(maximum: ssl.TLSVersion, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = maximum
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


# ---------------------------------------------------------------------------
# reading a recording back for the checks (Ethernet + IPv4, as tcpdump writes it)
# ---------------------------------------------------------------------------


@dataclass
class Pkt:
    n: int                 # frame number, 1-based as in tshark
    t: float
    src: str
    dst: str
    ttl: int
    ipid: int
    iplen: int
    proto: int
    sport: int = 0
    dport: int = 0
    flags: str = ""        # TCP flags as letters: F S R P A U
    seq: int = 0
    ack: int = 0
    win: int = 0
    data: bytes = b""
    icmp: tuple[int, int] | None = None

    def has(self, letters: str) -> bool:
        return all(f in self.flags for f in letters)

    def __bool__(self) -> bool:
        return self.n > 0       # NOTHING (frame 0) is false


NOTHING = Pkt(0, 0.0, "", "", 0, 0, 0, 0)   # what a search finds when nothing matches


def read_pcap(path: Path) -> list[Pkt]:
    raw = path.read_bytes()
    if raw[:4] != b"\xd4\xc3\xb2\xa1":
        raise ValueError(f"{path}: not a little-endian microsecond pcap")
    out, off, number = [], 24, 0
    while off + 16 <= len(raw):
        sec, usec, caplen, _ = struct.unpack_from("<IIII", raw, off)
        frame = raw[off + 16: off + 16 + caplen]
        off += 16 + caplen
        number += 1
        if len(frame) < 34 or frame[12:14] != b"\x08\x00":
            continue
        ip = frame[14:]
        ihl = (ip[0] & 15) * 4
        iplen, ipid, ttl, proto = struct.unpack_from("!H H x x B B", ip, 2)
        p = Pkt(number, sec + usec / 1e6, socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20]),
                ttl, ipid, iplen, proto)
        l4 = ip[ihl:iplen]
        if proto == 6:
            p.sport, p.dport, p.seq, p.ack, offflags, p.win = struct.unpack_from("!HHIIHH", l4)
            p.flags = "".join(c for bit, c in zip((1, 2, 4, 8, 16, 32), "FSRPAU", strict=True) if offflags & bit)
            p.data = l4[(offflags >> 12) * 4:]
        elif proto == 1:
            p.icmp = (l4[0], l4[1])
        out.append(p)
    return out


class Trace:
    """The packets of one recording, with the few questions the checks ask."""

    def __init__(self, path: Path) -> None:
        self.pkts = read_pcap(path)
        self.tcp = [p for p in self.pkts if p.proto == 6]
        self.c2s = [p for p in self.tcp if p.src == CLIENT]
        self.s2c = [p for p in self.tcp if p.dst == CLIENT]   # from the server, or forged in its name

    def first(self, pkts: list[Pkt], pred: Callable[[Pkt], bool], after: int = 0) -> Pkt:
        """The first packet after frame `after` that matches, or NOTHING (false)."""
        return next((p for p in pkts if p.n > after and pred(p)), NOTHING)

    def says(self, pkts: list[Pkt], prefix: bytes, after: int = 0) -> Pkt:
        """The first segment whose data starts with `prefix`, in any case (smtplib
        sends its verbs in lower case)."""
        return self.first(pkts, lambda p: p.data[:len(prefix)].upper() == prefix.upper(), after)

    def keepalive_probes(self) -> list[Pkt]:
        """Client segments without data one below the next sequence number (Linux
        sends keep-alive and zero-window probes as seq = snd_una - 1)."""
        probes, nxt = [], None
        for p in self.c2s:
            if nxt is not None and not p.data and p.flags == "A" and p.seq == (nxt - 1) % 2**32:
                probes.append(p)
            end = (p.seq + len(p.data) + p.has("S") + p.has("F")) % 2**32
            if nxt is None or 0 < (end - nxt) % 2**32 < 2**31:
                nxt = end
        return probes


# ---------------------------------------------------------------------------
# the scenarios; each is a function recording into lab.pcap and a check
# ---------------------------------------------------------------------------


@dataclass
class Scenario:
    name: str
    record: Callable[[Lab], None]
    check: Callable[[Trace], list[str]]
    bpf: str = "ip"


SCENARIOS: list[Scenario] = []


Recorder = Callable[[Lab], None]


def scenario(name: str, check: Callable[[Trace], list[str]], bpf: str = "ip") -> Callable[[Recorder], Recorder]:
    """Register a recording function for file `name`, with its check."""
    def register(fn: Recorder) -> Recorder:
        SCENARIOS.append(Scenario(name, fn, check, bpf))
        return fn
    return register


class Need:
    """Collects the failed expectations of a check."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def __call__(self, ok: object, what: str) -> bool:
        if not ok:
            self.problems.append(what)
        return bool(ok)


# 1, 2: a receiver that stops reading -----------------------------------------

def check_stall(t: Trace) -> list[str]:
    need = Need()
    zw = t.first(t.s2c, lambda p: p.win == 0 and not p.has("R"))
    rst = t.first(t.s2c, lambda p: p.has("R"))
    need(zw, "no zero window from the server")
    need(rst and rst.src == SERVER and rst.ttl == 63, "no RST from the server (TTL 63)")
    if zw and rst:
        probes = [p for p in t.keepalive_probes() if zw.n < p.n < rst.n]
        need(len(probes) >= 2, f"only {len(probes)} zero-window probes")
        need(not [p for p in t.s2c if zw.n < p.n < rst.n and p.win > 0], "the window reopened")
        need(rst.t - zw.t > 4, "the RST came too early")
    return need.problems


@scenario("real_zero_window_stall.pcap", check_stall)
def zero_window_stall(lab: Lab) -> None:
    def on_data(s: Session, line: bytes) -> object:
        s.send("354 End data with <CR><LF>.<CR><LF>")
        s.wait(6.0)     # the application stops reading; the 8 KB receive buffer fills
        s.abort()       # and then gives up with a RST
        return STOP

    lab.serve(lambda s: smtp_dialogue(s, on={"DATA": on_data}), rcvbuf=4096)
    with lab.recording():
        c = lab.smtp(timeout=20)
        c.ehlo()
        lab.attempt("sendmail 2 MB", c.sendmail, FROM, TO, message(2_000_000, "stall"))
        c.close()


def check_recovers(t: Trace) -> list[str]:
    need = Need()
    zw = t.first(t.s2c, lambda p: p.win == 0)
    if need(zw, "no zero window from the server"):
        reopen = t.first(t.s2c, lambda p: p.win > 0, after=zw.n)
        if need(reopen, "the window never reopened"):
            need(reopen.t - zw.t > 2, "the window reopened too soon")
            need(t.says(t.s2c, b"250 2.0.0", after=reopen.n), "no 250 after the body")
    need(t.says(t.s2c, b"221"), "no 221")
    need(t.first(t.c2s, lambda p: p.has("F")) and t.first(t.s2c, lambda p: p.has("F")), "not closed by both")
    need(not [p for p in t.tcp if p.has("R")], "a RST")
    return need.problems


@scenario("real_zero_window_recovers.pcap", check_recovers)
def zero_window_recovers(lab: Lab) -> None:
    def on_data(s: Session, line: bytes) -> object:
        s.send("354 End data with <CR><LF>.<CR><LF>")
        s.wait(3.0)     # not reading for 3 s: the window closes ...
        if s.read_body() is None:   # ... and reopens as the application reads again
            return STOP
        s.send("250 2.0.0 Ok: queued as 4XJ2Q1")
        return None

    lab.serve(lambda s: smtp_dialogue(s, on={"DATA": on_data}), rcvbuf=4096)
    with lab.recording():
        c = lab.smtp(timeout=20)
        c.ehlo()
        lab.attempt("sendmail 60 KB", c.sendmail, FROM, TO, message(60_000, "recovers"))
        lab.attempt("quit", c.quit)


# 3: a RST forged by a middlebox ------------------------------------------------

def check_injected(t: Trace) -> list[str]:
    need = Need()
    rcpt = t.says(t.c2s, b"RCPT")
    if not need(rcpt, "no RCPT"):
        return need.problems
    rst = t.first(t.s2c, lambda p: p.has("R"), after=rcpt.n)
    if need(rst and rst.src == SERVER and rst.ttl == 64, "no RST in the server's name with the router's TTL 64"):
        need(rst.seq == rcpt.ack, "the forged RST's seq is not the RCPT's ack")
        later = t.first(t.s2c, lambda p: bool(p.data) and p.ttl == 63, after=rst.n)
        if need(later, "the real server sent nothing after the forged RST"):
            need(t.first(t.c2s, lambda p: p.has("R"), after=later.n), "the client did not reset the server's late data")
    need(not [p for p in t.s2c if p.has("R") and p.ttl == 63], "the real server sent a RST")
    return need.problems


@scenario("real_injected_reset.pcap", check_injected)
def injected_reset(lab: Lab) -> None:
    # The router drops the client's RCPT and answers it with a RST in the server's
    # name. @ih is the TCP payload; the mask makes the match case-insensitive.
    nft(NS_RTR, f"""table ip pscap {{
        chain forward {{
            type filter hook forward priority 0; policy accept;
            ip saddr {CLIENT} tcp dport 25 @ih,0,32 & 0xdfdfdfdf == 0x52435054 reject with tcp reset
        }}
    }}""")
    # The server never sees RCPT (nor the ACK it carried): it retransmits its last
    # reply, and would give up on the silent client with 421 after 3 s.
    lab.serve(lambda s: smtp_dialogue(s, idle=3.0))
    with lab.recording(join=6.0):
        c = lab.smtp(timeout=10)
        c.ehlo()
        c.mail(FROM)
        lab.attempt("rcpt", c.rcpt, TO[0])
        c.close()


# 4: a firewall that forgot the connection ------------------------------------------

STATEFUL_FORWARD = """table ip pscap {
    chain forward {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        ct state new tcp flags & (syn|ack) == syn accept
        %s
    }
}"""


def check_idle(t: Trace, reset: bool) -> list[str]:
    need = Need()
    rcpt = t.says(t.c2s, b"RCPT")
    if not need(rcpt, "no RCPT"):
        return need.problems
    before = [p for p in t.pkts if p.n < rcpt.n]
    need(before and rcpt.t - before[-1].t > 4, "no idle time before RCPT")
    copies = [p for p in t.c2s if p.seq == rcpt.seq and p.data]
    need(not [p for p in t.s2c if p.n > rcpt.n and not p.has("R")], "the server answered after the idle time")
    if reset:
        rst = t.first(t.s2c, lambda p: p.has("R"), after=rcpt.n)
        need(rst and rst.src == SERVER and rst.ttl == 64, "no RST from the router in the server's name")
    else:
        need(len(copies) >= 3, f"RCPT sent only {len(copies)} times")
        need(not [p for p in t.tcp if p.has("R")], "a RST")
    return need.problems


def idle_timeout_common(lab: Lab, tail: str) -> None:
    nft(NS_RTR, STATEFUL_FORWARD % tail)
    # idle established connections are forgotten after 2 s (instead of 5 days)
    sysctl(NS_RTR, "net.netfilter.nf_conntrack_tcp_timeout_established=2")
    sysctl(NS_CLI, "net.ipv4.tcp_retries2=3")    # the client gives up after about 3 s
    lab.serve(smtp_dialogue)
    with lab.recording(join=0.5):
        c = lab.smtp(timeout=20)
        c.ehlo()
        c.mail(FROM)
        time.sleep(6.0)
        lab.attempt("rcpt after 6 s idle", c.rcpt, TO[0])
        c.close()


@scenario("real_idle_timeout.pcap", lambda t: check_idle(t, reset=False))
def idle_timeout(lab: Lab) -> None:
    idle_timeout_common(lab, "")


@scenario("real_idle_timeout_reset.pcap", lambda t: check_idle(t, reset=True))
def idle_timeout_reset(lab: Lab) -> None:
    idle_timeout_common(lab, "meta l4proto tcp reject with tcp reset")


# 5: a path MTU black hole -----------------------------------------------------------

def check_pmtu(t: Trace) -> list[str]:
    need = Need()
    big = [p for p in t.c2s if p.iplen > 1000]
    if need(big, "no full-size segment"):
        first = big[0]
        same = [p for p in t.c2s if p.seq == first.seq and p.iplen == first.iplen]
        need(len(same) >= 3, f"the first full-size segment was sent only {len(same)} times")
        need(all((p.ack - first.seq) % 2**32 >= 2**31 or p.ack == first.seq for p in t.s2c),
             "the server acknowledged a full-size segment")
    need(t.says(t.s2c, b"354"), "no 354 (small segments should pass)")
    need(not [p for p in t.pkts if p.proto == 1], "an ICMP message")
    return need.problems


@scenario("real_pmtu_blackhole.pcap", check_pmtu)
def pmtu_blackhole(lab: Lab) -> None:
    nft(NS_RTR, f"""table ip pscap {{
        chain forward {{
            type filter hook forward priority 0; policy accept;
            ip saddr {CLIENT} ip length > 1000 drop
        }}
        chain output {{
            type filter hook output priority 0; policy accept;
            icmp type destination-unreachable drop
        }}
    }}""")
    sysctl(NS_CLI, "net.ipv4.tcp_mtu_probing=0", "net.ipv4.tcp_retries2=4")
    lab.serve(smtp_dialogue)
    with lab.recording(join=0.5):
        c = lab.smtp(timeout=30)
        c.ehlo()
        lab.attempt("sendmail 20 KB", c.sendmail, FROM, TO, message(20_000, "pmtu"))
        c.close()


# 6: ICMP host unreachable mid-session ---------------------------------------------------

def check_icmp(t: Trace) -> list[str]:
    need = Need()
    errors = [p for p in t.pkts if p.icmp == (3, 1) and p.src == ROUTER_A and p.dst == CLIENT]
    need(len(errors) >= 2, f"{len(errors)} ICMP host-unreachable messages")
    mail = t.says(t.c2s, b"MAIL")
    if need(mail, "no MAIL"):
        need(not [p for p in t.s2c if p.n > mail.n and p.data], "the server answered MAIL")
        need(len([p for p in t.c2s if p.seq == mail.seq and p.data]) >= 2, "MAIL not retransmitted")
    return need.problems


@scenario("real_icmp_unreachable.pcap", check_icmp)
def icmp_unreachable(lab: Lab) -> None:
    nft(NS_RTR, "table ip pscap {\n chain forward {\n type filter hook forward priority 0; policy accept;\n }\n}")
    sysctl(NS_CLI, "net.ipv4.tcp_retries2=3")
    lab.serve(smtp_dialogue)
    with lab.recording(join=0.5):
        c = lab.smtp(timeout=20)
        c.ehlo()
        time.sleep(0.5)
        nft(NS_RTR, f"add rule ip pscap forward ip saddr {CLIENT} tcp dport 25 reject with icmp type host-unreachable")
        lab.attempt("mail", c.mail, FROM)
        c.close()


# 7: the server vanishes ---------------------------------------------------------------

VANISH = f"""table ip pscap {{
    chain forward {{
        type filter hook forward priority 0; policy accept;
        ip daddr {SERVER} drop
        ip saddr {SERVER} drop
    }}
}}"""


def check_vanished(t: Trace) -> list[str]:
    need = Need()
    mail = t.says(t.c2s, b"MAIL")
    if need(mail, "no MAIL"):
        copies = [p for p in t.c2s if p.seq == mail.seq and p.data]
        need(len(copies) >= 3, f"MAIL sent only {len(copies)} times")
        need(not [p for p in t.s2c if p.n > mail.n], "the server answered")
    need(not [p for p in t.pkts if p.proto == 1 or (p.proto == 6 and p.has("R"))], "an ICMP message or RST")
    return need.problems


@scenario("real_peer_vanished.pcap", check_vanished)
def peer_vanished(lab: Lab) -> None:
    sysctl(NS_CLI, "net.ipv4.tcp_retries2=3")
    lab.serve(smtp_dialogue)
    with lab.recording(join=0.5):
        c = lab.smtp(timeout=20)
        c.ehlo()
        time.sleep(0.5)
        nft(NS_RTR, VANISH)
        lab.attempt("mail", c.mail, FROM)
        c.close()


def check_vanished_keepalive(t: Trace) -> list[str]:
    need = Need()
    probes = t.keepalive_probes()
    if need(len(probes) >= 2, f"{len(probes)} keep-alive probes"):
        need(not [p for p in t.s2c if p.n > probes[0].n], "a probe was answered")
        need(t.first(t.c2s, lambda p: p.has("R"), after=probes[-1].n), "no RST when the client gave up")
    return need.problems


@scenario("real_peer_vanished_keepalive.pcap", check_vanished_keepalive)
def peer_vanished_keepalive(lab: Lab) -> None:
    lab.serve(smtp_dialogue)
    with lab.recording(join=0.5):
        c = lab.smtp(timeout=20)
        c.ehlo()
        keepalive(c, idle=2, interval=1, count=3)
        time.sleep(0.5)
        nft(NS_RTR, VANISH)
        time.sleep(7.0)     # probes after 2 s idle, then every 1 s; dead after 3
        lab.attempt("noop after 7 s idle", c.noop)
        c.close()


# 8: keep-alives that are answered ---------------------------------------------------

def check_keepalive_answered(t: Trace) -> list[str]:
    need = Need()
    probes = t.keepalive_probes()
    need(len(probes) >= 2, f"{len(probes)} keep-alive probes")
    for p in probes:
        answer = t.first(t.s2c, lambda q: True, after=p.n)
        need(answer and answer.t - p.t < 1.0 and not answer.data, f"probe frame {p.n} not answered")
    need(t.says(t.s2c, b"221"), "no 221")
    need(not [p for p in t.tcp if p.has("R")], "a RST")
    return need.problems


@scenario("real_keepalive_answered.pcap", check_keepalive_answered)
def keepalive_answered(lab: Lab) -> None:
    lab.serve_aiosmtpd()
    with lab.recording():
        c = lab.smtp(timeout=20)
        c.ehlo()
        keepalive(c, idle=2, interval=1, count=3)
        time.sleep(7.0)     # probes after 2 s of silence, each answered
        lab.attempt("sendmail", c.sendmail, FROM, TO, message(1_000, "keep-alive"))
        lab.attempt("quit", c.quit)


# 9: the server lost the connection without a word ---------------------------------------

def check_restarted(t: Trace) -> list[str]:
    need = Need()
    rst = t.first(t.s2c, lambda p: p.has("R"))
    if need(rst, "no RST"):
        need(rst.src == SERVER and rst.ttl == 63 and not rst.has("A"), "the RST is not the server's, without ACK")
        prev = [p for p in t.c2s if p.n < rst.n and p.data]
        if need(prev and prev[-1].data[:4].upper() == b"MAIL", "the RST does not answer MAIL"):
            need(rst.seq == prev[-1].ack, "the RST's seq is not the ack of MAIL")
            quiet = [p for p in t.pkts if p.n < prev[-1].n]
            need(quiet and prev[-1].t - quiet[-1].t > 2, "no idle time before MAIL")
        need(not [p for p in t.s2c if p.n < rst.n and (p.has("R") or p.has("F"))], "the server said goodbye")
    return need.problems


@scenario("real_peer_restarted.pcap", check_restarted)
def peer_restarted(lab: Lab) -> None:
    nft(NS_SRV, "table ip pscap {\n chain output {\n type filter hook output priority 0; policy accept;\n }\n}")
    lose, gone = threading.Event(), threading.Event()

    def on_ehlo(s: Session, line: bytes) -> object:
        s.reply(250, EHLO_REPLY)
        lose.wait(20)
        s.abort()       # its RST is dropped in the server namespace: the client never hears
        gone.set()
        return STOP

    lab.serve(lambda s: smtp_dialogue(s, on={"EHLO": on_ehlo}))
    with lab.recording():
        c = lab.smtp(timeout=10)
        c.ehlo()
        time.sleep(0.5)
        nft(NS_SRV, f"add rule ip pscap output ip daddr {CLIENT} tcp flags rst drop")
        lose.set()
        gone.wait(10)
        time.sleep(0.5)
        nft(NS_SRV, "flush chain ip pscap output")
        time.sleep(3.0)
        lab.attempt("mail after 4 s", c.mail, FROM)
        c.close()


# 10: SMTP refusals ------------------------------------------------------------------

def check_421(t: Trace) -> list[str]:
    need = Need()
    need(t.says(t.s2c, b"421 4.3.2 Service not available"), "no 421 greeting")
    need(t.first(t.s2c, lambda p: p.has("F")), "the server did not close")
    need(t.first(t.c2s, lambda p: p.has("F")), "the client did not close")
    need(not [p for p in t.tcp if p.has("R")], "a RST")
    return need.problems


@scenario("real_smtp_421.pcap", check_421)
def smtp_421(lab: Lab) -> None:
    def handler(s: Session) -> None:
        s.send("421 4.3.2 Service not available, closing transmission channel")
        s.close()

    lab.serve(handler)
    with lab.recording():
        c = lab.attempt("connect", lab.smtp, timeout=10)
        if isinstance(c, smtplib.SMTP):
            c.close()


def check_554(t: Trace) -> list[str]:
    need = Need()
    need(t.says(t.s2c, b"554 5.7.1"), "no 554 to RCPT")
    need(t.says(t.c2s, b"QUIT") and t.says(t.s2c, b"221"), "no QUIT/221")
    need(not [p for p in t.tcp if p.has("R")], "a RST")
    return need.problems


@scenario("real_smtp_554_rcpt.pcap", check_554)
def smtp_554_rcpt(lab: Lab) -> None:
    def on_rcpt(s: Session, line: bytes) -> object:
        s.send("554 5.7.1 <rcpt@example.org>: Relay access denied")
        return None

    lab.serve(lambda s: smtp_dialogue(s, on={"RCPT": on_rcpt}))
    with lab.recording():
        c = lab.smtp(timeout=10)
        c.ehlo()
        lab.attempt("sendmail", c.sendmail, FROM, TO, message(500, "refused"))
        lab.attempt("quit", c.quit)


# 11: TLS handshakes that fail ----------------------------------------------------------

def check_tls_alert(t: Trace, port: int, description: int) -> list[str]:
    need = Need()
    if port == 25:
        ready = t.says(t.s2c, b"220 2.0.0 Ready to start TLS")
        need(ready, "no 220 to STARTTLS")
    hello = t.first(t.c2s, lambda p: p.data[:1] == b"\x16")
    alert = t.first(t.s2c, lambda p: p.data[:1] == b"\x15" and len(p.data) >= 7)
    need(hello, "no ClientHello")
    if need(alert, "no TLS alert from the server"):
        need(alert.sport == port and alert.data[5:7] == bytes([2, description]),
             f"the alert is {alert.data[5:7].hex()}, not fatal {description}")
    return need.problems


@scenario("real_starttls_failed.pcap", lambda t: check_tls_alert(t, 25, 70))
def starttls_failed(lab: Lab) -> None:
    server_ctx = tls_server_context(minimum=ssl.TLSVersion.TLSv1_3)    # TLS 1.3 only

    def on_starttls(s: Session, line: bytes) -> object:
        s.send("220 2.0.0 Ready to start TLS")
        try:
            server_ctx.wrap_socket(s.conn, server_side=True)
        except ssl.SSLError as e:
            s.lab.note(f"server: handshake -> {e.reason}")
        return STOP

    lab.serve(lambda s: smtp_dialogue(s, extensions=("STARTTLS",), on={"STARTTLS": on_starttls}))
    with lab.recording():
        c = lab.smtp(timeout=10)
        c.ehlo()
        lab.attempt("starttls (client offers TLS 1.2 at most)", c.starttls,
                    context=tls_client_context(maximum=ssl.TLSVersion.TLSv1_2))
        c.close()


@scenario("real_implicit_tls_failed.pcap", lambda t: check_tls_alert(t, 465, 40))
def implicit_tls_failed(lab: Lab) -> None:
    # TLS 1.2 on both sides and no cipher suite in common
    server_ctx = tls_server_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES256-GCM-SHA384")

    def handler(s: Session) -> None:
        try:
            tls = server_ctx.wrap_socket(s.conn, server_side=True)
        except ssl.SSLError as e:
            s.lab.note(f"server: handshake -> {e.reason}")
            return
        smtp_dialogue(Session(tls, s.lab))

    lab.serve(handler, port=465)
    with lab.recording():
        ctx = tls_client_context(maximum=ssl.TLSVersion.TLSv1_2, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256")
        c = lab.attempt("connect to 465", lab.smtp, timeout=10, port=465, tls=ctx)
        if isinstance(c, smtplib.SMTP):
            c.close()


# 12: the client gives up on a slow server ----------------------------------------------

def check_gave_up(t: Trace) -> list[str]:
    need = Need()
    dot = t.first(t.c2s, lambda p: p.data.endswith(b"\r\n.\r\n"))
    if not need(dot, "no end of data"):
        return need.problems
    fin = t.first(t.c2s, lambda p: p.has("F"), after=dot.n)
    if need(fin and 2.5 < fin.t - dot.t < 5, "the client did not close about 3 s after the dot"):
        late = t.says(t.s2c, b"250", after=fin.n)
        if need(late and late.t - dot.t > 7, "no late 250"):
            need(t.first(t.c2s, lambda p: p.has("R"), after=late.n), "the late reply was not answered by RST")
    return need.problems


@scenario("real_local_gave_up.pcap", check_gave_up)
def local_gave_up(lab: Lab) -> None:
    def on_data(s: Session, line: bytes) -> object:
        s.send("354 End data with <CR><LF>.<CR><LF>")
        if s.read_body() is None:
            return STOP
        s.wait(8.0)     # a slow content filter
        s.send("250 2.0.0 Ok: queued as 4XJ2Q2")
        return None

    lab.serve(lambda s: smtp_dialogue(s, on={"DATA": on_data}))
    with lab.recording(join=8.0):
        c = lab.smtp(timeout=3)
        c.ehlo()
        lab.attempt("sendmail with a 3 s timeout", c.sendmail, FROM, TO, message(2_000, "slow"))
        c.close()


# 13: only one direction captured ----------------------------------------------------

def check_one_sided(t: Trace) -> list[str]:
    need = Need()
    need(t.pkts and all(p.src == CLIENT for p in t.pkts), "packets not from the client")
    need(t.first(t.c2s, lambda p: p.flags == "S"), "no SYN")
    need(t.says(t.c2s, b"QUIT"), "no QUIT")
    need(t.first(t.c2s, lambda p: p.has("F")), "no FIN")
    return need.problems


@scenario("real_one_sided.pcap", check_one_sided, bpf=f"ip and src host {CLIENT}")
def one_sided(lab: Lab) -> None:
    lab.serve_aiosmtpd()
    data = ("From: <sender@example.com>\nTo: <rcpt@example.org>\nSubject: one-sided\n\n"
            + "one-sided capture, swaks to aiosmtpd\n" * 20)
    with lab.recording():
        p = lab.spawn(NS_CLI, "swaks", "--server", f"{SERVER}:25", "--local-interface", CLIENT,
                      "--local-port", str(lab.sport), "--ehlo", "client.example.com",
                      "--from", FROM, "--to", TO[0], "--data", data, "--hide-all")
        out, _ = p.communicate(timeout=30)
        lab.note(f"client: swaks exit {p.returncode} {out.decode(errors='replace').strip()}")


# 14: no greeting ----------------------------------------------------------------------

def check_closed_before_greeting(t: Trace) -> list[str]:
    need = Need()
    need(not [p for p in t.s2c if p.data], "the server sent data")
    need(t.first(t.s2c, lambda p: p.has("F")), "no FIN from the server")
    need(t.first(t.c2s, lambda p: p.has("F")), "no FIN from the client")
    return need.problems


@scenario("real_closed_before_greeting.pcap", check_closed_before_greeting)
def closed_before_greeting(lab: Lab) -> None:
    lab.serve(lambda s: s.close())
    with lab.recording():
        c = lab.attempt("connect", lab.smtp, timeout=10)
        if isinstance(c, smtplib.SMTP):
            c.close()


def check_greeting_never_came(t: Trace) -> list[str]:
    need = Need()
    need(not [p for p in t.s2c if p.data], "the server sent data")
    syn = t.first(t.c2s, lambda p: p.flags == "S")
    quit_ = t.says(t.c2s, b"QUIT")
    need(syn and quit_ and quit_.t - syn.t > 4.5, "no QUIT 5 s after the SYN")
    need(t.first(t.c2s, lambda p: p.has("F")), "no FIN from the client")
    return need.problems


@scenario("real_greeting_never_came.pcap", check_greeting_never_came)
def greeting_never_came(lab: Lab) -> None:
    lab.serve(lambda s: s.wait(60))     # accepts, then neither reads nor writes
    with lab.recording(join=0.0):
        c = lab.tcp(timeout=5)
        try:
            c.recv(512)
            lab.note("client: got a greeting?")
        except TimeoutError:
            lab.note("client: no greeting in 5 s, sends QUIT and closes")
        c.sendall(b"QUIT\r\n")
        time.sleep(1.0)
        c.close()


# ---------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------


def record_one(sc: Scenario, sport: int, outdir: Path, tries: int = 2) -> bool:
    final = outdir / sc.name
    tmp = outdir / (sc.name + ".tmp")
    for attempt in range(1, tries + 1):
        tmp.unlink(missing_ok=True)
        lab = Lab(sport=sport, pcap=tmp, bpf=sc.bpf)
        start = time.monotonic()
        problems = []
        interrupted = False
        try:
            lab.build()
            sc.record(lab)
        except Exception as e:  # noqa: BLE001 - a broken run is retried like a failed check
            problems.append(f"error: {type(e).__name__}: {e}")
        except KeyboardInterrupt:
            interrupted = True
            raise
        finally:
            lab.close()
            if interrupted:
                tmp.unlink(missing_ok=True)
        if not tmp.exists():
            problems.append("no capture written")
        if not problems:
            size = tmp.stat().st_size
            trace = Trace(tmp)
            problems = sc.check(trace)
            if size >= MAX_BYTES:
                problems.append(f"{size} bytes")
            if [p for p in trace.pkts if p.iplen > 1500]:
                problems.append("segments larger than the MTU (offloads on?)")
        status = "ok" if not problems else f"FAILED (try {attempt}): " + "; ".join(problems)
        print(f"{sc.name}: {status} [{time.monotonic() - start:.1f} s]", flush=True)
        for n in lab.notes:
            print(f"    {n}", flush=True)
        if not problems:
            os.replace(tmp, final)
            print(f"    {len(trace.pkts)} packets, {final.stat().st_size} bytes -> {final}", flush=True)
            return True
    return False


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("outdir", nargs="?", type=Path, default=Path(__file__).resolve().parent)
    ap.add_argument("--only", action="append", default=[], help="record only this file (repeatable)")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root (network namespaces, nft, tcpdump)", file=sys.stderr)
        return 2
    chosen = [(i, sc) for i, sc in enumerate(SCENARIOS, 1) if not args.only or sc.name in args.only
              or sc.name.removesuffix(".pcap") in args.only]
    if not chosen:
        print(f"no such scenario; known: {', '.join(s.name for s in SCENARIOS)}", file=sys.stderr)
        return 2
    args.outdir.mkdir(parents=True, exist_ok=True)

    def on_term(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    global _TLS_DIR
    failed = []
    try:
        with tempfile.TemporaryDirectory(prefix="pscap-tls-") as tls_dir:
            _TLS_DIR = Path(tls_dir)
            for i, sc in chosen:
                if not record_one(sc, FIRST_PORT + i, args.outdir):
                    failed.append(sc.name)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        remove_namespaces()
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
