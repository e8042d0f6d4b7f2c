# masterless — every target creates .venv when missing and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
LINT_PATHS := $(wildcard actors transport tests examples benchmarks)

.PHONY: demo demo-cluster test lint typecheck pytest docs docs-build bench bench-smoke bench-peers soak test-netns clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,docs,fast]'
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(PY) examples/demo.py

# A coordinator and two workers, each a `masterless run` process, joined through one seed.
demo-cluster: $(STAMP)
	$(PY) examples/worker_pool_demo.py

# pytest runs last so its summary line closes the output.
test: lint typecheck docs-build pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

typecheck: $(STAMP)
	$(VENV)/bin/mypy --strict actors transport

pytest: $(STAMP)
	$(PY) -X dev -m pytest -q

docs-build: $(STAMP)
	@if [ -f mkdocs.yml ]; then NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site; fi

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve

bench: $(STAMP)
	$(PY) -m benchmarks

bench-smoke: $(STAMP)
	$(PY) -m benchmarks --smoke

# Hosts in network namespaces (root, ip and iptables; installs iptables when missing).
test-netns: $(STAMP)
	@command -v iptables >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq iptables >/dev/null; }
	$(PY) -X dev -m pytest -q -rs -s -m netns tests/netns

# The peers `make bench` compares with (Ray, Pykka, Thespian, xoscar; matplotlib for the plot)
# go into the venv, and the seed library (npm) into benchmarks/node_modules. The bench itself
# never installs a Python package: an absent peer's row says skipped, and why.
bench-peers: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	@MASTERLESS_BENCH_INSTALL=1 $(PY) -m benchmarks._peers --install-seed

soak: $(STAMP)
	SOAK_SECONDS=60 $(PY) -m pytest -q -m soak

clean:
	rm -rf $(VENV) site .pytest_cache .mypy_cache .ruff_cache
