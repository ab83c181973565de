"""The pcap record scanner and the pcapng enhanced-packet-block scanner, compiled with
numba (``pushscan.compiled``). The contracts are ``scan.scan_pcap_py``'s and that of the
reader's Python block loop; ``scan.scan_pcap_compiled`` and ``scan.scan_epb_compiled``
call them."""
import numpy as np

from ..compiled.marker import Array, Record, compiled
from ..model import TS_MAX


@compiled()
def _word(a: Array, p: Record, big: bool) -> int:  # pragma: no cover - compiled
    if big:
        return (np.int64(a[p]) << 24) | (np.int64(a[p + 1]) << 16) | \
            (np.int64(a[p + 2]) << 8) | np.int64(a[p + 3])
    return (np.int64(a[p + 3]) << 24) | (np.int64(a[p + 2]) << 16) | \
        (np.int64(a[p + 1]) << 8) | np.int64(a[p])


@compiled()   # no reference counting: see tcp/kernel.py
def kernel(
        a: Array, pos: int, big: bool, limit: int, off: Array, cap: Array, orig: Array,
        sec: Array, frac: Array) -> tuple[int, int, bool]:  # pragma: no cover - compiled
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


EPB_MIN = 32                # an enhanced packet block's header, trailer and no data


@compiled()   # no reference counting: see tcp/kernel.py
def epb_kernel(
        a: Array, pos: int, big: bool, nifaces: int, maxblock: int, off: Array, cap: Array,
        orig: Array, rawts: Array, iface: Array) -> tuple[int, int]:  # pragma: no cover
    """pcapng enhanced packet blocks from ``pos`` (``scan.scan_epb_py``'s contract): stops
    before the first block that is not a whole, well-formed one, which the reader's
    Python code then takes (another block type, a bad length, an unknown interface, a
    block not complete in ``a``)."""
    n = a.shape[0]
    k = 0
    while pos + EPB_MIN <= n and k < off.shape[0]:
        if _word(a, pos, big) != 6:
            break
        blen = _word(a, pos + 4, big)
        if blen < EPB_MIN or blen % 4 or blen > maxblock or pos + blen > n:
            break
        ifc = _word(a, pos + 8, big)
        incl = _word(a, pos + 20, big)
        if ifc >= nifaces or 28 + incl > blen:
            break
        hi = _word(a, pos + 12, big)
        off[k] = pos + 28
        cap[k] = incl
        orig[k] = _word(a, pos + 24, big)
        rawts[k] = TS_MAX if hi >> 31 else (hi << 32) | _word(a, pos + 16, big)
        iface[k] = ifc
        k += 1
        pos += blen
    return k, pos
