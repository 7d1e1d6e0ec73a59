# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PORT ?= 8000

.PHONY: demo serve test test-slow lint bench clean

# the package alone: what `make demo` and `make serve` need
$(BIN)/pombo: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

# the package with the test tools (pytest, ruff, mypy, schemathesis, build): `make test`, `make lint`
$(VENV)/.test-tools: $(BIN)/pombo
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

demo: $(BIN)/pombo          ## a playground: embedded SQLite, demo customer, simulated upstream (PORT=8000)
	$(BIN)/pombo demo --port $(PORT)

serve: $(BIN)/pombo         ## the gateway on POMBO_DATABASE_URL (default ./pombo.db)
	$(BIN)/pombo serve --port $(PORT)

test: $(VENV)/.test-tools   ## the suite but its long `slow` scenarios (PostgreSQL/Redis tests skip with a reason when absent)
	$(BIN)/python -m pytest -q

test-slow: $(VENV)/.test-tools  ## the long scenarios alone: SIGKILL under load and restart, the package build (CI runs both)
	$(BIN)/python -m pytest -q -m slow

bench: $(VENV)/.test-tools  ## the benchmark (bench/README.md); needs wrk (apt-get install -y wrk)
	@command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(BIN)/python bench/run.py

lint: $(VENV)/.test-tools   ## ruff, mypy (the whole package; --strict on domain, services, ports)
	$(BIN)/ruff check src tests
	$(BIN)/mypy src/pombo
	$(BIN)/mypy --strict src/pombo/domain src/pombo/services src/pombo/ports src/pombo/errors.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis pombo-demo.db* build dist src/*.egg-info
