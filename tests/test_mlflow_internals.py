"""softmax_exp.tracking.mlflow_internals, the one module that uses MLflow's private API and its UI's
undocumented conventions, against the MLflow installed; and no other module using them."""

from __future__ import annotations

import ast
from pathlib import Path

import mlflow
import pytest
from helpers import fresh_store

from softmax_exp.tracking import Run, get_client, mlflow_internals

ROOT = Path(__file__).resolve().parents[1]
UI_JS = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"


def test_the_installed_mlflow_is_a_tested_one():
    assert mlflow.__version__ in mlflow_internals.TESTED_MLFLOW, (
        f"MLflow {mlflow.__version__} is not one softmax_exp/tracking/mlflow_internals.py was tested with: "
        f"check each use there, then add it to TESTED_MLFLOW")


def test_the_global_tracking_uri_is_the_one_mlflow_sets(tmp_path):
    from mlflow.tracking._tracking_service import utils

    before = mlflow_internals.global_tracking_uri()
    try:
        mlflow.set_tracking_uri(f"sqlite:///{tmp_path}/x.db")
        assert mlflow_internals.global_tracking_uri() == utils._tracking_uri == f"sqlite:///{tmp_path}/x.db"
    finally:
        mlflow.set_tracking_uri(before)


def test_a_built_schema_reads_back_whole_and_a_run_is_counted(tmp_path, tmp_path_factory):
    path = tmp_path / "new.db"
    mlflow_internals.build_schema(path, str(tmp_path / "artifacts"))
    tables, versions, runs, whole = mlflow_internals.read_schema(path)
    assert whole and versions and {"experiments", "runs", "alembic_version"} <= tables and runs == 0
    store = fresh_store(tmp_path, tmp_path_factory)
    Run.start(f"sqlite:///{store}", "x", "r").end()
    assert mlflow_internals.read_schema(store)[2] == 1


def test_the_artifact_repository_deletes_one_artifact(tmp_path, tmp_path_factory):
    store = fresh_store(tmp_path, tmp_path_factory)
    uri = f"sqlite:///{store}"
    run = Run.start(uri, "x", "r")
    (tmp_path / "a.txt").write_text("a")
    run.log_artifact(tmp_path / "a.txt", "d")
    client = get_client(uri)
    repo = mlflow_internals.artifact_repository(client.get_run(run.run_id).info.artifact_uri, uri)
    repo.delete_artifacts("d/a.txt")
    assert client.list_artifacts(run.run_id, "d") == []
    run.end()


def test_the_dataset_context_tag_and_the_quiet_loggers_are_mlflows():
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    assert mlflow_internals.DATASET_CONTEXT_TAG == MLFLOW_DATASET_CONTEXT
    import mlflow.store.db.utils as db_utils

    assert "mlflow.store.db.utils" in mlflow_internals.QUIET_LOGGERS and db_utils._logger.name in (
        "mlflow.store.db.utils", db_utils.__name__)


UI_TEXTS = [mlflow_internals.VIEW_TAG_PREFIX, mlflow_internals.VIEW_SHARE_KEY_PARAM,
            mlflow_internals.EXPERIMENT_KIND_TAG, mlflow_internals.CUSTOM_MODEL_DEVELOPMENT,
            *mlflow_internals.MODEL_TRAINING_LINK.split("=")]


@pytest.mark.parametrize("text", UI_TEXTS)
def test_the_ui_conventions_are_in_the_installed_uis_code(text):
    assert any(text in p.read_text(errors="ignore") for p in UI_JS.glob("*.js")), text


PRIVATE_MODULES = ("mlflow.store", "mlflow.utils", "mlflow.server", "mlflow.tracking._")
UI_NAMES = ("sharedViewState", "viewStateShareKey", "experimentKind", "workflowType", "alembic_version")


def _private_uses(paths) -> list[str]:
    """MLflow's private modules, a ``_name`` of MLflow's, its schema's tables or its UI's conventions used
    in ``paths`` (a docstring may name them)."""
    found = []
    for path in paths:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                parts = name.split(".")
                if parts[0] == "mlflow" and (name.startswith(PRIVATE_MODULES)
                                             or any(p.startswith("_") for p in parts)):
                    found.append(f"{path.name}:{node.lineno} imports {name}")
        docs = {id(n.body[0].value) for n in ast.walk(tree)
                if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
                if any(u in node.value for u in UI_NAMES):
                    found.append(f"{path.name}:{node.lineno} says {node.value[:60]!r}")
    return found


def test_no_other_module_uses_mlflows_private_names():
    paths = [p for p in sorted((ROOT / "softmax_exp").rglob("*.py")) if p.name != "mlflow_internals.py"]
    assert _private_uses(paths) == []
    assert _private_uses([ROOT / "softmax_exp" / "tracking" / "mlflow_internals.py"])  # where they are


def test_the_scan_finds_a_private_use(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text('"""doc: mlflow.sharedViewState."""\nfrom mlflow.store.x import y\nT = "experimentKind"\n')
    assert _private_uses([bad]) == ["bad.py:2 imports mlflow.store.x", "bad.py:2 imports mlflow.store.x.y",
                                    "bad.py:3 says 'experimentKind'"]
