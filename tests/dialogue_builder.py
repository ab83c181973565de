"""Build small TCP dialogues as pcap files for tests (scapy): a client and a server that
take turns, with sequence numbers kept right, so that a test can say what it needs
(an FTP login, a stray reset before the SYN-ACK) in a few lines."""
from __future__ import annotations

from pathlib import Path


class Dialogue:
    """``send(side, flags, data)`` appends a packet from "c" (client) or "s" (server);
    ``write(path)`` writes the pcap (one packet every 10 ms)."""

    def __init__(self, client: tuple[str, int] = ("192.0.2.10", 40000),
                 server: tuple[str, int] = ("198.51.100.25", 25)) -> None:
        self.ends = {"c": client, "s": server}
        self.seq = {"c": 1_000, "s": 5_000}
        self.acked = {"c": 0, "s": 0}         # what each side last acknowledged
        self.packets: list = []

    def send(self, side: str, flags: str, data: bytes = b"", *, seq: int | None = None,
             ack: int | None = None) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether

        other = "s" if side == "c" else "c"
        (src, sport), (dst, dport) = self.ends[side], self.ends[other]
        s = self.seq[side] if seq is None else seq
        a = self.seq[other] if ack is None else ack
        macs = ("02:00:00:00:00:0c", "02:00:00:00:00:05")   # (scapy asks ARP without them)
        self.packets.append(Ether(src=macs[side == "s"], dst=macs[side == "c"]) /
                            IP(src=src, dst=dst, ttl=64) /
                            TCP(sport=sport, dport=dport, flags=flags, seq=s,
                                ack=a if "A" in flags else 0, window=65535) / data)
        if seq is None:
            self.seq[side] += len(data) + ("S" in flags) + ("F" in flags)

    def handshake(self) -> None:
        self.send("c", "S")
        self.send("s", "SA")
        self.send("c", "A")

    def say(self, side: str, line: bytes) -> None:
        """A line, pushed, then the other side's bare ACK."""
        self.send(side, "PA", line)
        self.send("s" if side == "c" else "c", "A")

    def close(self) -> None:
        self.send("c", "FA")
        self.send("s", "FA")
        self.send("c", "A")

    def write(self, path: Path) -> Path:
        from scapy.utils import wrpcap

        for i, p in enumerate(self.packets):
            p.time = 1_700_000_000 + i / 100
        wrpcap(str(path), self.packets)
        return path
