"""The pcap record scanner compiled with numba (module level, so that numba caches it;
a function defined inside another is compiled again in every process). The contract is
``scan.scan_pcap_py``'s; ``scan.scan_pcap_numba`` calls it."""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def kernel(a, pos, big, limit, off, cap, orig, sec, frac):  # pragma: no cover - compiled
    n = a.shape[0]
    k = 0
    damaged = False
    v = np.empty(4, np.int64)
    while pos + 16 <= n and k < off.shape[0]:
        for j in range(4):
            p = pos + 4 * j
            if big:
                v[j] = (np.int64(a[p]) << 24) | (np.int64(a[p + 1]) << 16) | \
                    (np.int64(a[p + 2]) << 8) | np.int64(a[p + 3])
            else:
                v[j] = (np.int64(a[p + 3]) << 24) | (np.int64(a[p + 2]) << 16) | \
                    (np.int64(a[p + 1]) << 8) | np.int64(a[p])
        if v[2] > limit:
            damaged = True
            break
        end = pos + 16 + v[2]
        if end > n:
            break
        off[k] = pos + 16
        cap[k] = v[2]
        orig[k] = v[3]
        sec[k] = v[0]
        frac[k] = v[1]
        k += 1
        pos = end
    return k, pos, damaged
