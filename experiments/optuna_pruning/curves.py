"""Why median pruning misses here, from the searches without pruning: python curves.py OUT [SEED|none]

OUT is run.sh's folder. For every ``tpe_s<seed>`` sweep it reads each trial's val_acc history from the MLflow
store and asks what the median pruner would have done to the search's best trial (n_startup_trials 3): at each
step from 300 on, is its best val_acc so far below the median of the trials that finished before it? It
prints that, the spread of that trial's last five val_acc, and how well the val_acc at a step ranks the
trials by their final val_acc (Spearman's rho over all trials). It draws SEED's curves (default 0) to
``val_acc_curves_tpe_s<SEED>.png`` in this folder (``none``: no picture): every trial grey, the best three
in colour, the median of the trials at each step dashed."""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

import numpy as np
from compare import runs_by_id  # this folder's: the runs of every store in OUT, by id

from softmax_exp.tracking import get_client

HERE = Path(__file__).resolve().parent
STARTUP, FIRST_CHECK = 3, 300


def curves(out: Path, seed: int, by_id: dict) -> list[tuple[dict, dict[int, float]]]:
    """The trials of ``tpe_s<seed>`` in launch order: (summary row, {iteration: val_acc})."""
    with open(out / f"tpe_s{seed}" / "summary.csv") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: by_id[r["run_id"]].info.start_time)
    client = get_client(f"sqlite:///{out / 'mlflow.db'}")
    return [(r, {m.step: m.value for m in client.get_metric_history(r["run_id"], "val_acc")}) for r in rows]


def pruned_at(trials: list[tuple[dict, dict[int, float]]], k: int) -> int | None:
    """The step at which Optuna's MedianPruner (n_startup_trials 3, n_warmup_steps 300) would stop trial k,
    given that the trials before it finished (the search without pruning), or None."""
    if k < STARTUP:
        return None
    _, curve = trials[k]
    best = -np.inf
    for step in sorted(curve):
        best = max(best, curve[step])
        if step < FIRST_CHECK or step == max(curve):
            continue
        if best < statistics.median(h[step] for _, h in trials[:k] if step in h):  # as Optuna's
            return step
    return None


def spearman(a: list[float], b: list[float]) -> float:
    ra, rb = (np.argsort(np.argsort(x)).astype(float) for x in (a, b))
    return float(np.corrcoef(ra, rb)[0, 1])


def draw(trials: list[tuple[dict, dict[int, float]]], seed: int, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    final = [h[max(h)] for _, h in trials]
    top = sorted(range(len(trials)), key=lambda k: -final[k])[:3]
    steps = sorted(trials[0][1])
    for k, (_, h) in enumerate(trials):
        if k not in top:
            ax.plot(list(h), list(h.values()), color="0.75", lw=1)
    for rank, k in enumerate(top):
        r, h = trials[k]
        ax.plot(list(h), list(h.values()), lw=2, color=f"C{rank}",
                label=f"trial {k}: lr {float(r['lr']):.3g}, reg {float(r['reg']):.3g}, final {final[k]:.3f}")
    ax.plot(steps, [statistics.median(h[s] for _, h in trials if s in h) for s in steps], "k--", lw=1.5,
            label="median of the 20 trials")
    ax.axvline(FIRST_CHECK, color="k", lw=0.8, alpha=0.5)
    ax.text(FIRST_CHECK + 15, ax.get_ylim()[0] + 0.01, "first prune check (n_warmup_steps 300)", fontsize=8)
    ax.set_xlabel("SGD iteration")
    ax.set_ylabel("val_acc (1000 images)")
    ax.set_title(f"CIFAR-10, TPE without pruning, seed {seed}: val_acc of its 20 trials")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)


def main(out: Path, seed: int | None) -> None:
    seeds = sorted(int(p.name.rsplit("_s", 1)[1]) for p in out.glob("tpe_s*") if (p / "summary.csv").exists())
    by_step: dict[int, tuple[list[float], list[float]]] = {}
    verdicts = []
    by_id = runs_by_id(out)
    for s in seeds:
        trials = curves(out, s, by_id)
        final = [h[max(h)] for _, h in trials]
        best = int(np.argmax(final))
        step = pruned_at(trials, best)
        last = [trials[best][1][st] for st in sorted(trials[best][1])[-5:]]
        verdict = f"pruned at {step}" if step is not None else "kept"
        verdicts.append(f"seed {s}: trial {best} ({final[best]:.3f}; {min(last):.3f} to {max(last):.3f} "
                        f"over its last five evaluations) {verdict}")
        for _, h in trials:
            for st in h:
                a, b = by_step.setdefault(st, ([], []))
                a.append(h[st])
                b.append(h[max(h)])
        if s == seed:
            draw(trials, s, HERE / f"val_acc_curves_tpe_s{s}.png")
    print("The best trial of each search without pruning, under median pruning (n_startup_trials 3, "
          "n_warmup_steps 300):")
    print("\n".join("  " + v for v in verdicts))
    print("Spearman's rho of val_acc at a step with the final val_acc, over "
          f"{len(by_step[FIRST_CHECK][0])} trials:")
    print("  " + ", ".join(f"{st}: {spearman(*by_step[st]):.2f}" for st in (200, 300, 500, 800, 1000, 1200)))


if __name__ == "__main__":
    arg = sys.argv[2] if len(sys.argv) > 2 else "0"
    main(Path(sys.argv[1]), None if arg == "none" else int(arg))
