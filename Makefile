# Two entry points for a fresh clone:  `make run`  and  `make test`.
# Everything else here is the set-up they share.

PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test build serve lint bench eval system-deps ontology-exports store-deps clean

# Build the graph from seeds/ and serve it on http://127.0.0.1:8000
run: build serve

build: $(STAMP)
	$(BIN)/jiceng build seeds -o build/kg.ttl

serve: $(STAMP)
	$(BIN)/jiceng serve --data build/kg.ttl --host 127.0.0.1 --port 8000

# The whole test suite (what .ci/run calls).
test: $(STAMP) system-deps store-deps
	$(BIN)/ruff check .
	$(BIN)/pytest

eval: $(STAMP)
	$(BIN)/jiceng eval --gold tests/gold

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_build.py

# Serving and scale benchmarks (benchmarks/README.md).  bench-serve drives the servers
# with Debian's wrk, installed here when missing and root (one apt-get update).
.PHONY: bench-serve bench-scale
bench-serve: build
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else echo "bench-serve needs wrk (apt-get install wrk)"; exit 1; fi; }
	$(BIN)/python benchmarks/bench_serve.py

bench-scale: build
	$(BIN)/python benchmarks/bench_scale.py

# pkuseg 0.0.25 ships only as an sdist that needs numpy and Cython at build time,
# hence its own step without build isolation.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q numpy Cython setuptools wheel
	$(BIN)/python -m pip install -q --no-build-isolation 'pkuseg==0.0.25'
	$(BIN)/python -m pip install -q -e '.[test]'
	$(BIN)/python -m kg.segment      # convert pkuseg's model once, so no build pays for it
	$(BIN)/python -c "from kg.lexicon import load_lexicon; load_lexicon()"
	rm -f $(VENV)/.installed-*
	touch $@

# Debian packages the tests use: Chromium for the browser tests (Playwright drives it; it
# never downloads one), and rapper (raptor2-utils) and serdi, RDF parsers we did not write,
# to check the dumps.  Installed only when missing and only as root; one apt-get update.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v rapper >/dev/null 2>&1 || missing="$$missing raptor2-utils"; \
	command -v serdi >/dev/null 2>&1 || missing="$$missing serdi"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian packages for the tests:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: not root, missing:$$missing (browser tests skip; dump checks skip, or fail if CI is set)"; \
	  fi; \
	fi

# The ontology in N-Triples, JSON-LD and RDF/XML, and the JSON-LD context, from jiceng.ttl.
ontology-exports: $(STAMP)
	$(BIN)/python ontology/export.py

# Virtuoso (Debian's virtuoso-opensource) for the remote-backend tests; the Oxigraph
# server comes with the test extras (PyPI's `oxigraph`).  The tests start their own
# instances on 127.0.0.1 and skip without them, except under CI, where they fail.
store-deps:
	@if ! command -v virtuoso-t >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian virtuoso-opensource for the remote-backend tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      virtuoso-opensource >/dev/null; \
	  else \
	    echo "note: virtuoso-t not found and not root: Virtuoso tests will be skipped"; \
	  fi; \
	fi

clean:
	rm -rf build .pytest_cache
