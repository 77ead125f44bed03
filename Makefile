# session-bot — two commands: `make demo` and `make test`. Needs only Python >= 3.11 and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: demo test lint format bench install dev browser clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-run the install whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/session-bot demo

browser:
	@scripts/ensure-chromium.sh

# Most tests wait on real servers (SMTP, Zoom sandbox, PostgreSQL, subprocesses), so more
# workers than cores pays: 4 on this 2-core machine. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4
test: $(VENV)/.installed-dev browser
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# Style, types, the import contracts of pyproject.toml and the size of modules and classes.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy --strict src
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_sizes.py src

format: $(VENV)/.installed-dev
	$(BIN)/ruff format src tests bench scripts
	$(BIN)/ruff check --fix src tests bench scripts

bench: $(VENV)/.installed-dev
	@set -e; for b in bench/[!_]*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	@# Only the demo's folder: ./var may hold a live database by now.
	rm -rf var/demo test-artifacts .pytest_cache .mypy_cache .ruff_cache
