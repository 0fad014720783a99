"""The table of README.md from the three sweeps of run.sh: python compare.py OUT (OUT: run.sh's folder).

For each sweep (grid, tpe, tpe_median): its trials, how many were pruned, its SGD iterations in all, its
wall time (its parent MLflow run, start to end), its best val_acc; then what it took to first reach the
grid's best val_acc (trials in launch order, SGD iterations and seconds up to the end of that trial)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from softmax_exp.tracking import get_client
from softmax_exp.tracking.tags import PARENT_TAG


def main(out: Path) -> None:
    client = get_client(f"sqlite:///{out / 'mlflow.db'}")
    exp = client.get_experiment_by_name("optuna_pruning")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    by_id = {r.info.run_id: r for r in runs}
    sweeps = {}
    for name in ("grid", "tpe", "tpe_median"):
        with open(out / name / "summary.csv") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: by_id[r["run_id"]].info.start_time)
        parent = by_id[by_id[rows[0]["run_id"]].data.tags[PARENT_TAG]]
        sweeps[name] = (rows, parent)
    grid_best = max(float(r["val_acc"]) for r in sweeps["grid"][0] if r["status"] == "FINISHED")
    print("| sweep | trials | pruned | SGD iterations | wall time | best val_acc | to reach the grid's best "
          f"({grid_best:.4f}): trials, iterations, seconds |")
    print("|---|---|---|---|---|---|---|")
    for name, (rows, parent) in sweeps.items():
        start = parent.info.start_time
        wall = (parent.info.end_time - start) / 1000
        finished = [float(r["val_acc"]) for r in rows if r["status"] == "FINISHED"]
        iterations = sum(int(r["iterations"]) for r in rows)
        reach, spent = "not reached", 0
        for k, r in enumerate(rows, 1):
            spent += int(r["iterations"])
            if r["status"] == "FINISHED" and float(r["val_acc"]) >= grid_best:
                end = (by_id[r["run_id"]].info.end_time - start) / 1000
                reach = f"{k}, {spent}, {end:.1f} s"
                break
        pruned = sum(r["status"] == "PRUNED" for r in rows)
        print(f"| {name} | {len(rows)} | {pruned} | {iterations} | {wall:.1f} s | {max(finished):.4f} | {reach} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
