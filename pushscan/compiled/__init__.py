"""The compiled loops' machinery: marking, building once ahead of time, loading.

Four loops are written as numba functions in the modules of their stage: the pcap and
pcapng record scanners (``sources/scan_kernel.py``), the packet decoder
(``decode/kernel.py``) and the tracker's kernel (``tcp/kernel.py``). Those modules
mark them with ``compiled()``, which imports nothing, so that they load without numba
and stay readable (and testable) as Python. ``kernels()`` gives the entry points
compiled; ``build.py`` explains how (a module built once with numba's ahead-of-time
compiler, else numba's JIT).
"""
from __future__ import annotations

from typing import Any

from .marker import OPTIONS, compiled

__all__ = ["OPTIONS", "available", "compiled", "kernels", "ready"]


def kernels() -> Any:
    """The compiled entry points (``build.Kernels``); callers checked ``available()``."""
    from .build import kernels as _kernels
    return _kernels()


def available() -> bool:
    """Whether the compiled loops can run (built, or compilable by numba's JIT)."""
    from .build import available as _available
    return _available()


def ready() -> bool:
    """Whether the built module is at hand, so that compiled loops start at no cost;
    neither loads nor builds anything."""
    from .build import ready as _ready
    return _ready()
