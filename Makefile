# Every target creates the virtual environment and installs bulkbench on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench hardening gate lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## the main job: both strategies, 200 images, legacy server, real and model, one report
	$(BIN)/bulkbench compare --images 200 --profile legacy

test: $(STAMP)  ## lint, then the test suite (real server on loopback)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## benchmarks, measured side by side in one run
	$(BIN)/python -m benchmarks.server_bench
	$(BIN)/python -m benchmarks.loadgen_bench
	$(BIN)/python -m benchmarks.sim_bench

hardening: $(STAMP)  ## fuzzing, crash (kill -9 x 20), overload (10x), slow clients: the server's hardening figures
	$(BIN)/python -m benchmarks.fuzz_bench --examples 5000 --max-seconds 300
	$(BIN)/python -m benchmarks.crash_bench --images 500 --kills 20
	$(BIN)/python -m benchmarks.overload_bench --factor 10
	$(BIN)/python -m benchmarks.slow_clients_bench

gate: $(STAMP)  ## a small real run, gated by the project's thresholds (CI runs this)
	$(BIN)/bulkbench run --strategy batched --images 30 --profile legacy --workload scenarios/workload-light.toml \
		--out results/ci-gate --max-seconds 300
	$(BIN)/bulkbench gate results/ci-gate --thresholds scenarios/thresholds.toml

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
