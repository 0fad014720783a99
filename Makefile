# softmax_exp: every target bootstraps .venv when it is missing.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: venv train test test-fast gradcheck bench ui lint clean

venv: $(STAMP)

# The stamp's name carries a hash of pyproject.toml: an edit there reinstalls, a second call does not.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@# a .venv made before the project's own Optuna sweeper has hydra-optuna-sweeper (Optuna < 3), whose
	@# plugin registers hydra/sweeper=optuna too: it goes
	@$(PY) -m pip uninstall --quiet --yes hydra-optuna-sweeper 2>/dev/null || true
	@rm -f $(VENV)/.installed-*
	@touch $@

# the link it prints names the port `make ui` serves on (UI_PORT, below; a running `make ui` records its own)
train: $(STAMP)
	SOFTMAX_EXP_UI_PORT=$(UI_PORT) $(PY) -m softmax_exp.train

# Prints the link to the runs of the experiment trained last (model-training mode), then serves quietly;
# a taken port stops it with one line. MLFLOW_DB: another store (e.g. a scratch one).
UI_PORT  ?= 5000
MLFLOW_DB ?= $(CURDIR)/mlflow.db
ui: $(STAMP)
	@$(PY) -m softmax_exp.ui serve --db "$(MLFLOW_DB)" --port "$(UI_PORT)"

test: $(STAMP)
	$(PY) -m pytest -q

# What a change needs while you work: no subprocess, sweep, server or long test, on two workers (each with
# Numba's threads: the tests are small). About 40 s on 2 cores; the first run after an install also
# compiles the Numba kernels (about 30 s more).
test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow and not subprocess"

gradcheck: $(STAMP)
	$(PY) -m softmax_exp.learn.gradcheck

bench: $(STAMP)
	$(PY) -m softmax_exp.bench

lint: $(STAMP)
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
