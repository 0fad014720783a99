#!/usr/bin/env bash
# Reproduces README.md's tables on CIFAR-10: the full 5 x 5 grid of lr x reg; then, for seeds 0 to 9,
# 20 trials of TPE over the same ranges without pruning, with median pruning (its startup and warmup varied)
# and with Hyperband. Every sweep goes into one fresh MLflow store; compare.py reads them back (multirun.yaml,
# summary.csv, the runs' times) for the tables.
#   experiments/optuna_pruning/run.sh     (about 30 minutes on 2 cores; OUT=/tmp/optuna_pruning SEEDS="0 1 2")
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/optuna_pruning}
rm -rf "$OUT" && mkdir -p "$OUT"
PY=.venv/bin/python
COMMON=(dataset=cifar10 dataset.root=data/cifar10 num_iters=1500 batch_size=200 eval_every=100 progress=false
        "tracking.uri=sqlite:///$OUT/mlflow.db" tracking.experiment=optuna_pruning)
SEARCH=(hydra/sweeper=optuna_lr_reg hydra.sweeper.n_trials=20
        'lr=tag(log, interval(1e-7, 1e-5))' 'reg=tag(log, interval(1e2, 1e5))')
median() { echo hydra.sweeper.pruner=median "+hydra.sweeper.pruner_args={n_startup_trials:$1,n_warmup_steps:$2}"; }
HYPERBAND=(hydra.sweeper.pruner=hyperband "+hydra.sweeper.pruner_args={min_resource:100,max_resource:1500}")
$PY -m softmax_exp.train -m "${COMMON[@]}" lr=1e-7,3e-7,1e-6,3e-6,1e-5 reg=1e2,1e3,1e4,3e4,1e5 \
    "hydra.sweep.dir=$OUT/grid"
search() {  # search NAME SEED OVERRIDE...
    local name=$1 seed=$2; shift 2
    $PY -m softmax_exp.train -m "${COMMON[@]}" "${SEARCH[@]}" seed=$seed "$@" "hydra.sweep.dir=$OUT/${name}_s$seed"
}
for seed in ${SEEDS:-0 1 2 3 4 5 6 7 8 9}; do
    search tpe $seed
    search median $seed $(median 3 300)
    search median-w200 $seed $(median 3 200)
    search median-w400 $seed $(median 3 400)
    search median-w500 $seed $(median 3 500)
    search median-n1 $seed $(median 1 300)
    search median-n5 $seed $(median 5 300)
    search hyperband $seed "${HYPERBAND[@]}"
done
$PY experiments/optuna_pruning/compare.py "$OUT"
$PY experiments/optuna_pruning/curves.py "$OUT"
