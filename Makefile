# Divergence Workbench: the two commands a new user runs are `make demo` and `make test`.
# Everything is installed into ./.venv from pyproject.toml, pinned by constraints.txt.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := causal,notebooks,dev,ui,flags,spark
# Debian packages the tests need; installed when missing: Chromium for the browser tests
# (Playwright drives Debian's /usr/bin/chromium; `playwright install` cannot download here).
# nats-server: the broker the streaming tests start (JetStream, on a free loopback port).
APT_PACKAGES := chromium chromium-driver nats-server

.PHONY: demo test test-ui bench venv sysdeps clean lint screenshots serve

venv: $(STAMP)

# Source adapters (plug-ins), each its own package; installed after the root package.
EXTENSIONS := extensions/workbench-otel extensions/workbench-changes extensions/workbench-warehouse \
	extensions/workbench-flags-http extensions/workbench-nats extensions/workbench-views-inputs

$(STAMP): pyproject.toml constraints.txt $(wildcard extensions/*/pyproject.toml)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[$(EXTRAS)]'
	$(BIN)/python -m pip install -q -c constraints.txt $(addprefix -e ,$(EXTENSIONS))
	@touch $(STAMP)

sysdeps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing:$$missing"; \
	  (apt-get update -q && apt-get install -y -q $$missing) || { echo "could not install$$missing (need root?)"; exit 1; }; fi
	@# Java 17 for the Spark engine (pyspark), when no `java` is on PATH
	@command -v java >/dev/null 2>&1 || { echo "installing: openjdk-17-jre-headless"; \
	  (apt-get update -q && apt-get install -y -q openjdk-17-jre-headless) || { echo "could not install openjdk-17-jre-headless (need root?)"; exit 1; }; }

demo: venv
	@echo "== Investigating the bundled demo passport (sample_data/demo) =="
	$(BIN)/workbench investigate sample_data/demo --metric conversion_rate
	@echo
	@echo "The JSON answer: $(BIN)/workbench investigate sample_data/demo --metric conversion_rate --json"
	@echo "The notebook artifact is listed above under 'Artifact:' (folder ./investigations)."

# `make test` includes the browser tests (Playwright on Debian's Chromium against the real
# server, and the notebooks in JupyterLab; about 5-7 minutes on 2 loaded cores). They wait
# on what the page shows, never on sleeps. `make test-ui` runs them alone.
test: venv sysdeps
	$(BIN)/python -m pytest -q

test-ui: venv sysdeps
	$(BIN)/python -m pytest -q -m browser tests/ui

bench: venv sysdeps
	$(BIN)/python benchmarks/incidents.py --n 8 --heldout
	$(BIN)/python benchmarks/incidents.py --n 10 --heldout --scale 0.5 --effect-scale 0.6,0.8,1 \
	  --out benchmarks/results/incidents_calibration.json \
	  --png benchmarks/results/incidents_reliability.png
	$(BIN)/python benchmarks/incidents.py --fit-calibration benchmarks/results/incidents_calibration.json
	$(BIN)/python benchmarks/detection.py
	$(BIN)/python benchmarks/localization.py
	$(BIN)/python benchmarks/causal.py
	$(BIN)/python benchmarks/graph_rca.py
	$(BIN)/python benchmarks/ui_latency.py
	$(BIN)/python benchmarks/experiments.py
	$(BIN)/python benchmarks/scale.py --sizes 10000000  # 100M: --sizes 100000000 (long)
	$(BIN)/python benchmarks/streaming.py

serve: venv
	$(BIN)/workbench serve sample_data/demo --metric conversion_rate

screenshots: venv sysdeps
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) investigations .pytest_cache sample_data/demo/.workbench
