"""Who may import what, read from the source with ast (nothing is imported): `hpc_rg.parallel` is the only
module that imports mpi4py (everything else gets a `World`), and `hpc_rg.schema`, the job grammar every
stage's specs use, imports nothing from hpc_rg (so any module may import it without a cycle)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "hpc_rg"
MODULES = sorted(PACKAGE.rglob("*.py"))


def imported_modules(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module `path` imports: import statements at any depth (function-level ones too), relative
    imports resolved against the package, and `importlib.import_module("literal")` calls."""
    package = list(path.relative_to(root).parts[:-1])     # what a relative import starts from
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[:len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "import_module" and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)):
            found.add(node.args[0].value)
    return found


def test_the_walker_sees_every_kind_of_import(tmp_path):
    module = tmp_path / "pkg" / "sub" / "mod.py"
    module.parent.mkdir(parents=True)
    module.write_text("import a.b\nfrom .. import c\nfrom .d import e\n\ndef f():\n    from mpi4py import MPI\n"
                      "    import importlib\n    importlib.import_module('g')\n")
    seen = imported_modules(module, tmp_path)
    assert {"a.b", "pkg", "pkg.c", "pkg.sub.d", "pkg.sub.d.e", "mpi4py", "mpi4py.MPI", "g"} <= seen, seen


def test_only_parallel_imports_mpi4py():
    importers = [str(p.relative_to(PACKAGE.parent)) for p in MODULES
                 if any(m.split(".")[0] == "mpi4py" for m in imported_modules(p))]
    assert importers == ["hpc_rg/parallel.py"], importers


def test_schema_imports_nothing_from_the_package():
    own = sorted(m for m in imported_modules(PACKAGE / "schema.py") if m.split(".")[0] == "hpc_rg")
    assert own == [], own


@pytest.mark.parametrize("path", [PACKAGE / "cli.py", PACKAGE / "config.py", PACKAGE / "sweep.py"],
                         ids=lambda p: p.name)
def test_top_level_modules_have_no_guards_around_their_own_package(path):
    """`except ModuleNotFoundError` around an import of hpc_rg's own modules hides a broken install."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            guarded = {m for stmt in node.body for m in _imports_in(stmt)}
            catches = {ast.unparse(h.type) for h in node.handlers if h.type is not None}
            assert not ({"ModuleNotFoundError", "ImportError"} & catches and
                        any(m.startswith("hpc_rg") for m in guarded)), (path.name, node.lineno, guarded)


def _imports_in(stmt: ast.stmt) -> set[str]:
    out = set()
    for node in ast.walk(stmt):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
    return out
