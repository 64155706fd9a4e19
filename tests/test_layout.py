"""The package reads as a pipeline: every module imports only modules before it in ORDER (function-
local imports included), and ORDER holds every module of the package."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "harness"
ORDER = [
    "harness._version",
    "harness.util.memory", "harness.util.schema",
    "harness.sphere.grids", "harness.sphere.recurrence", "harness.sphere.legendre", "harness.sphere.transforms",
    "harness.sphere.so3", "harness.sphere.wigner", "harness.sphere.resample", "harness.sphere.so3_transforms",
    "harness.sphere.fields",
    "harness.nn.layers", "harness.nn.so3_layers", "harness.nn.nonlinearities", "harness.nn.models",
    "harness.measure.watch", "harness.measure.equivariance", "harness.measure.lie", "harness.measure.aliasing",
    "harness.runs.results", "harness.runs.runner", "harness.runs.sweeps", "harness.runs.data", "harness.runs.train",
    "harness.plots",
    "harness.__main__",
]


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """The harness modules a file imports (relative imports resolved; ``from pkg import name``
    counts as importing ``pkg.name`` when that is a module)."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("harness"):
                names = [f"{target}.{a.name}" for a in node.names]
                out |= {n for n in names if n in ORDER} or {target}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("harness")}
    return out


FILES = sorted(p for p in ROOT.rglob("*.py") if p.name != "__init__.py")


def test_order_holds_every_module():
    assert sorted(_module(p) for p in FILES) == sorted(ORDER)


@pytest.mark.parametrize("path", FILES, ids=lambda p: _module(p))
def test_imports_point_one_way(path):
    mod = _module(path)
    later = [t for t in _imports(path) if t != "harness" and (t not in ORDER or ORDER.index(t) >= ORDER.index(mod))]
    assert not later, f"{mod} imports {later}, which come after it (or are not modules of the pipeline)"


def test_subpackages_import_nothing_but_their_docstring():
    for init in ROOT.glob("*/__init__.py"):
        assert not _imports(init), f"{init} imports code: the subpackages are namespaces, the API is harness.*"
