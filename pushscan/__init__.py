"""pushscan: find out why SMTP (and other TCP) sessions die, from packet captures.

Public API: ``analyze`` (returns the report document the JSON output shows), the error
classes, and ``__version__``.
"""
from __future__ import annotations

from typing import Any, Iterable

from .errors import InputError, PushscanError, UsageError
from .version import __version__


def analyze(paths: str | Iterable[str], **options: Any) -> dict[str, Any]:
    """Analyse capture files as one capture and return the report (``"schema": 1``).

    Options are those of ``pushscan analyze``: ``ports``, ``all_tcp``, ``outgoing``
    (``"client"``/``"server"``), ``local`` (CIDRs), ``engine``, ``merge``. Several files
    must be one capture (pieces of a ring set, ``analysis.grouping``), else ``UsageError``
    says why, unless ``merge=True``. Unreadable inputs are listed under
    ``inputs[].errors``; if none could be read, ``InputError`` is raised.
    """
    from .analysis import Analysis, Options, one_capture

    if isinstance(paths, str):
        paths = [paths]
    plist = list(paths)
    if not plist:
        raise UsageError("no capture given")
    opts = Options(**options)
    return Analysis(one_capture(plist, opts, "pass merge=True"), opts).run_or_raise()


def check(paths: str | Iterable[str], policy: Any = None, baseline: Any = None,
          engine: str = "native", merge: bool = False, separate: bool = False) -> list[Any]:
    """Check traces against a policy (``pushscan.gate.Policy``, a mapping of policy keys,
    or None for the defaults) and optionally a baseline dict. The pieces of a ring set are
    one trace (``merge``: all files are one; ``separate``: each file is one). Returns one
    ``TraceResult`` per trace, with ``passed``, ``cases`` (failures and frames) and the
    trace's ``report``. Usable from pytest: ``assert all(r.passed for r in results)``."""
    from .gate import Policy, check as _check, policy_from_mapping

    if isinstance(policy, dict):
        policy = policy_from_mapping(policy)
    elif policy is not None and not isinstance(policy, Policy):
        raise UsageError("policy must be a pushscan.gate.Policy or a mapping of policy keys")
    return _check(list([paths] if isinstance(paths, str) else paths), policy, baseline, engine,
                  merge=merge, separate=separate)


__all__ = ["analyze", "check", "PushscanError", "UsageError", "InputError", "__version__"]
