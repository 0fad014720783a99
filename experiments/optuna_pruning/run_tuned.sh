#!/usr/bin/env bash
# The same comparison on the tuned recipe of experiments/cifar10_tuned (Nesterov momentum 0.9 with a cosine
# schedule, 3000 iterations of batches of 1000, the training images and their mirrors, 5000 validation
# images), val_acc every 100 iterations: for seeds 0 to 4, 20 trials of TPE without pruning and with median
# pruning (n_startup_trials 3, n_warmup_steps 600: a fifth of the training, as 300 is of run.sh's 1500; and
# n_warmup_steps 300, a tenth).
#   experiments/optuna_pruning/run_tuned.sh   (about 30 minutes on 2 cores; OUT=/tmp/optuna_pruning_tuned)
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-/tmp/optuna_pruning_tuned}
rm -rf "$OUT" && mkdir -p "$OUT"
PY=.venv/bin/python
COMMON=(dataset=cifar10 dataset.root=data/cifar10 dataset.hflip=true dataset.num_training=45000
        dataset.num_validation=5000 optimizer=momentum optimizer.momentum=0.9 optimizer.nesterov=true
        optimizer.schedule=cosine num_iters=3000 batch_size=1000 eval_every=100 progress=false
        "tracking.uri=sqlite:///$OUT/mlflow.db" tracking.experiment=optuna_pruning_tuned
        hydra/sweeper=optuna_lr_reg hydra.sweeper.n_trials=20
        'lr=tag(log, interval(1e-7, 1e-5))' 'reg=tag(log, interval(1e2, 1e5))')
for seed in ${SEEDS:-0 1 2 3 4}; do
    $PY -m softmax_exp.train -m "${COMMON[@]}" seed=$seed "hydra.sweep.dir=$OUT/tpe_s$seed"
    $PY -m softmax_exp.train -m "${COMMON[@]}" seed=$seed hydra.sweeper.pruner=median \
        "+hydra.sweeper.pruner_args={n_startup_trials:3,n_warmup_steps:600}" "hydra.sweep.dir=$OUT/median_s$seed"
    $PY -m softmax_exp.train -m "${COMMON[@]}" seed=$seed hydra.sweeper.pruner=median \
        "+hydra.sweeper.pruner_args={n_startup_trials:3,n_warmup_steps:300}" "hydra.sweep.dir=$OUT/median-w300_s$seed"
done
$PY experiments/optuna_pruning/compare.py "$OUT"
$PY experiments/optuna_pruning/curves.py "$OUT" none
