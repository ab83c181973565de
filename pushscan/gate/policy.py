"""The CI gate's policy: what makes a trace fail, from a TOML file, options and
per-file overrides; every key checked with a message that names it."""
from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

from ..compare.codes import PathCode
from ..errors import UsageError
from ..findings import Code, Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]

SEVERITY_RANK = {Severity.INFO.value: 0, Severity.WARNING.value: 1, Severity.ERROR.value: 2}


class PolicyError(UsageError):
    """A policy file or option is wrong (exit code 2). The message names the key."""


@dataclass(frozen=True)
class Policy:
    """What makes a trace fail. Every key is also a ``pushscan check`` option."""

    fail_on: tuple[str, ...] = ("error",)    # severities and/or finding codes; () = none
    require_pushed_turns: bool = False
    min_push_ratio: Optional[float] = None
    smtp_ports: tuple[int, ...] = ()         # extra SMTP ports (policy files may say ports)
    outgoing: str = "client"
    local: tuple[str, ...] = ()
    all_tcp: bool = False
    overrides: tuple[tuple[str, dict[str, Any]], ...] = ()
    # pairs of captures of one path (``pushscan compare``), and what fails them
    compare: tuple[tuple[str, str], ...] = ()
    compare_fail_on: tuple[str, ...] = ("error",)

    def for_trace(self, path: str) -> "Policy":
        """This policy with the overrides whose glob matches ``path`` applied, in order."""
        p = self
        for pattern, values in self.overrides:
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
                p = replace(p, **values)
        return p

    def fails(self, finding: dict[str, Any]) -> bool:
        return _fails(self.fail_on, finding)

    def fails_compare(self, finding: dict[str, Any]) -> bool:
        """Whether a finding of ``pushscan compare`` fails its pair (``compare_fail_on``)."""
        return _fails(self.compare_fail_on, finding)


def _fails(fail_on: tuple[str, ...], finding: dict[str, Any]) -> bool:
    if finding["code"] in fail_on:
        return True
    ranks = [SEVERITY_RANK[s] for s in fail_on if s in SEVERITY_RANK]
    return bool(ranks) and SEVERITY_RANK[finding["severity"]] >= min(ranks)


KEYS = {f.name for f in fields(Policy)}
ALIASES = {"ports": "smtp_ports"}        # the key's name before --port became a filter
TRACE_ONLY = KEYS - {"compare", "compare_fail_on", "overrides"}   # what an override may set


TRACE_CODES = frozenset(c.value for c in Code)
COMPARE_CODES = frozenset(c.value for c in PathCode)


def _fail_on(value: Any, where: str, key: str = "fail_on",
             codes: frozenset[str] = TRACE_CODES) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise PolicyError(f"{where}{key!r}: expected a severity, 'none', or a list of finding "
                          f"codes, not {value!r}")
    out: list[str] = []
    for x in items:
        for part in (p.strip() for p in x.split(",") if p.strip()):
            if part.lower() == "none":
                continue
            if part.lower() in SEVERITY_RANK:
                out.append(part.lower())
            elif part.upper() in codes:
                out.append(part.upper())
            else:
                raise PolicyError(f"{where}{key!r}: {part!r} is neither a severity "
                                  f"({', '.join(SEVERITY_RANK)}), 'none', nor a finding code "
                                  f"({', '.join(sorted(codes))})")
    return tuple(out)


def coerce(key: str, value: Any, where: str) -> Any:
    """Check one policy value's type; return it in Policy's form."""
    def bad(expected: str) -> PolicyError:
        return PolicyError(f"{where}{key!r}: expected {expected}, not {value!r}")

    if key == "fail_on":
        return _fail_on(value, where)
    if key == "compare_fail_on":
        return _fail_on(value, where, key, COMPARE_CODES)
    if key == "compare":
        return _compare_pairs(value, where)
    if key in ("require_pushed_turns", "all_tcp"):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "min_push_ratio":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise bad("a number from 0 to 1")
        return float(value)
    if key in ("smtp_ports", "ports"):
        if not isinstance(value, list) or not all(isinstance(p, int) and not isinstance(p, bool)
                                                  and 0 < p < 65536 for p in value):
            raise bad("a list of TCP ports")
        return tuple(value)
    if key == "outgoing":
        if value not in ("client", "server"):
            raise bad("'client' or 'server'")
        return value
    if key == "local":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise bad("a list of CIDR strings")
        import ipaddress
        for c in value:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise PolicyError(f"{where}'local': {c!r} is not a network") from None
        return tuple(value)
    raise PolicyError(f"{where}unknown key {key!r} (known: {', '.join(sorted(KEYS))})")


