#!/usr/bin/env bash
# Reproduces README.md's table: on CIFAR-10, the full 5 x 5 grid of lr x reg, then 20 trials of TPE over the
# same ranges without pruning and with median pruning, each into a fresh MLflow store; compare.py reads the
# three sweeps back (summary.csv and the runs' times) and prints the table.
#   experiments/optuna_pruning/run.sh            (about 5 minutes on 2 cores; OUT=/tmp/optuna_pruning)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/optuna_pruning}
rm -rf "$OUT" && mkdir -p "$OUT"
PY=.venv/bin/python
COMMON=(dataset=cifar10 dataset.root=data/cifar10 num_iters=1500 batch_size=200 eval_every=100 progress=false
        "tracking.uri=sqlite:///$OUT/mlflow.db" tracking.experiment=optuna_pruning)
SEARCH=(hydra/sweeper=optuna_lr_reg hydra.sweeper.n_trials=20
        'lr=tag(log, interval(1e-7, 1e-5))'
        'reg=tag(log, interval(1e2, 1e5))')
/usr/bin/time -f "grid: %e s" $PY -m softmax_exp.train -m "${COMMON[@]}" \
    lr=1e-7,3e-7,1e-6,3e-6,1e-5 reg=1e2,1e3,1e4,3e4,1e5 "hydra.sweep.dir=$OUT/grid"
/usr/bin/time -f "tpe: %e s" $PY -m softmax_exp.train -m "${COMMON[@]}" "${SEARCH[@]}" "hydra.sweep.dir=$OUT/tpe"
/usr/bin/time -f "tpe_median: %e s" $PY -m softmax_exp.train -m "${COMMON[@]}" "${SEARCH[@]}" \
    hydra.sweeper.pruner=median "+hydra.sweeper.pruner_args={n_startup_trials:3,n_warmup_steps:300}" \
    "hydra.sweep.dir=$OUT/tpe_median"
$PY experiments/optuna_pruning/compare.py "$OUT"
