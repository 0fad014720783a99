"""The tables of README.md from the sweeps of run.sh: python compare.py OUT (OUT: run.sh's folder).

Each sweep folder is ``grid`` or ``<search>_s<seed>``; its ``multirun.yaml`` says its pruner, its
``summary.csv`` its trials, and the MLflow store(s) in OUT its parent run's start and end. A pruned search is
compared with the search without pruning (``tpe``) of the same seed: SGD iterations in all (as a share), the
best finished trial's val_acc (as a gap) and the wall time (as a share). What it took to first reach the
grid's best val_acc: trials in launch order, SGD iterations and seconds up to the end of that trial."""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

from omegaconf import OmegaConf

from softmax_exp.tracking import get_client
from softmax_exp.tracking.tags import PARENT_TAG

BASE = "tpe"
ITERATIONS_SHARE = 0.5  # the criterion: at most half the iterations...
GAP = 0.005  # ...and a best val_acc at most this far below the search without pruning


def runs_by_id(out: Path) -> dict:
    by_id = {}
    for db in sorted(out.glob("*.db")):
        client = get_client(f"sqlite:///{db}")
        ids = [e.experiment_id for e in client.search_experiments()]
        by_id.update((r.info.run_id, r) for r in client.search_runs(ids, max_results=50000))
    return by_id


def sweep(folder: Path, by_id: dict, target: float | None) -> dict:
    with open(folder / "summary.csv") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: by_id[r["run_id"]].info.start_time)
    parent = by_id[by_id[rows[0]["run_id"]].data.tags[PARENT_TAG]]
    sweeper = OmegaConf.load(folder / "multirun.yaml").hydra.sweeper if folder.name != "grid" else None
    s = {"rows": rows, "best": max(float(r["val_acc"]) for r in rows if r["status"] == "FINISHED"),
         "iterations": sum(int(r["iterations"]) for r in rows),
         "pruned": sum(r["status"] == "PRUNED" for r in rows),
         "wall": (parent.info.end_time - parent.info.start_time) / 1000,
         "pruner": "none" if sweeper is None else pruner_text(sweeper)}
    s["reach"] = reach(s, target if target is not None else s["best"], parent, by_id)  # the grid: its own
    return s


def pruner_text(sweeper) -> str:
    args = OmegaConf.to_container(sweeper.pruner_args) if sweeper.get("pruner_args") else {}
    return sweeper.pruner + (" " + ", ".join(f"{k} {v}" for k, v in args.items()) if args else "")


def reach(s: dict, target: float, parent, by_id: dict) -> tuple[int, int, float] | None:
    spent = 0
    for k, r in enumerate(s["rows"], 1):
        spent += int(r["iterations"])
        if r["status"] == "FINISHED" and float(r["val_acc"]) >= target:
            return k, spent, (by_id[r["run_id"]].info.end_time - parent.info.start_time) / 1000
    return None


def span(values: list[float], fmt: str) -> str:
    mean, lo, hi = (format(x, fmt) for x in (statistics.mean(values), min(values), max(values)))
    return f"{mean} ({lo} to {hi})"


def main(out: Path) -> None:
    by_id = runs_by_id(out)
    grid = sweep(out / "grid", by_id, None) if (out / "grid" / "summary.csv").exists() else None
    target = grid["best"] if grid else None  # run_tuned.sh has no grid
    searches: dict[str, dict[int, dict]] = {}
    for folder in sorted(p for p in out.iterdir() if (p / "summary.csv").exists() and p.name != "grid"):
        name, seed = folder.name.rsplit("_s", 1)
        searches.setdefault(name, {})[int(seed)] = sweep(folder, by_id, target)
    base = searches[BASE]
    order = [BASE] + sorted((n for n in searches if n != BASE),
                            key=lambda n: (n.split("-")[0] != "median", n))

    if grid:
        g = grid["reach"]
        print(f"The grid: {len(grid['rows'])} trainings, {grid['iterations']} SGD iterations, "
              f"{grid['wall']:.1f} s; "
              f"best val_acc {target:.4f}, first reached at job {g[0]} ({g[1]} iterations, {g[2]:.1f} s).\n")
    print("| search | pruner | seeds | pruned trials | SGD iterations (share of unpruned) | <= 50% | "
          "best val_acc gap to unpruned | within 0.005 | both | wall time (share) | reached the grid's best: "
          "seeds, mean iterations to it |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in order:
        by_seed = searches[n]
        seeds = sorted(s for s in by_seed if s in base)
        got = [by_seed[s]["reach"] for s in seeds if by_seed[s]["reach"]]
        reached = f"{len(got)}, {statistics.mean(r[1] for r in got):.0f}" if got else "0"
        if target is None:
            reached = "-"
        pruned = statistics.mean(by_seed[s]["pruned"] for s in seeds)
        if n == BASE:
            iterations = statistics.mean(base[s]["iterations"] for s in seeds)
            print(f"| {n} | none | {len(seeds)} | 0 | {iterations:.0f} | "
                  f"- | best {span([base[s]['best'] for s in seeds], '.4f')} | - | - | "
                  f"{statistics.mean(base[s]['wall'] for s in seeds):.1f} s | {reached} |")
            continue
        share = [by_seed[s]["iterations"] / base[s]["iterations"] for s in seeds]
        gap = [by_seed[s]["best"] - base[s]["best"] for s in seeds]
        wall = [by_seed[s]["wall"] / base[s]["wall"] for s in seeds]
        cheap = [x <= ITERATIONS_SHARE for x in share]
        close = [x >= -GAP - 1e-9 for x in gap]
        both = sum(a and b for a, b in zip(cheap, close, strict=True))
        print(f"| {n} | {by_seed[seeds[0]]['pruner']} | {len(seeds)} | {pruned:.1f} | {span(share, '.0%')} | "
              f"{sum(cheap)} | {span(gap, '+.4f')} | {sum(close)} | {both} | "
              f"{statistics.mean(wall):.0%} | {reached} |")

    few = len(searches) <= 3  # run_tuned.sh's: every pruned search per seed
    shown = [n for n in order if n != BASE and (few or n in ("median", "hyperband"))]
    print("\n| seed | unpruned: best val_acc | " + " | ".join(
        f"{n}: pruned, iterations (share), best (gap)" for n in shown) + " |")
    print("|---|---|" + "---|" * len(shown))
    for s in sorted(base):
        cells = []
        for n in shown:
            x = searches[n].get(s)
            cells.append("-" if x is None else
                         f"{x['pruned']}, {x['iterations']} ({x['iterations'] / base[s]['iterations']:.0%}), "
                         f"{x['best']:.4f} ({x['best'] - base[s]['best']:+.4f})")
        print(f"| {s} | {base[s]['best']:.4f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
