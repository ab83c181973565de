"""The highest packet rate ``pushscan live`` sustains on loopback with no kernel drops.

A sender writes small messages (TCP_NODELAY, one segment each) to a sink on 127.0.0.1 at
rising rates while ``pushscan live -i lo`` captures that port through dumpcap; each step
reads the packets live analysed and the kernel drops dumpcap counted. Needs root.

    python bench/live_rate.py [--seconds 6] [--rates 5000,10000,20000,40000,80000]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
import time


def sink(server: socket.socket) -> None:
    while True:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        threading.Thread(target=lambda c=conn: [None for _ in iter(lambda: c.recv(65536), b"")], daemon=True).start()


def send(port: int, writes_per_s: int, seconds: float) -> int:
    """Write 40-byte messages at the given rate for ``seconds``; returns writes done."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    msg = b"RCPT TO:<someone@example.org>\r\nNOOP\r\n"[:40]
    done, start = 0, time.perf_counter()
    end = start + seconds
    while True:
        now = time.perf_counter()
        if now >= end:
            break
        due = int((now - start) * writes_per_s)
        while done < due:
            s.send(msg)
            done += 1
        time.sleep(0.0005)
    s.close()
    return done


def step(port: int, rate: int, seconds: float) -> dict:
    live = subprocess.Popen([sys.executable, "-m", "pushscan", "live", "-i", "lo", "--bpf", f"tcp port {port}",
                             "--smtp-port", str(port), "--format", "jsonl", "--duration", str(seconds + 3)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    writes = send(port, rate // 2, seconds)     # a write and (about) an ACK: ~2 packets
    out, err = live.communicate(timeout=120)
    summary = json.loads(out.splitlines()[-1])
    inp = summary["inputs"][0]
    return {"target_pps": rate, "writes": writes, "packets": inp["packets"],
            "pps": round(inp["packets"] / seconds), "kernel_drops": inp["kernel_drops"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=6)
    ap.add_argument("--rates", default="5000,10000,20000,40000,80000,160000")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("capturing needs root")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    threading.Thread(target=sink, args=(server,), daemon=True).start()
    best = 0
    print("| target packets/s | packets analysed | packets/s | kernel drops |\n|---:|---:|---:|---:|")
    for rate in (int(r) for r in a.rates.split(",")):
        r = step(port, rate, a.seconds)
        print(f"| {rate:,} | {r['packets']:,} | {r['pps']:,} | {r['kernel_drops']} |", flush=True)
        if r["kernel_drops"] == 0:
            best = max(best, r["pps"])
        else:
            break
    print(f"\nhighest rate with no kernel drops: {best:,} packets/s "
          f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
