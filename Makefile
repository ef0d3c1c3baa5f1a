# Micro Platform: `make run` serves the whole platform (embedded mode), `make test` runs the suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000

.PHONY: run test test-cluster test-faults lint format migrate bench soak serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The otel extra: the SDK's tracing, so that `platform demo` beside `make run` records traces.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[otel]"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run  ## the whole platform on http://127.0.0.1:$(PORT)
	$(BIN)/platform run --port $(PORT)

serve: $(VENV)/.installed-run  ## the production layout (WSGI HTTP + ASGI websockets + Celery)
	$(BIN)/platform serve --port $(PORT) --migrate

test: $(VENV)/.installed-dev  ## the whole suite on SQLite and in-memory layers
	$(BIN)/pytest

test-cluster: $(VENV)/.installed-dev  ## two nodes, two workers and beat on DATABASE_URL (PostgreSQL) + REDIS_URL
	PLATFORM_CLUSTER_TEST=1 $(BIN)/pytest -p no:randomly tests/cluster

test-faults: $(VENV)/.installed-dev  ## faults under load on a PostgreSQL, Redis and cluster of its own; matrix in var/faults/
	PLATFORM_FAULT_TEST=1 $(BIN)/pytest -p no:randomly tests/faults

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

migrate: $(VENV)/.installed-run
	$(BIN)/python manage.py migrate

bench: $(VENV)/.installed-dev  ## benchmark scenarios, ratios to a bare-view baseline (tests/bench/)
	$(BIN)/python -m tests.bench $(BENCH_ARGS)
	$(BIN)/python -m tests.bench.propagation $(PROPAGATION_ARGS)
	$(BIN)/python -m tests.bench.router_sim
	$(BIN)/python -m tests.bench.trace $(TRACE_BENCH_ARGS)

soak: $(VENV)/.installed-dev  ## 10 minutes of mixed load on DATABASE_URL (PostgreSQL) + REDIS_URL: var/bench/soak.json
	$(BIN)/python -m tests.bench.soak $(SOAK_ARGS)

clean:
	rm -rf $(VENV) var
