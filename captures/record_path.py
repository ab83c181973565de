"""Record SMTP sessions through a router that changes them, captured on both sides of it.

Three network namespaces, client <-> router <-> server, joined by two veth pairs:

    client 192.0.2.10 [eth0] --- [rt-near] 192.0.2.1   router
                  router   198.51.100.1 [rt-far] --- [eth0] 198.51.100.25 server

aiosmtpd (Sink handler) listens on the server's port 25, Python smtplib sends one message
from the client (greeting, EHLO, MAIL, RCPT, DATA with a 6 KB body, QUIT). One scenario
has a server whose "stack" waits for PSH instead (``role_pushpeer``: it hands data to its
SMTP logic only once a PSH segment carried it, and resets when unpushed data waited
PUSH_WAIT seconds), as the stacks of the original incident did. Two tcpdump
processes in the router record at the same time, one per router interface:

    path_<scenario>_near.pcap   rt-near, the client's side of the router (NEAR the sender)
    path_<scenario>_far.pcap    rt-far, the server's side (FAR from the sender)

Each scenario has the router change the traffic in one way: nftables rules on the kernel's
forwarding path, or, for what nftables cannot do (add to a sequence number, rewrite
payload with a valid checksum), a small userspace forwarder on AF_PACKET sockets that
replaces the kernel's forwarding. After recording, tshark reads both files of each pair,
the packets are paired (by direction, IP ID, TCP timestamp and length) and the script
checks that the two views differ exactly as intended; it prints one README line per pair.

Needs root, iproute2, nft, tcpdump, tshark, and aiosmtpd in the Python running it:

    .venv/bin/python captures/record_path.py [OUTDIR] [SCENARIO ...]

OUTDIR defaults to this folder; files are overwritten. Namespaces, nft tables and the
helper processes are removed in every case. The script runs itself inside the namespaces
for its helpers (`--role server|pushpeer|client|forward|offload`); those are not meant to be used
by hand.
"""
from __future__ import annotations

import ctypes
import fcntl
import os
import random
import select
import signal
import smtplib
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

CLIENT_IP, ROUTER_NEAR_IP = "192.0.2.10", "192.0.2.1"
ROUTER_FAR_IP, SERVER_IP = "198.51.100.1", "198.51.100.25"
# fixed MAC addresses, so that the forwarder needs no ARP of its own and the files are stable
CLIENT_MAC, NEAR_MAC = "02:00:00:00:02:0a", "02:00:00:00:02:01"
FAR_MAC, SERVER_MAC = "02:00:00:00:64:01", "02:00:00:00:64:19"
NEAR_IF, FAR_IF, HOST_IF = "rt-near", "rt-far", "eth0"
SMTP_PORT = 25
SEQ_SHIFT = 1_000_000_000          # what the "firewall" adds to the client's sequence numbers
NAT_PORTS = (40000, 50000)         # source ports the NAT scenarios choose from
FULL_SIZE = 1448                   # a full segment's payload: MTU 1500 - IP, TCP, timestamps
MAX_FILE = 200_000
PUSH_WAIT = 2.0                    # how long the PSH-waiting server lets unpushed data wait
HERE = Path(__file__).resolve()


# ---------------------------------------------------------------------------------------
# The session itself (client role) and the message it sends
# ---------------------------------------------------------------------------------------

def message() -> str:
    """A 6 KB message: four full-size segments and a shorter one on a 1500-byte MTU."""
    lines = [f"line {i:03d}: the quick brown fox jumps over the lazy dog, again and again."
             for i in range(1, 82)]
    return ("From: sender@example.com\r\nTo: rcpt@example.org\r\nSubject: path test\r\n\r\n"
            + "\r\n".join(lines) + "\r\n")


def role_client() -> None:
    """Send one message; print how it went: 'esmtp', 'helo' (EHLO refused) or 'reset'."""
    try:
        with smtplib.SMTP(SERVER_IP, SMTP_PORT, local_hostname="client.example.com",
                          timeout=20) as c:
            c.sendmail("sender@example.com", ["rcpt@example.org"], message())
            outcome = "esmtp" if c.does_esmtp else "helo"
    except (smtplib.SMTPServerDisconnected, ConnectionResetError) as e:
        outcome = "reset"
        print(f"client: {e!r}", file=sys.stderr)
    print(outcome, flush=True)


