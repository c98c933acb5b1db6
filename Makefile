PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/pressroom up

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.write_path
	$(BIN)/python -m bench.scale_out
	$(BIN)/python -m bench.account_history
	$(BIN)/python -m bench.group_commit
	$(BIN)/python -m bench.job_pipeline
	$(BIN)/python -m bench.event_lag
	$(BIN)/python -m bench.publishing
	$(BIN)/python -m bench.vacuum_stalls
	$(BIN)/python -m bench.rebuild --events 1016160

clean:
	rm -rf $(VENV) var
