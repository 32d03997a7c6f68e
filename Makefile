# Quickstart: `make demo` (set up + rank the bundled demo photos), `make test` (set up + tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.imagion-installed
LIGHT := $(VENV)/.imagion-light

.PHONY: demo test test-fast lint bench clean

# the light layer (no PyTorch): what `make demo` needs
$(LIGHT): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(LIGHT)

# everything: PyTorch, Cloud Vision and the dev tools
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP) $(LIGHT)

demo: $(LIGHT)
	$(BIN)/imagion rank data/samples
	@echo
	@echo "next: source .venv/bin/activate, then try: imagion rank ~/Pictures --top 5   (or run .venv/bin/imagion without activating)"

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q --cov --cov-report=term

# the inner loop: everything but the tests marked slow (docs/architecture.md: how long they take)
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/import_score.py
	$(BIN)/python bench/rank_speed.py
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/serve_load.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
