"""The table of README.md from the sweeps of run.sh: python compare.py OUT (OUT: run.sh's folder).

One row per sweep: its trials, how many were pruned, its SGD iterations in all (and as a share of the same
search without pruning), its wall time (its parent MLflow run, start to end), its best val_acc (and the gap
to the same search without pruning), and what it took to first reach the grid's best val_acc: trials in
launch order, SGD iterations and seconds up to the end of that trial."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from softmax_exp.tracking import get_client
from softmax_exp.tracking.tags import PARENT_TAG


def sweep(out: Path, name: str, by_id: dict) -> dict:
    with open(out / name / "summary.csv") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: by_id[r["run_id"]].info.start_time)
    parent = by_id[by_id[rows[0]["run_id"]].data.tags[PARENT_TAG]]
    finished = [float(r["val_acc"]) for r in rows if r["status"] == "FINISHED"]
    return {"name": name, "rows": rows, "parent": parent, "best": max(finished),
            "iterations": sum(int(r["iterations"]) for r in rows),
            "pruned": sum(r["status"] == "PRUNED" for r in rows),
            "wall": (parent.info.end_time - parent.info.start_time) / 1000}


def reach(s: dict, target: float, by_id: dict) -> str:
    spent = 0
    for k, r in enumerate(s["rows"], 1):
        spent += int(r["iterations"])
        if r["status"] == "FINISHED" and float(r["val_acc"]) >= target:
            end = (by_id[r["run_id"]].info.end_time - s["parent"].info.start_time) / 1000
            return f"{k}, {spent}, {end:.1f} s"
    return "not reached"


def main(out: Path) -> None:
    client = get_client(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("optuna_pruning")
    by_id = {r.info.run_id: r for r in client.search_runs([exp.experiment_id], max_results=1000)}
    names = ["grid"] + sorted(p.name for p in out.iterdir()
                              if (p / "summary.csv").exists() and p.name != "grid")
    sweeps = {n: sweep(out, n, by_id) for n in names}
    grid_best = sweeps["grid"]["best"]
    print(f"| sweep | trials | pruned | SGD iterations (of unpruned) | wall time | best val_acc (gap) | "
          f"to the grid's best {grid_best:.4f}: trials, iterations, seconds |")
    print("|---|---|---|---|---|---|---|")
    order = ["grid"] + sorted((n for n in names if n != "grid"), key=lambda n: (n.rsplit("_s", 1)[1],
                              ["tpe", "median", "hyperband"].index(n.rsplit("_s", 1)[0])))
    for n in order:
        s = sweeps[n]
        base = sweeps.get(f"tpe_s{n.rsplit('_s', 1)[1]}") if n != "grid" else None
        share = f" ({s['iterations'] / base['iterations']:.0%})" if base and base is not s else ""
        gap = f" ({s['best'] - base['best']:+.4f})" if base and base is not s else ""
        print(f"| {n} | {len(s['rows'])} | {s['pruned']} | {s['iterations']}{share} | {s['wall']:.1f} s | "
              f"{s['best']:.4f}{gap} | {reach(s, grid_best, by_id)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
