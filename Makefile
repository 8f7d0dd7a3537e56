# Self-contained entry points: each target creates the virtual environment if needed.
# The pinned CPU wheel of PyTorch goes in first: a bare `torch` requirement would pull a
# multi-GB CUDA build.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
TORCH  ?= torch==2.13.0
SBIBM  ?= sbibm==1.1.0
OUT    ?= runs/battery-quick

.PHONY: venv run test test-slow lint bench clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

## The main job: the whole pipeline on the CPU recipe (simulate, train, sample, evaluate, report).
run: venv
	$(BIN)/scorepde run battery-quick --out $(OUT)

## The default (fast) test suite, then lint.
test: venv
	$(BIN)/python -m pytest -q
	$(BIN)/ruff check src tests benchmarks

## The slow suite; it includes the sbi benchmark on one task and the AR1 baseline (emukit), so the
## bench and mf extras go in first
## (sbibm pins an old sbi: it is installed without its dependencies).
test-slow: venv
	$(BIN)/pip install --quiet -e '.[test,bench,mf]'
	$(BIN)/pip install --quiet --no-deps $(SBIBM)
	$(BIN)/python -m pytest -q -m slow

lint: venv
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: venv
	$(BIN)/python benchmarks/bench_solver.py
	$(BIN)/python benchmarks/bench_model.py --threads 1

clean:
	rm -rf $(VENV) runs .pytest_cache .ruff_cache
