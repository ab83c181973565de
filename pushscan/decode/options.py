"""TCP options, the reference reading (the compiled decoder has a copy in numba)."""
from __future__ import annotations

from typing import NamedTuple

from ..model import OPT_OTHER


class Options(NamedTuple):
    mss: int = 0        # 0: none
    wscale: int = -1    # -1: none
    kinds: int = 0      # OPT_* bits of the kinds present
    tsval: int = -1     # -1: none
    tsecr: int = -1


NO_OPTIONS = Options()


def tcp_options(data: bytes, p: int, end: int) -> Options:
    """The options in ``data[p:end]`` (a TCP header's options area). A malformed option
    ends the reading; what was read before it counts."""
    mss, wscale, kinds, tsval, tsecr = 0, -1, 0, -1, -1
    while p < end:
        kind = data[p]
        if kind == 0:
            break
        if kind == 1:
            p += 1
            continue
        if p + 1 >= end:
            break
        ln = data[p + 1]
        if ln < 2 or p + ln > end:
            break
        kinds |= (1 << kind) if kind < 31 else OPT_OTHER
        if kind == 2 and ln == 4:
            mss = int.from_bytes(data[p + 2:p + 4], "big")
        elif kind == 3 and ln == 3:
            wscale = data[p + 2]
        elif kind == 8 and ln == 10:
            tsval = int.from_bytes(data[p + 2:p + 6], "big")
            tsecr = int.from_bytes(data[p + 6:p + 10], "big")
        p += ln
    return Options(mss, wscale, kinds, tsval, tsecr)
