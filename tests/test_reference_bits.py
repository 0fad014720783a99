"""The bits of the fused kernel and of the default training, against the code of a known-good commit run on
this very CPU: the check of tests/test_kernels.py's and tests/test_train.py's pins on any CPU, pinned or not.

Numba compiles for the host CPU, so the pins are per CPU name and a CPU without pins skips them. Here the
reference commit's own code (``git archive``, in a folder of its own) computes the same quantities in a
fresh process on the same machine, and this checkout's code must give the same bits. REFERENCE is the
commit the pins were recorded at; a change that means to change the bits moves it, and records the pins
again. Skipped when the clone lacks that commit (a shallow clone) or git.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_kernels import FUSED_PIN_CASES, _fused_pin_hash

from softmax_exp.config import compose, to_config
from softmax_exp.job.fit import fit
from softmax_exp.kernels import num_threads

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = "8ca2509ca83953692c4f3e0b3c3edf00ce44efb0"

# Runs in the reference checkout, against its own API (which is fixed: the commit is).
REFERENCE_SCRIPT = """
import hashlib, json, sys
import numpy as np
sys.path.insert(0, "tests")
import test_kernels as tk
from softmax_exp.kernels import num_threads
from softmax_exp.config import compose, to_config
from softmax_exp.fit import fit
out = {}
for case in tk.FUSED_PIN_CASES:
    with num_threads(1):
        out[case] = tk._fused_pin_hash(case)
run = fit(to_config(compose(["tracking.enabled=false", "progress=false"])))
out["W"] = hashlib.sha256(run.model.W.tobytes()).hexdigest()
out["loss"] = hashlib.sha256(run.history.loss.astype(np.float64).tobytes()).hexdigest()
print(json.dumps(out))
"""


@pytest.fixture(scope="session")
def reference_bits(tmp_path_factory) -> dict[str, str]:
    if shutil.which("git") is None:
        pytest.skip("no git: the reference commit cannot be checked out")
    known = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{REFERENCE}^{{commit}}"],
                           capture_output=True)
    if known.returncode != 0:
        pytest.skip(f"this clone lacks the reference commit {REFERENCE[:12]} (shallow?)")
    checkout = tmp_path_factory.mktemp("reference")
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", REFERENCE], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(checkout)], input=archive.stdout, check=True)
    env = {**os.environ, "PYTHONPATH": str(checkout), "SOFTMAX_EXP_CACHE": str(checkout / ".cache"),
           "CI": "true"}
    proc = subprocess.run([sys.executable, "-c", REFERENCE_SCRIPT], cwd=checkout, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(FUSED_PIN_CASES))
def test_fused_kernel_bits_equal_the_reference_commit_s(case, reference_bits):
    with num_threads(1):
        mine = _fused_pin_hash(case)
    assert mine == _fused_pin_hash(case)  # and with every thread
    assert mine == reference_bits[case]


def test_the_default_training_s_bits_equal_the_reference_commit_s(reference_bits, tmp_path):
    cfg = to_config(compose(["tracking.enabled=false", "progress=false",
                             f"dataset.cache_dir={tmp_path / 'cache'}"]))
    out = fit(cfg)
    assert hashlib.sha256(out.model.W.tobytes()).hexdigest() == reference_bits["W"]
    assert hashlib.sha256(out.history.loss.astype(np.float64).tobytes()).hexdigest() == reference_bits["loss"]
