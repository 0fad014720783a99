#!/usr/bin/env bash
# Kill a sweep with SIGKILL once its first job has a checkpoint, run the same command again, and check
# what the store holds. Run from the project root: bash experiments/kill_and_resume/run.sh
set -euo pipefail
PY=${PY:-.venv/bin/python}
WORK=$(mktemp -d /tmp/kill_and_resume.XXXXXX)
DB=$WORK/mlflow.db
SWEEP=(-m lr=1e-3,1e-2 num_iters=20000 eval_every=1000 checkpoint_every=2000 checkpoint_min_seconds=0 progress=false
       tracking.uri=sqlite:///$DB)

setsid "$PY" -m softmax_exp.train "${SWEEP[@]}" hydra.sweep.dir="$WORK/first" > "$WORK/first.log" 2>&1 &
PID=$!
until [ "$(sqlite3 "$DB" "SELECT count(*) FROM tags WHERE key='softmax_exp.checkpoint'" 2>/dev/null || echo 0)" -ge 1 ]; do
  sleep 0.2
done
sleep 1
kill -9 -- -$PID
wait $PID 2>/dev/null || true
echo "after SIGKILL:"
sqlite3 -column "$DB" "SELECT name, status FROM runs"
echo "checkpoint: $(sqlite3 "$DB" "SELECT value FROM tags WHERE key='softmax_exp.checkpoint'")"

start=$SECONDS
"$PY" -m softmax_exp.train "${SWEEP[@]}" hydra.sweep.dir="$WORK/second" > "$WORK/second.log" 2>&1
echo "rerun: exit $?, $((SECONDS - start)) s"
grep -E "going on|resumed|skipped" "$WORK/second.log" || true
echo "after the rerun:"
sqlite3 -column "$DB" "SELECT r.name, r.status, r.lifecycle_stage,
  (SELECT value FROM tags t WHERE t.run_uuid = r.run_uuid AND key = 'resumed_from_iteration') AS resumed_from,
  (SELECT count(*) FROM metrics m WHERE m.run_uuid = r.run_uuid AND key = 'loss') AS loss_values,
  (SELECT count(DISTINCT step) FROM metrics m WHERE m.run_uuid = r.run_uuid AND key = 'loss') AS loss_steps
  FROM runs r"
echo "integrity_check: $(sqlite3 "$DB" 'PRAGMA integrity_check')"

"$PY" - "$DB" <<'PYEOF'
import sys, sqlite3, tempfile, numpy as np
from hydra import compose, initialize_config_dir
from softmax_exp import tracking
from softmax_exp.train import CONFIG_DIR, fit
db = sys.argv[1]
client = tracking.get_client(f"sqlite:///{db}")
for (run_id, name) in sqlite3.connect(db).execute("SELECT run_uuid, name FROM runs WHERE name LIKE 'lr=%'"):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[name, "num_iters=20000", "eval_every=1000", "progress=false",
                                           "tracking.enabled=false"])
    W = np.load(client.download_artifacts(run_id, "model.npz", tempfile.mkdtemp()))["W"]
    print(f"{name}: W equal to an uninterrupted training: {np.array_equal(W, fit(cfg).model.W)}")
PYEOF
echo "files: $WORK"
