"""The pcap record scanner compiled with numba (module level, so that numba caches it;
a function defined inside another is compiled again in every process; see
``compiled.py``). The contract is ``scan.scan_pcap_py``'s; ``scan.scan_pcap_compiled``
calls it."""
import numpy as np

from ..compiled import compiled


@compiled()
def _word(a, p, big):  # pragma: no cover - compiled
    if big:
        return (np.int64(a[p]) << 24) | (np.int64(a[p + 1]) << 16) | \
            (np.int64(a[p + 2]) << 8) | np.int64(a[p + 3])
    return (np.int64(a[p + 3]) << 24) | (np.int64(a[p + 2]) << 16) | \
        (np.int64(a[p + 1]) << 8) | np.int64(a[p])


@compiled()   # no reference counting: see tcp/kernel.py
def kernel(a, pos, big, limit, off, cap, orig, sec, frac):  # pragma: no cover - compiled
    n = a.shape[0]
    k = 0
    damaged = False
    while pos + 16 <= n and k < off.shape[0]:
        incl = _word(a, pos + 8, big)
        if incl > limit:
            damaged = True
            break
        end = pos + 16 + incl
        if end > n:
            break
        off[k] = pos + 16
        cap[k] = incl
        orig[k] = _word(a, pos + 12, big)
        sec[k] = _word(a, pos, big)
        frac[k] = _word(a, pos + 4, big)
        k += 1
        pos = end
    return k, pos, damaged
