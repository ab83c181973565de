"""Which files named together are one capture.

Files join only when they are pieces of one ring set (``tcpdump -C/-G/-W``, ``dumpcap -b``,
a capture cut with ``editcap -c``): ordered by their first packet, each starts no earlier
than the previous one's last packet and within ``MAX_GAP_NS`` of it, with the same link
types, in the same directory and named alike (the names differ only in the number or
date a rotating program puts at their end: ``set_name``): two recordings made one after
the other and named for what they hold (``smtp_ok.pcap``, ``smtp_reset.pcap``) are two
captures, whatever their times. Two sets rotating side by side (``gw1_*``, ``gw2_*``)
stay two sets, and a piece joins the set it continues. Anything else is a capture of its own: unrelated files must never merge into
false findings ("a SYN that got no SYN-ACK" for a session complete in its own file).
``--merge`` joins all files in time order regardless; ``--separate`` keeps every file alone.

Standard input, FIFOs and other inputs that are not regular files are never read ahead
(they can be read once only): each is a capture of its own, in the order given.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

from ..errors import CaptureDamaged, InputError
from ..sources.engines import open_input
from ..sources.streams import rereadable

MAX_GAP_NS = 600 * 1_000_000_000   # 10 minutes: RFC 5321's longest timeout


@dataclass(frozen=True)
class Extent:
    """What the grouping knows of one input: its first and last packet times (None when
    it has no packet, cannot be read, or is not a regular file) and link types."""

    path: str
    first_ts: Optional[int] = None
    last_ts: Optional[int] = None
    link_types: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Group:
    """One capture: its files in time order, and how they came together: ``file`` (one
    file), ``ring set`` (consecutive pieces), ``merged`` (``--merge``), ``unplaced`` (one
    input not placed in time: standard input, a FIFO, empty or unreadable)."""

    paths: tuple[str, ...]
    how: str

    def describe(self) -> str:
        """For the text report and notes: which files, and why together."""
        if len(self.paths) == 1:
            return self.paths[0]
        why = {"ring set": "one capture: consecutive in time, same link types (a ring set)",
               "merged": "one capture (--merge)"}.get(self.how, self.how)
        return f"{' + '.join(self.paths)}: {why}; frame numbers continue from file to file"


def extent(path: str) -> Extent:
    """First and last packet times and link types of a regular capture file (read through
    once with the compiled scanner when built; a damaged tail ends it where it breaks)."""
    if not rereadable(path):     # a stream is never read ahead
        return Extent(path)
    try:
        raw, reader = open_input(path)
    except InputError:
        return Extent(path)
    first = last = None
    try:
        reader.fast = True
        for batch in reader.batches():
            if len(batch):
                if first is None:
                    first = int(batch.ts[0])
                last = int(batch.ts[-1])
    except (CaptureDamaged, OSError, ValueError, MemoryError):
        pass
    finally:
        raw.close()
    return Extent(path, first, last, frozenset(reader.link_types))


_EXTENSIONS = re.compile(r"(\.(?:pcapng|pcap|cap|dmp))?(\d*)(\.gz)?$", re.IGNORECASE)
_COUNTER = re.compile(r"(?:[_.\-]\d+)+$")


def set_name(path: str) -> tuple[str, str]:
    """What the pieces of one ring set share: their directory, and their name without the
    numbers a rotating program adds at its end: ``cap.pcap``, ``cap.pcap1`` (tcpdump
    ``-C``/``-W``); ``x_00001_20261201120000.pcapng`` (dumpcap ``-b``, editcap ``-c``);
    ``gw-20261201-1200.pcap`` (a ``-G`` date); ``cap7.pcap``. Other digits stay:
    ``gw1_00001.pcap`` and ``gw2_00001.pcap`` are two sets."""
    full = os.path.abspath(path)
    name = os.path.basename(full)
    m = _EXTENSIONS.search(name)
    assert m is not None          # it matches at the end, if only the empty string
    stem, ext = name[:m.start()], (m.group(1) or "").lower() + (m.group(3) or "").lower()
    cut = _COUNTER.sub("", stem)
    if cut == stem:
        cut = re.sub(r"\d+$", "", stem)
    return os.path.dirname(full), (cut or stem) + ext


def _joins(prev: Extent, last_ts: int, nxt: Extent) -> Optional[str]:
    """None if ``nxt`` continues the capture that ended at ``last_ts`` with ``prev`` (both
    named alike); else why not (for the note)."""
    assert nxt.first_ts is not None
    if nxt.link_types != prev.link_types:
        return f"{nxt.path} has other link types than {prev.path}"
    if nxt.first_ts < last_ts:
        return f"{nxt.path} overlaps {prev.path} in time"
    gap = nxt.first_ts - last_ts
    if gap > MAX_GAP_NS:
        return f"{nxt.path} starts {gap / 1e9:,.0f} s after {prev.path} ends"
    return None


NOT_ALIKE = ("files not named alike are separate captures (the pieces of a ring set differ only in the "
             "number or date at the end of their names)")


def ring_sets(paths: list[str]) -> tuple[list[Group], list[str]]:
    """The captures among ``paths``, in time order (inputs that cannot be placed in time
    keep their place after those that can), and why files were not joined."""
    extents = [extent(p) for p in paths]
    families: dict[tuple[str, str], list[Extent]] = {}
    for e in extents:
        if e.first_ts is not None:
            families.setdefault(set_name(e.path), []).append(e)
    found: list[tuple[int, int, Group]] = []
    why: list[str] = []
    for family in families.values():
        family.sort(key=lambda e: (e.first_ts, paths.index(e.path)))
        runs: list[tuple[list[Extent], int]] = []      # (pieces, last packet time)
        for e in family:
            # the run this piece continues: of those it may continue, the one that ended last
            fits = [(end, k) for k, (run, end) in enumerate(runs) if _joins(run[-1], end, e) is None]
            if fits:
                k = max(fits)[1]
                run, end = runs[k]
                runs[k] = (run + [e], max(end, e.last_ts or 0))
                continue
            if runs:
                why.append(_joins(runs[-1][0][-1], runs[-1][1], e) or "")
            runs.append(([e], e.last_ts or 0))
        found += [(r[0].first_ts or 0, paths.index(r[0].path), _group(r)) for r, _ in runs]
    if len(families) > 1:
        why.append(NOT_ALIKE)
    groups = [g for _, _, g in sorted(found, key=lambda x: (x[0], x[1]))]
    groups += [Group((e.path,), "unplaced") for e in extents if e.first_ts is None]
    return groups, why


def _group(extents: list[Extent]) -> Group:
    return Group(tuple(e.path for e in extents), "file" if len(extents) == 1 else "ring set")
