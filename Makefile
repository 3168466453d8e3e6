# Two commands matter: `make bench` (measure, summarise, write the report) and `make test`.
# Both create the virtual environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= all,dev
# More `bench run` options for `make bench`, e.g. BENCH_ARGS="--scenario dlfs-mlp,tch-cnn".
BENCH_ARGS ?=
# torch and TensorFlow are pinned (constraints/cpu.txt) to the versions checked to coexist.
PIP_INSTALL := $(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints/cpu.txt
UV := $(BIN)/uv pip
UV_TARGET := --quiet --python $(BIN)/python
comma := ,
STAMP := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: setup rust bench bench-full bench-overhead report test lint format clean

setup: $(STAMP) rust

$(STAMP): pyproject.toml constraints/cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@# uv resolves like pip, with the same constraints, but downloads and unpacks in parallel:
	@# torch's CUDA wheels (about 3 GB) take under a minute instead of about four. Bytecode is
	@# compiled now, as pip does: where PYTHONDONTWRITEBYTECODE is set, every worker would
	@# otherwise compile TensorFlow's and torch's sources again at each import.
	$(PIP_INSTALL) uv
	$(UV) install $(UV_TARGET) --compile-bytecode -c constraints/cpu.txt -e ".[$(EXTRAS)]"
	@# PyPI's Linux torch wheel is the CUDA build, which pulls in triton. Importing triton into
	@# a process that has loaded TensorFlow crashes it (segfault: both bundle LLVM). The harness
	@# never compiles kernels (no torch.compile), so triton goes.
	$(UV) uninstall $(UV_TARGET) triton 2>/dev/null || true
	touch $@

rust: $(STAMP)  ## the compiled implementations (one cargo build of the workspace), rebuilt only when their sources change
	$(BIN)/python tools/build_rust.py

bench: setup  ## every available case, quick profile (minutes); then the HTML report
	$(BIN)/bench run --profile quick $(BENCH_ARGS)
	$(BIN)/bench report

bench-full: setup  ## the articles' exact budgets (hours); then the HTML report
	$(BIN)/bench run --profile full
	$(BIN)/bench report

bench-overhead: setup  ## the harness's own cost per round, with a do-nothing trainer
	$(BIN)/bench run --plugins tests/plugins/noop --impl noop --scenario dlfs-mlp \
		--profile quick --rounds 20 --dataset mnist-5k --no-peak --no-check

report: setup  ## the HTML report of the latest run (reports/latest.html)
	$(BIN)/bench report

test: setup
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/build_rust.py lint

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf results/*/ reports/*.html reports/*.md .pytest_cache .ruff_cache build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
