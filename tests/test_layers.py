"""The package's import graph: one folder a layer, layers that import only downward, no cycle, lazy imports
only where they pay; and the files a training's config enters.

Every import counts, at the top of a module, inside a function or under ``TYPE_CHECKING``: an arrow is an
arrow whether it is taken at import time or later. A new folder (or top-level module) must be given a
layer here; a command's ``__main__`` is an app wherever it sits.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Lowest first: a folder (or a top-level module) a layer. A module may import its own layer and the layers
# below it, never one above.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("util", ("softmax_exp", "softmax_exp.util")),
    ("kernels", ("softmax_exp.kernels",)),
    ("features", ("softmax_exp.features",)),
    ("learn", ("softmax_exp.learn",)),
    ("serving", ("softmax_exp.serving",)),
    ("plots", ("softmax_exp.plots",)),
    ("data", ("softmax_exp.data",)),
    ("tracking", ("softmax_exp.tracking",)),
    ("config", ("softmax_exp.config",)),
    ("job", ("softmax_exp.job",)),
    ("sweep", ("softmax_exp.sweep", "hydra_plugins")),
    ("apps", ("softmax_exp.train", "softmax_exp.reproduce", "softmax_exp.ui", "softmax_exp.bench")),
]
TOP_LEVEL_MODULES = 10  # at most this many .py files in softmax_exp/ itself

# Third-party modules a project module may import inside a function, and why (measured with
# `python -X importtime` on this machine); every other import is at the top of its module.
LAZY = {
    "mlflow": "~1 s: a training with tracking.enabled=false never imports it",
    "sklearn": "1.3 s: only the digits dataset, the k-means features' fit and the benchmark's baseline",
    "matplotlib": "0.4 s: only the sweep's heatmap",
    "torch": "optional: the benchmark's PyTorch row",
    "numba": "0.2 s: not for `data download`, `ui` or a served model's process before it predicts",
    "llvmlite": "with numba",
    "tqdm": "80 ms: only where a progress bar is shown",
    "tenacity": "30 ms: only for an HTTP tracking server",
    "psutil": "20 ms: only when a process's start time is needed",
    "threadpoolctl": "20 ms: only the benchmark's BLAS rows",
    "PIL": "17 ms: only image folders and the pictures of a run",
    "pandas": "with mlflow: only MLflow's evaluation of a model (its data frame)",
}
# Project modules imported inside a function, and why.
LAZY_PROJECT = {
    ("softmax_exp/config/schema.py", "softmax_exp.kernels"): "numba (0.2 s), for the kernel names only",
    ("softmax_exp/features/settings.py", "softmax_exp.features.hog_color"): "numba (0.2 s): the config "
                                                                             "group's schema without it",
    ("softmax_exp/features/settings.py", "softmax_exp.features.kmeans"): "the same",
    ("softmax_exp/tracking/logged_model.py", "softmax_exp.serving"): "the pyfunc class imports "
                                                                      "mlflow.pyfunc (1.7 s) at its top",
    ("softmax_exp/train.py", "softmax_exp.train"): "the Hydra task by its package name (joblib unpickles it)",
    # Optuna (0.5 s with SQLAlchemy): only a search imports it; Hydra imports every plugin module at start
    ("softmax_exp/sweep/callback.py", "softmax_exp.sweep.study"): "Optuna, only for a search",
    ("softmax_exp/sweep/job.py", "softmax_exp.sweep.trial"): "Optuna, only for a search's trials",
    ("hydra_plugins/softmax_exp_optuna_sweeper/optuna_sweeper.py", "softmax_exp.sweep.search"):
        "Optuna, only once a search starts (Hydra imports every plugin module at every start)",
}
# Bundled with the logged MLflow model (tracking/logged_model.BUNDLED) or imported by what is: numpy and
# numba only at the top, so a served model needs no more.
PATHS_LAZY_HYDRA = {("softmax_exp/util/paths.py", "hydra")}  # paths asks Hydra only when Hydra is running


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("softmax_exp", "hydra_plugins"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, bool, int]]:
    """(imported module, inside a function, line) for each import of ``path``; project modules resolved
    to the deepest module that exists (``from softmax_exp.tracking import resume`` is tracking.resume)."""
    tree = ast.parse(path.read_text())
    in_function = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
                   for n in ast.walk(f)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        else:
            continue
        for target in targets:
            found.append((target, id(node) in in_function, node.lineno))
    return found


def _project(target: str) -> str | None:
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def _layer(module: str) -> int:
    if module.endswith(".__main__"):  # a command: an app wherever it sits
        return len(LAYERS) - 1
    for i, (_, prefixes) in enumerate(LAYERS):
        for p in prefixes:
            if module == p or (p != "softmax_exp" and module.startswith(p + ".")):
                return i
    raise AssertionError(f"{module} has no layer in tests/test_layers.py: give its folder one")


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for name, path in MODULES.items():
        for target, _, _ in _imports(name, path):
            t = _project(target)
            if t is not None and t != name:
                graph[name].add(t)
    return graph


def test_every_module_has_a_layer():
    for module in MODULES:
        _layer(module)


def test_no_module_imports_a_layer_above_its_own():
    upward = [f"{m} ({LAYERS[_layer(m)][0]}) -> {t} ({LAYERS[_layer(t)][0]})"
              for m, targets in _graph().items() for t in sorted(targets) if _layer(t) > _layer(m)]
    assert upward == []


def test_the_import_graph_has_no_cycle():
    graph, state, cycles = _graph(), {}, []

    def visit(m: str, path: list[str]) -> None:
        state[m] = "open"
        for t in sorted(graph[m]):
            if state.get(t) == "open":
                cycles.append(" -> ".join(path[path.index(t):] + [t]))
            elif t not in state:
                visit(t, path + [t])
        state[m] = "done"

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_imports_inside_functions_are_only_the_measured_lazy_ones():
    unexplained = []
    for name, path in MODULES.items():
        rel = str(path.relative_to(ROOT))
        for target, lazy, line in _imports(name, path):
            if not lazy:
                continue
            project = _project(target)
            ok = ((rel, project) in LAZY_PROJECT if project is not None
                  else target.split(".")[0] in LAZY or (rel, target.split(".")[0]) in PATHS_LAZY_HYDRA)
            if not ok:
                unexplained.append(f"{rel}:{line} imports {target}")
    assert unexplained == []


def test_every_folder_is_one_layer_and_the_package_has_few_top_level_modules():
    folders = {p.name for p in (ROOT / "softmax_exp").iterdir() if (p / "__init__.py").is_file()}
    layered = {prefix.split(".")[1] for _, prefixes in LAYERS for prefix in prefixes if "." in prefix}
    assert folders <= layered, sorted(folders - layered)
    top = sorted(p.name for p in (ROOT / "softmax_exp").glob("*.py"))
    assert len(top) <= TOP_LEVEL_MODULES, top


def test_the_bundled_folders_import_numpy_numba_and_themselves_only():
    """What a logged model bundles (tracking.logged_model.BUNDLED) imports, at its modules' tops, the
    standard library, numpy, numba (and its llvmlite: the HOG kernel's FMA intrinsic), MLflow (the pyfunc
    class) and the bundle only: a served model needs nothing else installed."""
    from softmax_exp.tracking.logged_model import BUNDLED

    folders = tuple(f"softmax_exp.{b}" for b in BUNDLED if not b.endswith(".py"))
    allowed = {"numpy", "numba", "llvmlite", "mlflow", *sys.stdlib_module_names}  # llvmlite: numba's
    for name, path in MODULES.items():
        if not name.startswith(folders):
            continue
        for target, lazy, line in _imports(name, path):
            if lazy:
                continue
            project = _project(target)
            if project is not None:
                assert project == "softmax_exp" or project.startswith(folders), (name, target, line)
            else:
                assert target.split(".")[0] in allowed, (name, target, line)


def test_the_entrypoint_imports_no_heavy_module_before_it_needs_one():
    """``python -m softmax_exp.train`` with tracking off imports neither MLflow nor scikit-learn nor
    matplotlib: what LAZY keeps lazy stays so (a top-level import of a module that imports one at its top
    would undo it)."""
    code = ("import sys, softmax_exp.train, softmax_exp.bench, softmax_exp.reproduce; "
            "heavy = ('mlflow', 'sklearn', 'matplotlib', 'torch', 'optuna'); "
            "print(sorted(m for m in heavy if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


@pytest.mark.subprocess
def test_the_config_enters_no_file_more_than_twice(tmp_path):
    """Followed from the Hydra task through every call handed it or a part of it (tests/config_flow.py), a
    tracked training's config enters each file at most twice: it is read in one place and handed on in
    typed parts, not passed back and forth."""
    overrides = ["progress=false", "num_iters=300", f"tracking.uri=sqlite:///{tmp_path}/mlflow.db",
                 f"hydra.run.dir={tmp_path}/out", f"dataset.cache_dir={tmp_path}/cache"]
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "config_flow.py"), *overrides], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    flow = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"softmax_exp/train.py", "softmax_exp/job/fit.py", "softmax_exp/data/load.py",
            "softmax_exp/learn/model.py", "softmax_exp/tracking/store.py"} <= set(flow["entries"])
    over = {f: n for f, n in flow["entries"].items() if n > 2}
    assert over == {}, "\n".join(flow["calls"])
