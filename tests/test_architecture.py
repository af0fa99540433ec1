"""The package's layering rules, checked on its source (see "How the code is organised").

Folders are layers; a module imports only from its own layer or lower ones, never a private
name (``_x``) from another folder, and no function outside the numba kernels is longer than
120 lines (docstring excluded); no public function takes more than 12 parameters (the
execution settings ``n_jobs`` and ``client`` aside).
"""

from __future__ import annotations

import ast
import importlib
import warnings
from pathlib import Path

import pytest

import clustermap as cm

PACKAGE = Path(cm.__file__).parent

#: layer of each top-level part of the package, lowest first
LAYERS = {
    "_version": 0,
    "errors": 0,
    "core": 0,
    "taxonomy": 1,
    "io": 2,
    "units": 3,
    "table": 3,
    "graph": 3,
    "stats": 4,
    "detect": 5,
    "viz": 6,
    "datasets": 7,
    "cli": 7,
    "__init__": 7,
}

#: the only imports that run upward, each lazy (inside a method) and on purpose: a result's
#: convenience methods draw it with the layer above, as GeoDataFrame.explore does
UPWARD_ALLOWED = {
    ("detect.result", "viz.maps"),
    ("detect.result", "viz.report"),
    ("detect.dynamics", "viz.report"),
}

MAX_LINES = 120
MAX_PUBLIC_PARAMS = 12
#: where the work runs, not what it computes: not counted in the limit above
EXECUTION = {"n_jobs", "client"}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = [*parts[:-1], "__init__"]
        out.append((".".join(parts), path))
    return out


def _top(module: str) -> str:
    return module.split(".")[0]


def _resolve(module: str, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        if node.module and node.module.startswith("clustermap"):
            return node.module.removeprefix("clustermap").lstrip(".") or "__init__"
        return None
    base = module.split(".")[:-1]  # the package holding the module
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    target = ".".join([*base, *(node.module.split(".") if node.module else [])])
    return target or "__init__"


def _imports():
    for module, path in _modules():
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(module, node)
                if target is not None:
                    yield module, target, [a.name for a in node.names], node.lineno


def test_no_import_runs_upward():
    bad = []
    for module, target, names, line in _imports():
        src, dst = LAYERS[_top(module)], LAYERS[_top(target) if target != "__init__" else target]
        if target == "__init__" and names:  # "from .. import x": x is a module of the root
            dst = max(LAYERS.get(n, 0) for n in names)
        key = (module, target.rsplit(".__init__", 1)[0])
        if dst > src and key not in UPWARD_ALLOWED:
            bad.append(f"{module}:{line} imports {target} {names}")
    assert not bad, "imports running upward:\n" + "\n".join(bad)


def test_no_private_name_crosses_folders():
    bad = []
    for module, target, names, line in _imports():
        same_folder = "." in module and _top(module) == _top(target)
        for name in names:
            if name.startswith("_") and not name.startswith("__") and not same_folder:
                bad.append(f"{module}:{line} imports {name} from {target}")
    assert not bad, "private names imported across folders:\n" + "\n".join(bad)


def _is_kernel(node: ast.FunctionDef) -> bool:
    for dec in node.decorator_list:
        func = dec.func if isinstance(dec, ast.Call) else dec
        name = getattr(func, "id", None) or getattr(func, "attr", None)
        if name in ("njit", "jit"):
            return True
    return False


def _functions():
    for module, path in _modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield module, node


def test_functions_are_short():
    bad = []
    for module, node in _functions():
        if _is_kernel(node):
            continue
        first = node.body[0]
        doc = 0
        if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
            doc = first.end_lineno - first.lineno + 1
        length = node.end_lineno - node.lineno + 1 - doc
        if length > MAX_LINES:
            bad.append(f"{module}.{node.name}: {length} lines")
    assert not bad, f"functions longer than {MAX_LINES} lines:\n" + "\n".join(bad)


def test_public_functions_take_few_parameters():
    bad = []
    for name in cm.__all__:
        obj = getattr(cm, name)
        if not callable(obj) or isinstance(obj, type):
            continue
        import inspect

        params = [
            p
            for p in inspect.signature(obj).parameters.values()
            if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL) and p.name not in EXECUTION
        ]
        if len(params) > MAX_PUBLIC_PARAMS:
            bad.append(f"{name}: {len(params)} parameters")
    assert not bad, (
        f"public functions with more than {MAX_PUBLIC_PARAMS} parameters:\n" + "\n".join(bad)
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [("lq", "stats.lq"), ("detection", "detect.pipeline"), ("maps", "viz.maps")],
)
def test_modules_of_the_flat_layout_still_import_with_a_future_warning(old, new):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        moved = importlib.import_module(f"clustermap.{old}")
    assert moved is importlib.import_module(f"clustermap.{new}")
    assert any(
        issubclass(w.category, FutureWarning) and f"clustermap.{new}" in str(w.message)
        for w in caught
    )
