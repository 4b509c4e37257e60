# Two commands on a fresh machine: `make run` (serve the demo) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
DEMO_DATA := data/fixtures/demo
export LOOKUP_DATA_DIR ?= ./var
export LOOKUP_HOST ?= 127.0.0.1
export LOOKUP_PORT ?= 8000
export LOOKUP_INTERNAL_PORT ?= 8001
export LOOKUP_INTERNAL_HOST ?= 127.0.0.1

.PHONY: run test lint typecheck pytest bench eval-abuse clean help

help:
	@echo "make run    - set up, ingest the demo data, create a demo key, serve on 127.0.0.1:8000 (LOOKUP_HOST, LOOKUP_PORT)"
	@echo "make test   - set up, then ruff, ruff format --check, mypy and pytest"
	@echo "make bench  - lookup latency and HTTP throughput figures"
	@echo "make eval-abuse - score the abuse detectors on a simulated month of traffic"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

run: $(STAMP)
	$(BIN)/lookup ingest $(DEMO_DATA)
	@key=$$($(BIN)/lookup keys create --org demo --roles lookup,search | tail -n 1) && \
	officer=$$($(BIN)/lookup keys create --org demo-compliance --roles compliance | tail -n 1) && \
	number=$$($(BIN)/python -c "import json;m=json.load(open('$(DEMO_DATA)/manifest.json'));print(next(n for n,v in sorted(m['numbers'].items()) if v['reservation']=='listed'))") && \
	echo "" && echo "demo API key: $$key" && \
	echo "try:  curl -s -H 'Authorization: Bearer $$key' http://$(LOOKUP_HOST):$(LOOKUP_PORT)/v1/numbers/$$number" && \
	echo "      curl -s -H 'Authorization: Bearer $$key' 'http://$(LOOKUP_HOST):$(LOOKUP_PORT)/v1/search?name=Hansen&limit=3'" && \
	echo "compliance (internal port): curl -s -H 'Authorization: Bearer $$officer' http://$(LOOKUP_INTERNAL_HOST):$(LOOKUP_INTERNAL_PORT)/internal/v1/cases" && echo ""
	$(BIN)/lookup serve

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python bench/lookup_latency.py
	bench/http_throughput.sh

eval-abuse: $(STAMP)
	$(BIN)/python -m lookup.abuse.evaluate

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
