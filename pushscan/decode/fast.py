"""The compiled decoder: ``vector.decode``'s batches from the loop in ``kernel.py``."""
from __future__ import annotations

import numpy as np

from ..compiled import kernels
from ..model import DecodeStats, RawBatch, SegmentBatch, segments
from .icmp import icmp_error
from .kernel import ICMP_AT, STATS
from .peel import TUNNELED, tunnel_index


def decode_fast(raw: RawBatch, frame0: int, stats: DecodeStats) -> SegmentBatch:
    """``vector.decode``, compiled. The same batch (flow indices may differ), with hints."""
    n = len(raw)
    stats.packets += n
    a = np.frombuffer(raw.data, dtype=np.uint8)
    seg = segments(n)
    keys = np.empty((max(n, 1), 7), dtype=np.uint64)
    size = 1 << max(4, (2 * n).bit_length())
    table = np.empty(size, dtype=np.int64)
    icmp = np.empty(max(n, 1), dtype=ICMP_AT)
    st = np.zeros(1, dtype=STATS)
    tseg = np.empty(max(n, 1), dtype=TUNNELED)
    nseg, nflow, nicmp = kernels().decode(a, raw.off, raw.caplen, raw.linktype, raw.ts,
                                          frame0, seg, keys, table, icmp, st,
                                          np.empty(7, dtype=np.uint64), np.zeros(1, dtype=TUNNELED),
                                          tseg)
    for name in STATS.names or ():
        setattr(stats, name, getattr(stats, name) + int(st[0][name]))
    batch = SegmentBatch(data=raw.data, hints=True)
    at = icmp[:nicmp]
    for k, l3, l4, ver in zip(at["index"].tolist(), at["l3"].tolist(), at["l4"].tolist(),
                              at["ipver"].tolist()):
        err = icmp_error(raw.data, l4, int(raw.off[k] + raw.caplen[k]), ver, frame0 + 1 + k,
                         int(raw.ts[k]), l3)
        if err is not None:
            stats.icmp_errors += 1
            batch.icmp.append(err)
        else:                           # an echo, an error about UDP, ...
            stats.not_tcp += 1
    if nseg:
        batch.seg = seg[:nseg] if nseg < n else seg
        batch.flows = [tuple(row) for row in keys[:nflow].tolist()]
        if st[0]["tunneled"]:
            batch.seg["tunnel"], batch.tunnels = tunnel_index(tseg[:nseg])
    return batch
