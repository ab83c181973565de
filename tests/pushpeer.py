"""A test SMTP peer whose 'TCP stack' waits for PSH: it hands received data to its SMTP
logic only once a segment with PSH has carried it (it watches its interface with an
AF_PACKET socket to know), and it resets the connection when unpushed data has waited
longer than WAIT seconds. Linux never withholds data like this; this peer plays the part
of the stacks that do, for tests/test_live.py.

    python tests/pushpeer.py IFACE HOST PORT WAIT
"""
from __future__ import annotations

import socket
import struct
import sys
import threading
import time

IFACE, HOST, PORT, WAIT = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
lock = threading.Lock()
isn: dict[int, int] = {}            # client port -> initial sequence number
pushed_upto: dict[int, int] = {}    # client port -> stream bytes covered by a PSH segment


def sniff() -> None:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    s.bind((IFACE, 0))
    while True:
        ip = s.recv(65535)[14:]
        if len(ip) < 40 or ip[9] != 6:
            continue
        ihl = (ip[0] & 15) * 4
        tcp = ip[ihl:]
        sport, dport, seq = struct.unpack("!HHI", tcp[:8])
        if dport != PORT:
            continue
        flags, doff = tcp[13], (tcp[12] >> 4) * 4
        plen = struct.unpack("!H", ip[2:4])[0] - ihl - doff
        with lock:
            if flags & 0x02:
                isn[sport], pushed_upto[sport] = seq, 0
            elif plen > 0 and flags & 0x08 and sport in isn:
                end = (seq + plen - isn[sport] - 1) & 0xFFFFFFFF
                pushed_upto[sport] = max(pushed_upto.get(sport, 0), end)


def reply(line: bytes, state: dict) -> bytes:
    verb = line.split(b" ", 1)[0].upper()
    if state.get("body"):
        if line == b".":
            state["body"] = False
            return b"250 queued\r\n"
        return b""
    if verb == b"DATA":
        state["body"] = True
        return b"354 go ahead\r\n"
    if verb == b"QUIT":
        return b"221 bye\r\n"
    return b"250 ok\r\n"


def serve(conn: socket.socket, port: int) -> None:
    conn.sendall(b"220 pushpeer ESMTP\r\n")
    conn.settimeout(0.05)
    received, delivered, waiting_since = bytearray(), 0, None
    state: dict = {}
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
        if pushed > delivered:                  # hand the pushed bytes to the application
            chunk, delivered, waiting_since = bytes(received[delivered:pushed]), pushed, None
            for line in chunk.split(b"\r\n")[:-1]:
                out = reply(line, state)
                if out:
                    conn.sendall(out)
                if out.startswith(b"221"):
                    conn.close()
                    return
        elif len(received) > delivered:         # unpushed data sits in the 'stack'
            waiting_since = waiting_since or time.monotonic()
            if time.monotonic() - waiting_since > WAIT:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.close()                    # SO_LINGER 0: the close sends a reset
                return


def main() -> None:
    threading.Thread(target=sniff, daemon=True).start()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, PORT))
    srv.listen()
    print("listening", flush=True)
    while True:
        conn, (_, port) = srv.accept()
        threading.Thread(target=serve, args=(conn, port), daemon=True).start()


if __name__ == "__main__":
    main()
