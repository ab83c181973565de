"""The package's shape holds: no import cycles, no module reads another's private
attributes, the stages' modules are where docs/design.md says, and the kernel modules
load without numba."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

PACKAGE = ROOT / "pushscan"


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The pushscan modules ``name`` imports, at any depth of its code."""
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parts = parts[: len(parts) - node.level + 1]
                target = ".".join(parts + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                candidate = f"{target}.{alias.name}"
                hit = candidate if candidate in known else target
                if hit in known and hit != name:
                    found.add(hit)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name in known and a.name != name}
    return found


def test_no_import_cycles():
    known = modules()
    graph = {m: imports(m, p, known) for m, p in known.items()}
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    assert cycles == []


def test_no_private_reads_across_modules():
    bad = []
    for name, path in modules().items():
        tree = ast.parse(path.read_text())
        defined = {n.name for n in ast.walk(tree)
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
        defined |= {t.attr for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                    if isinstance(t, ast.Attribute)}
        defined |= {t.id for n in ast.walk(tree) if isinstance(n, (ast.Assign, ast.AnnAssign))
                    for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
                    if isinstance(t, ast.Name)}
        for n in ast.walk(tree):
            if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.endswith("_") \
                    and n.attr != "_exit" and not (isinstance(n.value, ast.Name) and n.value.id in ("self", "cls")) \
                    and n.attr not in defined:
                bad.append(f"{name}:{n.lineno} .{n.attr}")
    assert bad == []


def test_the_stages_are_the_layout():
    top = sorted(p.name for p in PACKAGE.iterdir() if not p.name.startswith("__pycache__"))
    for stage in ("sources", "decode", "tcp", "smtp", "findings", "report", "analysis", "gate",
                  "cli", "compiled"):
        assert stage in top and (PACKAGE / stage / "__init__.py").exists(), stage
    loose = [n for n in top if n.endswith(".py")]
    assert loose == ["__init__.py", "__main__.py", "errors.py", "model.py", "seq.py", "version.py"]


def test_kernel_modules_load_without_numba():
    code = ("import sys\n"
            "import pushscan.sources.scan_kernel, pushscan.decode.kernel, pushscan.tcp.kernel\n"
            "import pushscan.tcp.lane, pushscan.decode.fast\n"
            "assert 'numba' not in sys.modules, 'numba was imported'\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
