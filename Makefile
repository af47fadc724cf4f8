# Central Memory Workers. Every target keeps its virtual environment in .venv at the root.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SCALE ?= 1

.PHONY: install lock test test-fast lint format dev migrate seed-demo bench bench-seed faults clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Editable install with the test tools and the embedded servers `cmw dev` falls back to; re-run
# after changing pyproject.toml.
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,embedded]"

# Regenerate requirements.lock (what the image installs) from pyproject.toml's dependencies:
# exact versions with the hashes of every file PyPI has for them, plus the build backend.
# Commit the result; the image build then resolves nothing.
lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet "pip-tools>=7.4"
	PIP_CONFIG_FILE=/dev/null $(BIN)/pip-compile --quiet --generate-hashes --strip-extras \
		--allow-unsafe --build-deps-for wheel --no-emit-index-url --no-emit-find-links \
		--output-file requirements.lock pyproject.toml

# The whole suite on real PostgreSQL and Redis (127.0.0.1, or embedded when none answers).
test: install
	$(BIN)/python -m pytest

# Without the end-to-end tests that start real workers.
test-fast: install
	$(BIN)/python -m pytest -m "not e2e"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The fault-injection suite (docs/RELIABILITY.md): real workers killed, Redis restarted, database
# backends terminated, poison messages, a soak. Minutes, not seconds: not part of `make test`.
# FAULTS_N=20 FAULTS_SOAK_SECONDS=1800 for the documented figures.
FAULTS_N ?= 3
FAULTS_SOAK_SECONDS ?= 60
faults: install
	FAULTS_N=$(FAULTS_N) FAULTS_SOAK_SECONDS=$(FAULTS_SOAK_SECONDS) $(BIN)/python -m pytest faults -q

# Worker, beat and Flower (http://localhost:5555) with demo data; embedded Postgres/Redis
# when none is configured or listening.
dev: install
	$(BIN)/cmw dev

migrate: install
	$(BIN)/cmw migrate

seed-demo: install
	$(BIN)/cmw seed demo

# Benchmarks, each on a freshly seeded database at SCALE (1 = 1,000 properties); every script
# writes its own section of docs/PERFORMANCE.md. Run them on a quiet machine: the figures are
# wall times. One job: make bench-recurring SCALE=10.
BENCHES := seed recurring sla linen channel statements finance analytics journeys ops overhead

bench: $(addprefix bench-,$(BENCHES))

bench-seed: install
	$(BIN)/python -m bench.seed_bench --scale $(SCALE) --write-doc

bench-%: install
	$(BIN)/python -m bench.bench_$* --scale $(SCALE)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .cmw-test *.egg-info