def role_server() -> None:
    """aiosmtpd with a Sink handler on the server's port 25 until SIGTERM."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)   # the server's threads inherit the mask
    ctl = Controller(Sink(), hostname=SERVER_IP, port=SMTP_PORT,
                     server_hostname="mx.example.org")
    ctl.start()                                      # returns once it accepts connections
    print("ready", flush=True)
    signal.sigwait(stop)
    ctl.stop()


def role_pushpeer() -> None:
    """An SMTP server whose 'stack' waits for PSH: it watches its interface (AF_PACKET) to
    learn how far PSH segments have carried each connection's bytes, hands only those to
    its SMTP logic, and resets the connection (SO_LINGER 0) when unpushed bytes have
    waited PUSH_WAIT seconds. Linux never withholds data like this; this server plays the
    part of the stacks that did."""
    import threading

    lock = threading.Lock()
    isn: dict[int, int] = {}            # client port -> initial sequence number
    pushed_upto: dict[int, int] = {}    # client port -> stream bytes covered by PSH

    def sniff() -> None:
        raw = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_IP))
        raw.bind((HOST_IF, 0))
        while True:
            ip = raw.recv(65535)[14:]
            if len(ip) < 40 or ip[9] != socket.IPPROTO_TCP:
                continue
            ihl = (ip[0] & 15) * 4
            tcp = ip[ihl:]
            sport, dport, seq = struct.unpack("!HHI", tcp[:8])
            if dport != SMTP_PORT:
                continue
            flags, doff = tcp[13], (tcp[12] >> 4) * 4
            plen = struct.unpack("!H", ip[2:4])[0] - ihl - doff
            with lock:
                if flags & 0x02:
                    isn[sport], pushed_upto[sport] = seq, 0
                elif plen > 0 and flags & 0x08 and sport in isn:
                    end = (seq + plen - isn[sport] - 1) & 0xFFFFFFFF
                    pushed_upto[sport] = max(pushed_upto.get(sport, 0), end)

    def serve(conn: socket.socket, port: int) -> None:
        conn.sendall(b"220 mx.example.org ESMTP\r\n")
        conn.settimeout(0.05)
        received, delivered, since = bytearray(), 0, None
        while True:
            try:
                data = conn.recv(65536)
                if not data:
                    return
                received += data
            except socket.timeout:
                pass
            with lock:
                pushed = pushed_upto.get(port, 0)
            if pushed > delivered:          # the pushed bytes reach the application
                chunk, delivered, since = bytes(received[delivered:pushed]), pushed, None
                for line in chunk.split(b"\r\n")[:-1]:
                    conn.sendall(b"221 bye\r\n" if line.upper() == b"QUIT" else b"250 ok\r\n")
            elif len(received) > delivered:  # unpushed bytes wait in the 'stack'
                since = since or time.monotonic()
                if time.monotonic() - since > PUSH_WAIT:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    conn.close()             # SO_LINGER 0: the close sends a reset
                    return

    threading.Thread(target=sniff, daemon=True).start()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((SERVER_IP, SMTP_PORT))
    srv.listen()
    print("ready", flush=True)
    while True:
        conn, (_, port) = srv.accept()
        threading.Thread(target=serve, args=(conn, port), daemon=True).start()


# ---------------------------------------------------------------------------------------
# Offloads: veth segments large writes (TSO/GSO) and leaves checksums to "hardware" by
# default, so a capture would show 6 KB segments with wrong checksums. The legacy ethtool
# ioctls switch that off in each namespace (no need for the ethtool program).
# ---------------------------------------------------------------------------------------

SIOCETHTOOL = 0x8946
ETHTOOL_SET = {"tx-checksum": 0x17, "scatter-gather": 0x19, "tso": 0x1F, "gso": 0x24,
               "gro": 0x2C}


def role_offload(ifaces: list[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for name in ifaces:
            for cmd in ETHTOOL_SET.values():
                value = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
                ifreq = struct.pack("16sP16x", name.encode(), ctypes.addressof(value))
                fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifreq)


# ---------------------------------------------------------------------------------------
# Userspace forwarder: the router's kernel does not forward (ip_forward=0) but still
# answers ARP for its addresses; this process reads each frame that arrives on one router
# interface, routes it by hand (TTL - 1), rewrites it and sends it out of the other one.
# ---------------------------------------------------------------------------------------

ETH_P_ALL, ETH_P_IP = 0x0003, 0x0800
PACKET_OUTGOING = 4


def mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Rewriter:
    """The middlebox's changes to one IPv4 packet; modes: shift, nat, fixup."""

    def __init__(self, modes: set[str]) -> None:
        self.modes = modes
        self.nat_out: dict[tuple[bytes, int], int] = {}      # (client ip, port) -> NAT port
        self.nat_back: dict[int, tuple[bytes, int]] = {}

    def packet(self, ip: bytearray, from_client: bool) -> bytearray | None:
        ihl = (ip[0] & 0x0F) * 4
        if ip[8] <= 1:
            return None                                      # TTL would expire: drop
        dst = socket.inet_ntoa(bytes(ip[16:20]))
        if ip[9] == socket.IPPROTO_TCP and len(ip) >= ihl + 20:
            tcp = ip[ihl:]
            if not from_client and "nat" in self.modes and dst == ROUTER_FAR_IP:
                dport = struct.unpack_from("!H", tcp, 2)[0]
                if dport not in self.nat_back:
                    return None
                addr, port = self.nat_back[dport]
                ip[16:20] = addr
                struct.pack_into("!H", tcp, 2, port)
            elif dst in (ROUTER_NEAR_IP, ROUTER_FAR_IP):
                return None                                  # for the router itself
            self.tcp(ip, tcp, from_client)
            ip[ihl:] = tcp
        elif dst in (ROUTER_NEAR_IP, ROUTER_FAR_IP):
            return None
        ip[8] -= 1                                           # routed: one hop
        ip[10:12] = b"\0\0"
        ip[10:12] = struct.pack("!H", checksum(bytes(ip[:ihl])))
        return ip

    def tcp(self, ip: bytearray, tcp: bytearray, from_client: bool) -> None:
        doff = (tcp[12] >> 4) * 4
        if from_client:
            if "nat" in self.modes:
                key = (bytes(ip[12:16]), struct.unpack_from("!H", tcp, 0)[0])
                if key not in self.nat_out:
                    port = random.randint(*NAT_PORTS)
                    self.nat_out[key], self.nat_back[port] = port, key
                ip[12:16] = socket.inet_aton(ROUTER_FAR_IP)
                struct.pack_into("!H", tcp, 0, self.nat_out[key])
            if "shift" in self.modes:                        # the client's sequence space moves
                seq = struct.unpack_from("!I", tcp, 4)[0]
                struct.pack_into("!I", tcp, 4, (seq + SEQ_SHIFT) & 0xFFFFFFFF)
            if "fixup" in self.modes and tcp[doff:doff + 4].upper() == b"EHLO":
                tcp[doff:doff + 4] = b"XXXX"                 # like the old Cisco SMTP fixup
        elif "shift" in self.modes:
            # the server acknowledges (and SACKs) shifted numbers: shift them back
            if tcp[13] & 0x10:
                ack = struct.unpack_from("!I", tcp, 8)[0]
                struct.pack_into("!I", tcp, 8, (ack - SEQ_SHIFT) & 0xFFFFFFFF)
            self.unshift_sack(tcp, doff)
        tcp[16:18] = b"\0\0"
        pseudo = ip[12:20] + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(tcp))
        tcp[16:18] = struct.pack("!H", checksum(bytes(pseudo + tcp)))

    @staticmethod
    def unshift_sack(tcp: bytearray, doff: int) -> None:
        i = 20
        while i < doff:
            kind = tcp[i]
            if kind == 0:
                break
            if kind == 1:
                i += 1
                continue
            length = tcp[i + 1] if i + 1 < doff else 0
            if length < 2 or i + length > doff:
                break                                        # malformed: leave the rest
            if kind == 5:                                    # SACK: pairs of edges
                for j in range(i + 2, i + length - 3, 4):
                    edge = struct.unpack_from("!I", tcp, j)[0]
                    struct.pack_into("!I", tcp, j, (edge - SEQ_SHIFT) & 0xFFFFFFFF)
            i += length