def split_pair(text: str) -> Optional[tuple[str, str]]:
    """``NEAR:FAR`` as two paths: at the colon whose two sides both exist, else at the
    first colon (paths may hold colons). None without a colon."""
    cuts = [i for i, ch in enumerate(text) if ch == ":" and 0 < i < len(text) - 1]
    for i in cuts:
        if os.path.exists(text[:i]) and os.path.exists(text[i + 1:]):
            return text[:i], text[i + 1:]
    return (text[:cuts[0]], text[cuts[0] + 1:]) if cuts else None


def _compare_pairs(value: Any, where: str) -> tuple[tuple[str, str], ...]:
    """``compare``: a list of "NEAR:FAR" strings or [NEAR, FAR] lists."""
    if not isinstance(value, list):
        raise PolicyError(f"{where}'compare': expected a list of \"NEAR:FAR\" strings or "
                          f"[NEAR, FAR] pairs, not {value!r}")
    out = []
    for item in value:
        if isinstance(item, str) and (pair := split_pair(item)) is not None:
            out.append(pair)
        elif isinstance(item, list) and len(item) == 2 and all(isinstance(x, str) and x for x in item):
            out.append((item[0], item[1]))
        else:
            raise PolicyError(f"{where}'compare': {item!r} is neither \"NEAR:FAR\" nor "
                              "[NEAR, FAR]")
    return tuple(out)


def policy_from_mapping(data: dict[str, Any], where: str = "policy key ") -> Policy:
    """Build a policy from a TOML table; unknown keys and wrong types name the key."""
    values: dict[str, Any] = {}
    overrides: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if key == "overrides":
            if not isinstance(value, dict):
                raise PolicyError(f"{where}'overrides': expected a table of glob = {{...}}")
            for pattern, sub in value.items():
                if not isinstance(sub, dict):
                    raise PolicyError(f"{where}'overrides.{pattern}': expected a table")
                sub_where = f"{where[:-1]} 'overrides.\"{pattern}\".' "
                for k in sub:
                    if k in KEYS and k not in TRACE_ONLY:
                        raise PolicyError(f"{sub_where}{k!r}: an override applies to traces; "
                                          "compare pairs are set at the top level")
                overrides.append((pattern, {str(ALIASES.get(k, k)): coerce(k, v, sub_where) for k, v in sub.items()}))
            continue
        if key == "compare" and isinstance(value, dict):
            # the table form: [compare] pairs = [...], fail_on = ...
            for k in value:
                if k not in ("pairs", "fail_on"):
                    raise PolicyError(f"{where}'compare.{k}': unknown key (known: fail_on, pairs)")
            values["compare"] = coerce("compare", value.get("pairs", []), where)
            if "fail_on" in value:
                values["compare_fail_on"] = coerce("compare_fail_on", value["fail_on"], where)
            continue
        values[ALIASES.get(key, key)] = coerce(key, value, where)
    return Policy(**values, overrides=tuple(overrides))


def load_policy(path: Optional[str]) -> tuple[Policy, Optional[str]]:
    """The policy from ``path`` (a TOML file whose top level, or ``[tool.pushscan]``, holds
    the keys), else from ``[tool.pushscan]`` in ./pyproject.toml, else the defaults.
    Returns the policy and where it came from."""
    candidates = [path] if path else (["pyproject.toml"] if os.path.exists("pyproject.toml") else [])
    for p in candidates:
        try:
            with open(p, "rb") as f:
                text = f.read().decode("utf-8")
            doc = tomllib.loads(text)
        except FileNotFoundError:
            raise PolicyError(f"policy file {p}: no such file") from None
        except UnicodeDecodeError as exc:
            raise PolicyError(f"policy file {p}: not UTF-8 text (byte {exc.start}), as TOML "
                              "must be") from None
        except IsADirectoryError:
            raise PolicyError(f"policy file {p}: is a directory") from None
        except OSError as exc:
            raise PolicyError(f"policy file {p}: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy file {p}: {exc}") from None
        tool = doc.get("tool")
        table = tool.get("pushscan") if isinstance(tool, dict) else None
        if table is None:
            if path is None:
                return Policy(), None    # a pyproject.toml without [tool.pushscan]
            table = doc
        if not isinstance(table, dict):
            raise PolicyError(f"policy file {p}: [tool.pushscan] must be a table")
        return policy_from_mapping(table, where=f"{p}: policy key "), p
    return Policy(), None
