# Every target creates the virtual environment and installs bulkbench on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test bench hardening gate lint clean tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)  ## the main job: individual, batched and pipelined, 200 images, legacy server, 10 Mbit/s, real and model, one report
	$(BIN)/bulkbench compare --images 200 --profile legacy

test: $(STAMP)  ## lint, then the test suite (real server on loopback)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

bench: $(STAMP)  ## benchmarks, measured side by side in one run
	$(BIN)/python -m benchmarks.performance.server_bench
	$(BIN)/python -m benchmarks.performance.loadgen_bench
	$(BIN)/python -m benchmarks.performance.sim_bench
	$(BIN)/python -m benchmarks.performance.plan_bench

hardening: $(STAMP)  ## fuzzing, crash (kill -9 x 20), overload (10x), slow clients: the server's hardening figures
	$(BIN)/python -m benchmarks.hardening.fuzz_bench --examples 5000 --max-seconds 300
	$(BIN)/python -m benchmarks.hardening.crash_bench --images 500 --kills 20
	$(BIN)/python -m benchmarks.hardening.overload_bench --factor 10
	$(BIN)/python -m benchmarks.hardening.slow_clients_bench

gate: $(STAMP)  ## a small real run, gated by the project's thresholds (CI runs this)
	$(BIN)/bulkbench run --strategy batched --images 30 --profile legacy --workload scenarios/workload-light.toml \
		--out results/ci-gate --max-seconds 300
	$(BIN)/bulkbench gate results/ci-gate --thresholds scenarios/thresholds.toml

tools: $(STAMP)  ## outside tools some tests need: Debian's Chromium (as root), the real ImageCanvas (../shared)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "make tools: no chromium; as root: apt-get install chromium (browser tests will skip)"
	$(BIN)/python -c "from loadtests.imagecanvas import install, missing_reason; \
		r = missing_reason(); print(r) if r else [print('ImageCanvas', s, 'in', install(s)) for s in ('today', 'as-reported')]"

lint: $(STAMP)  ## ruff, and the layers' import contract (.importlinter)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