def role_forward(modes: set[str]) -> None:
    rewriter = Rewriter(modes)
    socks = {}
    for name in (NEAR_IF, FAR_IF):
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        s.bind((name, 0))
        socks[name] = s
    near, far = socks[NEAR_IF], socks[FAR_IF]
    # frames from the client leave towards the server and the other way round
    route = {near: (far, mac(SERVER_MAC) + mac(FAR_MAC), True),
             far: (near, mac(CLIENT_MAC) + mac(NEAR_MAC), False)}
    print("ready", flush=True)
    while True:
        for s in select.select([near, far], [], [])[0]:
            frame, addr = s.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING or len(frame) < 34:
                continue                                     # our own sends, ARP replies, runts
            if struct.unpack_from("!H", frame, 12)[0] != ETH_P_IP:
                continue                                     # ARP is the kernel's business
            length = struct.unpack_from("!H", frame, 16)[0]
            ip = rewriter.packet(bytearray(frame[14:14 + length]), route[s][2])
            if ip is not None:
                out, macs, _ = route[s]
                out.send(macs + struct.pack("!H", ETH_P_IP) + bytes(ip))


# ---------------------------------------------------------------------------------------
# Scenarios
# ---------------------------------------------------------------------------------------

@dataclass
class Scenario:
    name: str
    how: str                                    # README: how it was made
    nft: str = ""                               # rules of chain "forward" (kernel forwarding)
    nat: str = ""                               # rules of chain "postrouting" (nat)
    forward: set[str] = field(default_factory=set)   # userspace forwarder modes instead
    outcome: str = "esmtp"                      # what the client must report
    server: str = "server"                      # the server's role: aiosmtpd, or pushpeer


def fwd(rule: str) -> str:
    """A forward-chain rule for client->server packets only."""
    return f'iifname "{NEAR_IF}" tcp dport {SMTP_PORT} {rule}'


