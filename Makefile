# Two commands matter: `make bench` (measure, summarise) and `make test`.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= all,dev
# torch and TensorFlow are pinned to CPU builds here (an unpinned torch pulls a CUDA build).
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints/cpu.txt
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: setup bench bench-full bench-overhead report test lint format clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -e ".[$(EXTRAS)]"
	touch $@

bench: setup  ## every available case, quick profile (minutes)
	$(BIN)/bench run --profile quick

bench-full: setup  ## the articles' exact budgets (hours)
	$(BIN)/bench run --profile full

bench-overhead: setup  ## the harness's own cost per round, with a do-nothing trainer
	$(BIN)/bench run --plugins tests/plugins/noop --impl noop --scenario dlfs-mlp \
		--profile quick --rounds 20 --dataset mnist-5k --no-peak

report: setup  ## summary of the latest run
	$(BIN)/bench show

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf results/*/ reports/*.html .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
