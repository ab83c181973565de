"""The CI gate's policy: what makes a trace fail, from a TOML file, options and
per-file overrides; every key checked with a message that names it."""
from __future__ import annotations

import fnmatch
import os
import sys
from dataclasses import dataclass, fields, replace
from typing import Any, Optional

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
    ports: tuple[int, ...] = ()
    outgoing: str = "client"
    local: tuple[str, ...] = ()
    all_tcp: bool = False
    overrides: tuple[tuple[str, dict[str, Any]], ...] = ()

    def for_trace(self, path: str) -> "Policy":
        """This policy with the overrides whose glob matches ``path`` applied, in order."""
        p = self
        for pattern, values in self.overrides:
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
                p = replace(p, **values)
        return p

    def fails(self, finding: dict[str, Any]) -> bool:
        if finding["code"] in self.fail_on:
            return True
        ranks = [SEVERITY_RANK[s] for s in self.fail_on if s in SEVERITY_RANK]
        return bool(ranks) and SEVERITY_RANK[finding["severity"]] >= min(ranks)


KEYS = {f.name for f in fields(Policy)}


def _fail_on(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise PolicyError(f"{where}'fail_on': expected a severity, 'none', or a list of finding "
                          f"codes, not {value!r}")
    out: list[str] = []
    codes = {c.value for c in Code}
    for x in items:
        for part in (p.strip() for p in x.split(",") if p.strip()):
            if part.lower() == "none":
                continue
            if part.lower() in SEVERITY_RANK:
                out.append(part.lower())
            elif part.upper() in codes:
                out.append(part.upper())
            else:
                raise PolicyError(f"{where}'fail_on': {part!r} is neither a severity "
                                  f"({', '.join(SEVERITY_RANK)}), 'none', nor a finding code "
                                  f"({', '.join(sorted(codes))})")
    return tuple(out)


def coerce(key: str, value: Any, where: str) -> Any:
    """Check one policy value's type; return it in Policy's form."""
    def bad(expected: str) -> PolicyError:
        return PolicyError(f"{where}{key!r}: expected {expected}, not {value!r}")

    if key == "fail_on":
        return _fail_on(value, where)
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
    if key == "ports":
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
                overrides.append((pattern, {k: coerce(k, v, sub_where) for k, v in sub.items()}))
            continue
        values[key] = coerce(key, value, where)
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
