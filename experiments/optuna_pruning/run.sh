#!/usr/bin/env bash
# Reproduces README.md's table on CIFAR-10: the full 5 x 5 grid of lr x reg; then, for seeds 0, 1 and 2,
# 20 trials of TPE over the same ranges without pruning, with median pruning and with Hyperband. Every sweep
# goes into one fresh MLflow store; compare.py reads them back (summary.csv, the runs' times) for the table.
#   experiments/optuna_pruning/run.sh            (about 5 minutes on 2 cores; OUT=/tmp/optuna_pruning)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/optuna_pruning}
rm -rf "$OUT" && mkdir -p "$OUT"
PY=.venv/bin/python
COMMON=(dataset=cifar10 dataset.root=data/cifar10 num_iters=1500 batch_size=200 eval_every=100 progress=false
        "tracking.uri=sqlite:///$OUT/mlflow.db" tracking.experiment=optuna_pruning)
SEARCH=(hydra/sweeper=optuna_lr_reg hydra.sweeper.n_trials=20
        'lr=tag(log, interval(1e-7, 1e-5))' 'reg=tag(log, interval(1e2, 1e5))')
MEDIAN=(hydra.sweeper.pruner=median "+hydra.sweeper.pruner_args={n_startup_trials:3,n_warmup_steps:300}")
HYPERBAND=(hydra.sweeper.pruner=hyperband "+hydra.sweeper.pruner_args={min_resource:100,max_resource:1500}")
$PY -m softmax_exp.train -m "${COMMON[@]}" lr=1e-7,3e-7,1e-6,3e-6,1e-5 reg=1e2,1e3,1e4,3e4,1e5 \
    "hydra.sweep.dir=$OUT/grid"
for seed in 0 1 2; do
    $PY -m softmax_exp.train -m "${COMMON[@]}" "${SEARCH[@]}" seed=$seed "hydra.sweep.dir=$OUT/tpe_s$seed"
    $PY -m softmax_exp.train -m "${COMMON[@]}" "${SEARCH[@]}" seed=$seed "${MEDIAN[@]}" \
        "hydra.sweep.dir=$OUT/median_s$seed"
    $PY -m softmax_exp.train -m "${COMMON[@]}" "${SEARCH[@]}" seed=$seed "${HYPERBAND[@]}" \
        "hydra.sweep.dir=$OUT/hyperband_s$seed"
done
$PY experiments/optuna_pruning/compare.py "$OUT"
