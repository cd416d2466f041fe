# Two commands for a newcomer: `make run` and `make test`. Both bootstrap .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
NODE_DIRS := tests/js loadtests/reference

# npm ci in $(1) when it has a package.json and npm is on the PATH: once (stamped), and again when its lock file
# is newer than the stamp (a package added since)
npm_ci = if [ -f $(1)/package.json ] && command -v npm >/dev/null; then \
	  if [ ! -f $(1)/node_modules/.installed ] || [ $(1)/package-lock.json -nt $(1)/node_modules/.installed ]; then \
	    (cd $(1) && npm ci --silent --no-audit --no-fund && touch node_modules/.installed); fi; fi

# The browser tests (tests/web) drive Debian's Chromium: installed here when missing and running as root, else a
# one-line instruction and the run stops (they are never skipped).
CHROMIUM ?= /usr/bin/chromium
# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file per process at a time; each has its own
# PostgreSQL, Chromium and template database. TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
chromium_ready = if [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "make test: the browser tests need Chromium: run 'sudo apt-get install -y chromium' (Debian)"; exit 1; fi; fi

.PHONY: run test venv clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/live serve

test: $(STAMP)
	@$(foreach d,$(NODE_DIRS),$(call npm_ci,$(d));)
	@$(chromium_ready)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .live $(addsuffix /node_modules,$(NODE_DIRS))
