"""Make the far point's copy of a capture from bench/generate.py, as a middlebox between
the two points would pass it: for benchmarking and testing ``pushscan compare``.

The input is taken as the near point (the clients' side). The copy: source NAT of every
client to one address with a new port per session, the clients' sequence numbers shifted
(and the servers' acknowledgements with them), a far clock OFFSET seconds ahead, a
one-way DELAY each way (client packets arrive later, server packets left earlier: the
two directions reorder), TTL one lower on the far side of the path, PSH cleared on a
share of the clients' pushed segments (--clear-psh), and a share of the client segments
the generator retransmitted lost the first time (--drop: the original never reaches the
far point, the retransmission does; a segment dropped without one would be acknowledged
by a server that never got it, which no path does). Prints what it changed as JSON
(counts, and the near frame numbers of the dropped and cleared segments).

    python bench/far_copy.py NEAR.pcap FAR.pcap [--drop 0.5] [--clear-psh 0.01] [--seed 1]
"""
from __future__ import annotations

import argparse
import json
import random
import struct
import sys

NAT_IP = bytes([203, 0, 113, 1])
SHIFT = 1_000_000_000
REC = struct.Struct("<IIII")
PSH = 0x08


def records(data: bytes):
    at, frame = 24, 0
    while at + 16 <= len(data):
        sec, usec, incl, orig = REC.unpack_from(data, at)
        frame += 1
        yield frame, sec, usec, orig, data[at + 16:at + 16 + incl]
        at += 16 + incl


def client_data(pkt: bytes) -> tuple | None:
    """(client address, port, seq, length) of a client data segment, else None."""
    if len(pkt) < 54 or pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
        return None
    ihl = (pkt[14] & 15) * 4
    tcp = 14 + ihl
    sport, dport, seq = struct.unpack_from("!HHI", pkt, tcp)
    plen = struct.unpack_from("!H", pkt, 16)[0] - ihl - (pkt[tcp + 12] >> 4) * 4
    return (bytes(pkt[26:30]), sport, seq, plen) if dport == 25 and plen > 0 else None


def far_copy(src: str, dst: str, drop: float = 0.5, clear_psh: float = 0.01, seed: int = 1,
             offset: float = 3.7, delay: float = 0.0004) -> dict:
    rng = random.Random(seed)
    data = open(src, "rb").read()
    head = data[:24]
    seen: dict[tuple, int] = {}
    for _, _, _, _, pkt in records(data):
        k = client_data(pkt)
        if k is not None:
            seen[k] = seen.get(k, 0) + 1
    again = {k for k, n in seen.items() if n > 1 and rng.random() < drop}
    out: list[tuple[int, int, bytes]] = []
    nat: dict[tuple[bytes, int], int] = {}
    dropped, cleared = [], []
    for frame, sec, usec, orig, raw in records(data):
        pkt = bytearray(raw)
        if len(pkt) < 54 or pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
            continue
        ihl = (pkt[14] & 15) * 4
        tcp = 14 + ihl
        sport, dport = struct.unpack_from("!HH", pkt, tcp)
        from_client = dport == 25
        plen = struct.unpack_from("!H", pkt, 16)[0] - ihl - (pkt[tcp + 12] >> 4) * 4
        flags = pkt[tcp + 13]
        t = sec * 1_000_000 + usec + int(offset * 1e6)
        if from_client:
            k = client_data(raw)
            if k in again:
                again.discard(k)                             # the first copy only
                dropped.append(frame)
                continue
            if plen and flags & PSH and rng.random() < clear_psh:
                pkt[tcp + 13] = flags & ~PSH
                cleared.append(frame)
            key = (bytes(pkt[26:30]), sport)
            port = nat.setdefault(key, 1024 + len(nat) % 64000)
            pkt[26:30] = NAT_IP
            struct.pack_into("!H", pkt, tcp, port)
            seq = struct.unpack_from("!I", pkt, tcp + 4)[0]
            struct.pack_into("!I", pkt, tcp + 4, (seq + SHIFT) & 0xFFFFFFFF)
            pkt[22] -= 1                                     # one hop further from the client
            t += int(delay * 1e6)
        else:
            key = (bytes(pkt[30:34]), dport)
            port = nat.setdefault(key, 1024 + len(nat) % 64000)
            pkt[30:34] = NAT_IP
            struct.pack_into("!H", pkt, tcp + 2, port)
            if pkt[tcp + 13] & 0x10:
                ack = struct.unpack_from("!I", pkt, tcp + 8)[0]
                struct.pack_into("!I", pkt, tcp + 8, (ack + SHIFT) & 0xFFFFFFFF)
            pkt[22] += 1                                     # nearer the server
            t -= int(delay * 1e6)
        out.append((t, frame, REC.pack(t // 1_000_000, t % 1_000_000, len(pkt), orig) + bytes(pkt)))
    out.sort(key=lambda r: (r[0], r[1]))
    with open(dst, "wb") as f:
        f.write(head)
        f.write(b"".join(r for _, _, r in out))
    return {"packets": len(out), "dropped": dropped, "cleared_psh": cleared, "sessions": len(nat)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("near")
    ap.add_argument("far")
    ap.add_argument("--drop", type=float, default=0.5)
    ap.add_argument("--clear-psh", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    json.dump(far_copy(a.near, a.far, a.drop, a.clear_psh, a.seed), sys.stdout)
    print()


if __name__ == "__main__":
    main()