SCENARIOS = [
    Scenario("clean", "kernel forwarding (ip_forward=1), no nft rule"),
    Scenario("psh_stripped",
             "nft forward, client->server: `tcp flags == (psh|ack) tcp flags set ack`, "
             "the same for fin|psh|ack (nft updates the TCP checksum)",
             nft="\n".join([fwd("tcp flags == (psh|ack) tcp flags set ack"),
                            fwd("tcp flags == (fin|psh|ack) tcp flags set fin|ack")])),
    Scenario("psh_stripped_waiting",
             "psh_stripped's rules in front of a server whose stack waits for PSH "
             f"(record_path's pushpeer: it resets when unpushed data waited {PUSH_WAIT:g} s)",
             nft="\n".join([fwd("tcp flags == (psh|ack) tcp flags set ack"),
                            fwd("tcp flags == (fin|psh|ack) tcp flags set fin|ack")]),
             outcome="reset", server="pushpeer"),
    Scenario("psh_added",
             "nft forward, client->server data segments without PSH: `tcp flags == ack "
             "tcp doff 8 ip length > 52 tcp flags set psh|ack`",
             nft=fwd("tcp flags == ack tcp doff 8 ip length > 52 tcp flags set psh|ack")),
    Scenario("loss",
             "nft forward, client->server: `ip length 1500 quota until 6000 bytes numgen "
             "inc mod 2 == 0 drop` drops the 1st and 3rd full-size segment (once)",
             nft=fwd("ip length 1500 quota until 6000 bytes numgen inc mod 2 == 0 drop")),
    Scenario("injected_reset",
             "nft forward, client->server: a payload starting with RCPT, any case "
             "(`tcp doff 8 @th,256,32 & 0xdfdfdfdf == 0x52435054`), gets `reject with "
             "tcp reset`",
             nft=fwd("tcp doff 8 @th,256,32 & 0xdfdfdfdf == 0x52435054 "
                     "reject with tcp reset"),
             outcome="reset"),
    Scenario("mss_clamped",
             "nft forward, both directions (as MSS clamping does): `tcp flags syn tcp "
             "option maxseg size > 536 tcp option maxseg size set 536`",
             nft="tcp flags syn tcp option maxseg size > 536 tcp option maxseg size set 536"),
    Scenario("nat",
             "nft postrouting on rt-far: `snat ip to 198.51.100.1:40000-50000 fully-random`",
             nat=f'oifname "{FAR_IF}" ip saddr {CLIENT_IP} meta l4proto tcp '
                 f'snat ip to {ROUTER_FAR_IP}:{NAT_PORTS[0]}-{NAT_PORTS[1]} fully-random'),
    Scenario("seq_shift",
             f"userspace forwarder (AF_PACKET, ip_forward=0): client->server seq + "
             f"{SEQ_SHIFT}, server->client ack and SACK edges - {SEQ_SHIFT}",
             forward={"shift"}),
    Scenario("nat_seq_shift",
             "userspace forwarder: seq_shift plus source NAT of the client to "
             "198.51.100.1 with a random port in 40000-50000",
             forward={"shift", "nat"}),
    # nft could match EHLO and write XXXX (`@th,256,32 set 0x58585858`), but it fixes the
    # TCP checksum only for writes to known header fields, not for a raw payload write
    Scenario("smtp_fixup",
             "userspace forwarder: a client->server payload starting with EHLO (any case) "
             "is rewritten to XXXX; the server answers 500, smtplib falls back to HELO",
             forward={"fixup"}, outcome="helo"),
]


def ruleset(sc: Scenario) -> str:
    """The router's nft table for a scenario ('' if it needs none)."""
    chains = []
    if sc.nft:
        chains.append("chain forward {\n type filter hook forward priority filter; "
                      "policy accept;\n" + sc.nft + "\n}")
    if sc.nat:
        chains.append("chain postrouting {\n type nat hook postrouting priority srcnat; "
                      "policy accept;\n" + sc.nat + "\n}")
    if "nat" in sc.forward:
        # the server answers the NAT address: keep the router's own TCP from resetting it
        chains.append("chain input {\n type filter hook input priority filter; "
                      f'policy accept;\n iifname "{FAR_IF}" ip daddr {ROUTER_FAR_IP} '
                      f"tcp sport {SMTP_PORT} drop\n}}")
    return "table inet pushscan_path {\n" + "\n".join(chains) + "\n}\n" if chains else ""


# ---------------------------------------------------------------------------------------
# Namespaces, processes, captures
# ---------------------------------------------------------------------------------------

def run(*cmd: str, input: str | None = None) -> str:
    r = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60)
    if r.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr.strip()}")
    return r.stdout


