# Two commands for a newcomer: `make run` and `make test`. Both bootstrap .venv on first use.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
JS     := tests/js/node_modules/.installed
REF    := loadtests/reference/node_modules/.installed

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
	@if [ -f tests/js/package.json ] && command -v npm >/dev/null; then \
	  [ -f $(JS) ] || (cd tests/js && npm ci --silent --no-audit --no-fund && touch node_modules/.installed); fi
	@if [ -f loadtests/reference/package.json ] && command -v npm >/dev/null; then \
	  [ -f $(REF) ] || (cd loadtests/reference && npm ci --silent --no-audit --no-fund && touch node_modules/.installed); fi
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .live tests/js/node_modules loadtests/reference/node_modules
