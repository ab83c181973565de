"""The mark a compiled function carries (imports nothing: kernel modules load without
numba, and without the build machinery)."""
from __future__ import annotations

from typing import Any, Callable

# What marked functions take, for readers and type checkers (numba takes its types from
# ``build.signatures()`` or infers them): numpy arrays, and records of structured arrays.
Array = Any
Record = Any

# numba options of every marked function. Without numba's reference counting (``_nrt``):
# with it, every call of a helper, inlined or not, counts each array argument up and
# down with atomic instructions (tcp/kernel.py); so the loops allocate nothing.
OPTIONS = {"cache": True, "nogil": True, "_nrt": False}


def compiled(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function for numba (``OPTIONS`` plus ``options``, e.g. ``inline="always"``).
    The function stays plain Python until its module is compiled (``build.jit_modules``)."""
    def mark(f: Callable[..., Any]) -> Callable[..., Any]:
        f._numba_options = {**OPTIONS, **options}  # type: ignore[attr-defined]
        return f
    return mark