class Testbed:
    """The three namespaces and their helper processes; close() removes everything."""

    def __init__(self) -> None:
        tag = f"pspath{os.getpid()}"
        self.client, self.router, self.server = (f"{tag}-client", f"{tag}-router",
                                                 f"{tag}-server")
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen[bytes]] = []

    def ns(self, ns: str, *cmd: str) -> list[str]:
        return ["ip", "netns", "exec", ns, *cmd]

    def build(self, ip_forward: bool) -> None:
        for ns in (self.client, self.router, self.server):
            run("ip", "netns", "add", ns)
            self.namespaces.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        for ns, ns_mac, rt_if, rt_mac in ((self.client, CLIENT_MAC, NEAR_IF, NEAR_MAC),
                                          (self.server, SERVER_MAC, FAR_IF, FAR_MAC)):
            run("ip", "link", "add", HOST_IF, "netns", ns, "address", ns_mac, "type", "veth",
                "peer", "name", rt_if, "netns", self.router, "address", rt_mac)
        for ns, addr, gw in ((self.client, f"{CLIENT_IP}/24", ROUTER_NEAR_IP),
                             (self.server, f"{SERVER_IP}/24", ROUTER_FAR_IP)):
            run(*self.ns(ns, sys.executable, str(HERE), "--role", "offload", HOST_IF))
            run("ip", "-n", ns, "addr", "add", addr, "dev", HOST_IF)
            run("ip", "-n", ns, "link", "set", HOST_IF, "up")
            run("ip", "-n", ns, "route", "add", "default", "via", gw)
        run(*self.ns(self.router, sys.executable, str(HERE), "--role", "offload",
                     NEAR_IF, FAR_IF))
        for iface, addr in ((NEAR_IF, f"{ROUTER_NEAR_IP}/24"), (FAR_IF, f"{ROUTER_FAR_IP}/24")):
            run("ip", "-n", self.router, "addr", "add", addr, "dev", iface)
            run("ip", "-n", self.router, "link", "set", iface, "up")
        # a new namespace may inherit the host's setting: always set it
        run(*self.ns(self.router, "sysctl", "-qw", f"net.ipv4.ip_forward={int(ip_forward)}"))

    def start(self, ns: str, *cmd: str, ready: str, timeout: float = 30.0
              ) -> subprocess.Popen[bytes]:
        """Start a process in a namespace; wait until it prints `ready` (tcpdump: on
        stderr, the helpers: on stdout)."""
        p = subprocess.Popen(self.ns(ns, *cmd), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.procs.append(p)
        stream = p.stderr if cmd[0] == "tcpdump" else p.stdout
        assert stream is not None
        seen, deadline = b"", time.monotonic() + timeout
        while ready.encode() not in seen:    # tcpdump may warn before "listening on"
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([stream], [], [], left)[0]:
                raise RuntimeError(f"{' '.join(cmd)}: no {ready!r} after {timeout} s")
            chunk = os.read(stream.fileno(), 4096)
            if not chunk:
                said = seen.decode(errors="replace") + self.stop(p)
                raise RuntimeError(f"{' '.join(cmd)} ended: {said.strip()}")
            seen += chunk
        return p

    def helper(self, ns: str, *args: str) -> subprocess.Popen[bytes]:
        return self.start(ns, sys.executable, str(HERE), "--role", *args, ready="ready")

    def stop(self, p: subprocess.Popen[bytes]) -> str:
        """Stop a process (SIGTERM, then SIGKILL); return its stderr."""
        if p.poll() is None:
            p.terminate()
        try:
            err = p.communicate(timeout=10)[1]
        except subprocess.TimeoutExpired:
            p.kill()
            err = p.communicate()[1]
        if p in self.procs:
            self.procs.remove(p)
        return (err or b"").decode(errors="replace")

    def close(self) -> None:
        for p in reversed(self.procs):           # the captures first
            self.stop(p)
        if self.router in self.namespaces:
            subprocess.run(self.ns(self.router, "nft", "delete", "table", "inet",
                                   "pushscan_path"), capture_output=True)
        for ns in reversed(self.namespaces):     # deleting a namespace deletes its veths
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces.clear()


def record(sc: Scenario, out: Path) -> tuple[Path, Path]:
    near, far = out / f"path_{sc.name}_near.pcap", out / f"path_{sc.name}_far.pcap"
    net = Testbed()
    try:
        net.build(ip_forward=not sc.forward)
        rules = ruleset(sc)
        if rules:
            run(*net.ns(net.router, "nft", "-f", "-"), input=rules)
        net.helper(net.server, sc.server)
        if sc.forward:
            net.helper(net.router, "forward", ",".join(sorted(sc.forward)))
        caps = []                        # IPv4 only: no ARP, no IPv6 neighbour chatter
        for path, iface in ((near, NEAR_IF), (far, FAR_IF)):
            path.unlink(missing_ok=True)
            caps.append(net.start(net.router, "tcpdump", "-i", iface, "-s", "0", "-U",
                                  "--immediate-mode", "-w", str(path), "ip",
                                  ready="listening on"))
        time.sleep(1.0)                  # "listening on" comes just before tcpdump attaches
        r = subprocess.run(net.ns(net.client, sys.executable, str(HERE), "--role", "client"),
                           capture_output=True, text=True, timeout=60)
        outcome = r.stdout.strip()
        time.sleep(1.0)                  # let the last packets (FIN, ACK) through
        for cap in caps:                 # before the server stops and closes its end
            err = net.stop(cap)
            if "\n0 packets dropped by kernel" not in "\n" + err:
                raise RuntimeError(f"tcpdump: {err.strip()}")
        if r.returncode or outcome != sc.outcome:
            raise RuntimeError(f"{sc.name}: client said {outcome!r} (wanted {sc.outcome!r}); "
                               f"{r.stderr.strip()}")
    finally:
        net.close()
    owner = out.stat()
    for path in (near, far):
        # tcpdump writes as its own user: give the files the folder's owner
        os.chown(path, owner.st_uid, owner.st_gid)
        os.chmod(path, 0o644)
        if path.stat().st_size > MAX_FILE:
            raise RuntimeError(f"{path} is {path.stat().st_size} bytes")
    return near, far


# ---------------------------------------------------------------------------------------
# Checking a pair: what tshark sees on each side, paired packet by packet
# ---------------------------------------------------------------------------------------

FIELDS = ["frame.number", "ip.src", "ip.dst", "tcp.srcport", "tcp.dstport", "ip.ttl",
          "ip.id", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.len",
          "tcp.options.mss_val", "tcp.options.timestamp.tsval", "ip.checksum.status",
          "tcp.checksum.status", "tcp.payload", "frame.time_epoch"]
COMPARED = ["src", "dst", "sport", "dport", "flags", "seq", "ack", "mss", "payload"]


@dataclass
class Pkt:
    frame: int
    src: str
    dst: str
    sport: int
    dport: int
    ttl: int
    ipid: int
    flags: int
    seq: int
    ack: int
    length: int
    mss: int | None
    tsval: int | None
    good: bool                                 # IP and TCP checksums verified good
    payload: bytes
    ts: float = 0.0                            # capture time, s

    @property
    def c2s(self) -> bool:
        return self.dport == SMTP_PORT

    @property
    def key(self) -> tuple:
        return (self.c2s, self.ipid, self.tsval, self.length)

    @property
    def verb(self) -> str:
        return self.payload[:4].decode("ascii", "replace")

    @property
    def what(self) -> str:
        """The SMTP command a client segment starts with, or 'body'."""
        verb = self.verb.upper()
        return verb if verb in ("EHLO", "HELO", "MAIL", "RCPT", "DATA", "QUIT") else "body"


def read(path: Path) -> list[Pkt]:
    cmd = ["tshark", "-r", str(path), "-o", "tcp.check_checksum:TRUE",
           "-o", "ip.check_checksum:TRUE", "-T", "fields", "-E", "occurrence=f"]
    for f in FIELDS:
        cmd += ["-e", f]
    pkts = []
    for line in run(*cmd).splitlines():
        v = line.split("\t")
        if not v[3]:
            raise RuntimeError(f"{path} frame {v[0]} is not TCP: {line}")
        pkts.append(Pkt(int(v[0]), v[1], v[2], int(v[3]), int(v[4]), int(v[5]),
                         int(v[6], 16), int(v[7], 16), int(v[8]), int(v[9]), int(v[10]),
                         int(v[11]) if v[11] else None, int(v[12]) if v[12] else None,
                         v[13] == "1" and v[14] == "1", bytes.fromhex(v[15].replace(":", "")),
                         float(v[16])))
    return pkts


@dataclass
class Diff:
    """Two views of the same traffic, paired."""
    near: list[Pkt]
    far: list[Pkt]
    pairs: list[tuple[Pkt, Pkt]] = field(default_factory=list)
    near_only: list[Pkt] = field(default_factory=list)
    far_only: list[Pkt] = field(default_factory=list)
    changed: dict[tuple[bool, str], list[tuple[Pkt, Pkt]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        far_by_key = {p.key: p for p in self.far}
        if len(far_by_key) != len(self.far) or len({p.key for p in self.near}) != len(self.near):
            raise RuntimeError("two packets of one file share IP ID, TSval and length")
        for n in self.near:
            f = far_by_key.pop(n.key, None)
            if f is None:
                self.near_only.append(n)
                continue
            self.pairs.append((n, f))
            for name in COMPARED:
                if getattr(n, name) != getattr(f, name):
                    self.changed.setdefault((n.c2s, name), []).append((n, f))
            # one hop: the far copy of client->server, the near copy of server->client
            before, after = (n, f) if n.c2s else (f, n)
            if after.ttl != before.ttl - 1:
                raise RuntimeError(f"TTL near {n.frame} {n.ttl}, far {f.frame} {f.ttl}")
        self.far_only = sorted(far_by_key.values(), key=lambda p: p.frame)
        for p in self.near + self.far:
            if not p.good:
                raise RuntimeError(f"bad checksum in frame {p.frame}")

    def expect(self, **want: int) -> None:
        """Exactly these (direction_field=count) changes, e.g. c2s_flags=6; none else."""
        got = {f"{'c2s' if d else 's2c'}_{name}": len(v) for (d, name), v in
               self.changed.items()}
        if got != want:
            raise RuntimeError(f"changed fields {got}, wanted {want}")

    def only(self, near: int = 0, far: int = 0) -> None:
        if (len(self.near_only), len(self.far_only)) != (near, far):
            raise RuntimeError(f"unpaired: near {[p.frame for p in self.near_only]}, "
                               f"far {[p.frame for p in self.far_only]}")

    def get(self, c2s: bool, name: str) -> list[tuple[Pkt, Pkt]]:
        return self.changed.get((c2s, name), [])


def need(ok: object) -> None:
    """A check of a recorded pair (not an assert: it must hold under python -O too)."""
    if not ok:
        raise RuntimeError("the recorded pair is not as intended (see the traceback)")


def frames(pkts: list[Pkt]) -> str:
    return ",".join(str(p.frame) for p in pkts)


def sides(pairs: list[tuple[Pkt, Pkt]]) -> tuple[str, str]:
    return frames([n for n, _ in pairs]), frames([f for _, f in pairs])


def same_rest(d: Diff) -> str:
    """The common end of a README line: what agrees, and where the order differs."""
    changed = {id(n) for v in d.changed.values() for n, _ in v}
    rest = sum(id(n) not in changed for n, _ in d.pairs)
    if rest == 0:
        text = "IP ID, TSval, flags, MSS, payload agree; TTL one lower after the router"
    else:
        text = ((f"the other {rest} pairs" if changed else f"all {rest} pairs") +
                " agree on IP ID, TSval, seq/ack, flags, MSS, payload; TTL one lower "
                "after the router")
    # near sees client packets before the router and server packets after it, far the
    # other way round: a server packet can overtake client packets between the two
    crossed, last = [], 0
    for n, f in d.pairs:
        if f.frame < last:
            crossed.append((n, f))
        last = max(last, f.frame)
    if crossed:
        nf, ff = sides(crossed)
        text += (f"; order: near frames {nf} are far frames {ff}, ahead of client "
                 f"packets they follow in the near file (they crossed in the router)")
    return text


def check_clean(d: Diff) -> str:
    d.expect()
    d.only()
    same = all(n.frame == f.frame for n, f in d.pairs)
    return (f"nothing: near frames 1-{len(d.near)} and far frames 1-{len(d.far)} pair up"
            f"{' frame for frame' if same else ''}; {same_rest(d)}")


def check_psh_waiting(d: Diff) -> str:
    d.only()
    pairs = d.get(True, "flags")
    d.expect(c2s_flags=len(pairs))
    need(len(pairs) == 1)
    (n, f), = pairs
    need(n.flags & 0x08 and not f.flags & 0x08 and n.what == "EHLO")
    rst = [(a, b) for a, b in d.pairs if not a.c2s and a.flags & 0x04]
    need(len(rst) == 1)
    (rn, rf), = rst
    need(rf.ttl == 64 and rn.ttl == 63 and rf.ts - f.ts >= PUSH_WAIT)   # the server's own reset
    return (f"PSH cleared: near frame {n.frame} (client->server EHLO, PSH) is far frame "
            f"{f.frame} without PSH; the server acknowledges it and waits; after "
            f"{rf.ts - f.ts:.1f} s it resets (far frame {rf.frame}, TTL 64 = near frame "
            f"{rn.frame}, TTL 63): the client never gets an answer to EHLO; {same_rest(d)}")


def check_psh(removed: bool) -> Callable[[Diff], str]:
    def check(d: Diff) -> str:
        pairs = d.get(True, "flags")
        d.only()
        d.expect(c2s_flags=len(pairs))
        for n, f in pairs:
            need((n.flags ^ f.flags) == 0x08 and bool(n.flags & 0x08) == removed)
        if removed:
            need(not any(p.flags & 0x08 for p in d.far if p.c2s))
        else:
            need(all(p.flags & 0x08 for p in d.far if p.c2s and p.length))
        nf, ff = sides(pairs)
        verbs = " ".join(n.what for n, _ in pairs)
        if removed:
            return (f"PSH cleared: near frames {nf} (client->server, PSH: {verbs}) are far "
                    f"frames {ff} without PSH (checksums valid); {same_rest(d)}")
        return (f"PSH set: near frames {nf} (client->server body segments without PSH) are "
                f"far frames {ff} with PSH; {same_rest(d)}")
    return check


def check_loss(d: Diff) -> str:
    d.expect()
    d.only(near=2)
    lost = d.near_only
    need(all(p.c2s and p.length == FULL_SIZE for p in lost))
    again = [(n, f) for n, f in d.pairs if n.c2s and any(n.seq == p.seq for p in lost)]
    need(len(again) == 2)
    rn, rf = sides(again)
    return (f"near frames {frames(lost)} (client->server body segments, {FULL_SIZE} bytes) "
            f"are missing from the far file; their retransmissions are near frames {rn}, "
            f"far frames {rf}; {same_rest(d)}")


def check_reset(d: Diff) -> str:
    d.expect()
    d.only(near=2)
    rcpt, rst = d.near_only
    need(rcpt.c2s and rcpt.verb.upper() == "RCPT" and not rst.c2s and rst.flags & 0x04)
    need(rst.src == SERVER_IP and not any(p.flags & 0x04 for p in d.far if not p.c2s))
    server_ttl = {n.ttl for n, _ in d.pairs if not n.c2s}
    text = (f"near frame {rcpt.frame} (client->server RCPT) is not in the far file; near "
            f"frame {rst.frame} is a RST from {SERVER_IP}:{SMTP_PORT} (TTL {rst.ttl}, IP ID "
            f"{rst.ipid}; the server's own packets reach the client with TTL "
            f"{min(server_ttl)}) that the far file lacks: no RST from the server there")
    # the server never saw RCPT (nor its ACK): it retransmits its last reply, and the
    # client, already closed, answers that with a RST of its own
    after = [(n, f) for n, f in d.pairs if n.frame > rst.frame]
    if after:
        nf, ff = sides(after)
        text += (f"; the server then retransmits its unacknowledged 250 and the closed client "
                 f"answers with a RST of its own: near frames {nf}, far frames {ff}")
    return f"{text}; {same_rest(d)}"


def check_mss(d: Diff) -> str:
    d.only()
    d.expect(c2s_mss=1, s2c_mss=1)
    (syn_n, syn_f), = d.get(True, "mss")
    (sa_n, sa_f), = d.get(False, "mss")
    need((syn_n.mss, syn_f.mss, sa_f.mss, sa_n.mss) == (1460, 536, 1460, 536))
    seg = max(p.length for p in d.far if p.c2s)
    return (f"MSS: client SYN near frame {syn_n.frame} 1460, far frame {syn_f.frame} 536; "
            f"server SYN-ACK far frame {sa_f.frame} 1460, near frame {sa_n.frame} 536 (so "
            f"the client's segments are {seg} bytes in both files); {same_rest(d)}")


def check_nat(shift: bool) -> Callable[[Diff], str]:
    def check(d: Diff) -> str:
        d.only()
        c2s = [(n, f) for n, f in d.pairs if n.c2s]
        s2c = [(n, f) for n, f in d.pairs if not n.c2s]
        want = {"c2s_src": len(c2s), "c2s_sport": len(c2s), "s2c_dst": len(s2c),
                "s2c_dport": len(s2c)}
        if shift:
            want.update(c2s_seq=len(c2s), s2c_ack=len(s2c))
        d.expect(**want)
        n, f = c2s[0]
        need(f.src == ROUTER_FAR_IP and NAT_PORTS[0] <= f.sport <= NAT_PORTS[1])
        need(len({f.sport for _, f in c2s} | {f.dport for _, f in s2c}) == 1)
        text = (f"NAT: client {n.src}:{n.sport} in all near frames is {f.src}:{f.sport} in "
                f"all far frames")
        if shift:
            text += "; " + shift_text(d)
        return text + f"; {same_rest(d)}"
    return check


def shift_text(d: Diff) -> str:
    for n, f in d.get(True, "seq"):
        need((f.seq - n.seq) & 0xFFFFFFFF == SEQ_SHIFT)
    for n, f in d.get(False, "ack"):
        need((f.ack - n.ack) & 0xFFFFFFFF == SEQ_SHIFT)
    syn_n, syn_f = d.get(True, "seq")[0]
    return (f"sequence numbers: every client->server seq is {SEQ_SHIFT} higher in the far "
            f"file (SYN near frame {syn_n.frame} ISN {syn_n.seq}, far frame {syn_f.frame} "
            f"ISN {syn_f.seq}) and every server->client ack {SEQ_SHIFT} higher in the far "
            f"file than in the near file")


def check_shift(d: Diff) -> str:
    d.only()
    d.expect(c2s_seq=sum(p.c2s for p in d.near), s2c_ack=sum(not p.c2s for p in d.near))
    return f"{shift_text(d)}; {same_rest(d)}"


def check_fixup(d: Diff) -> str:
    d.only()
    d.expect(c2s_payload=1)
    (n, f), = d.get(True, "payload")
    need(n.verb.upper() == "EHLO" and f.verb == "XXXX")
    helo = next(p for p in d.near if p.c2s and p.verb.upper() == "HELO")
    refused = next(p for p in d.near if not p.c2s and p.payload[:1] == b"5")
    return (f"payload: near frame {n.frame} `{n.payload.decode().strip()}` is far frame "
            f"{f.frame} `{f.payload.decode().strip()}`; the server's "
            f"`{refused.payload.decode().strip()}` (near frame {refused.frame}) and the "
            f"client's HELO (near frame {helo.frame}) follow in both; {same_rest(d)}")


CHECKS: dict[str, Callable[[Diff], str]] = {
    "clean": check_clean, "psh_stripped": check_psh(True), "psh_added": check_psh(False),
    "psh_stripped_waiting": check_psh_waiting,
    "loss": check_loss, "injected_reset": check_reset, "mss_clamped": check_mss,
    "nat": check_nat(False), "seq_shift": check_shift, "nat_seq_shift": check_nat(True),
    "smtp_fixup": check_fixup,
}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--role"]:
        role, args = argv[1], argv[2:]
        if role == "client":
            role_client()
        elif role == "server":
            role_server()
        elif role == "pushpeer":
            role_pushpeer()
        elif role == "forward":
            role_forward(set(args[0].split(",")))
        elif role == "offload":
            role_offload(args)
        else:
            raise SystemExit(f"unknown role {role}")
        return 0
    if os.geteuid() != 0:
        raise SystemExit("needs root (network namespaces, nft, tcpdump)")
    # a plain SIGTERM would skip the clean-up in `finally`: make it an exception
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("terminated"))
    out = (Path(argv[0]) if argv and argv[0] not in CHECKS else HERE.parent).resolve()
    names = [a for a in argv if a in CHECKS] or [sc.name for sc in SCENARIOS]
    out.mkdir(parents=True, exist_ok=True)
    for sc in SCENARIOS:
        if sc.name not in names:
            continue
        t0 = time.monotonic()
        near, far = record(sc, out)
        what = CHECKS[sc.name](Diff(read(near), read(far)))
        cells = [f"`{near.name}`, `{far.name}`", f"record_path: {sc.how}", what]
        # a | splits a Markdown table cell even inside `code`
        print("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        print(f"  ({time.monotonic() - t0:.1f} s, {near.stat().st_size} + "
              f"{far.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
