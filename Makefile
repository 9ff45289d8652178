# Easel: `make demo` runs the main job, `make test` runs the tests. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean webui chromium bubblewrap promtool

$(STAMP): pyproject.toml
	@echo ">> creating $(VENV) with $(PYTHON) and installing Easel (first run: a few minutes, PyTorch is large)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) bubblewrap

# The dashboard (webui/): `npm ci` when the lock file changed, a production build when the sources changed.
WEBUI_SOURCES := $(shell find webui/src webui/public webui/index.html webui/vite.config.ts webui/tsconfig.json -type f 2>/dev/null)
WEBUI_MODULES := webui/node_modules/.package-lock.json
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(WEBUI_MODULES): webui/package-lock.json webui/package.json
	@echo ">> installing the dashboard's node modules (npm ci)"
	cd webui && npm ci --no-audit --no-fund --loglevel=error
	touch $@

webui/dist/index.html: $(WEBUI_MODULES) $(WEBUI_SOURCES)
	@echo ">> building the dashboard (webui/dist)"
	cd webui && npm run build --silent
	touch $@

webui: webui/dist/index.html

# The browser tests drive Debian's Chromium (browser downloads are not possible everywhere).
chromium:
	@command -v chromium >/dev/null || { echo ">> installing Debian's chromium for the dashboard's browser tests"; \
	  export CI=true DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q --no-install-recommends chromium \
	  || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends chromium; }; }

# Uploaded model templates run in a bubblewrap sandbox (easel/sandbox); Debian ships it as `bubblewrap`.
bubblewrap:
	@command -v bwrap >/dev/null || { echo ">> installing Debian's bubblewrap (the model-code sandbox)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q --no-install-recommends bubblewrap \
	  || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends bubblewrap; }; }

# The monitoring tests check deploy/monitoring with `promtool` (Debian's prometheus package) when it can be
# installed; where it cannot, they fall back to the rule-file schema and say so.
promtool:
	@command -v promtool >/dev/null || { echo ">> installing Debian's prometheus for promtool (alert rules check)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  $(SUDO) apt-get install -y -q --no-install-recommends prometheus \
	  || { $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q --no-install-recommends prometheus; } \
	  || echo ">> promtool could not be installed: the monitoring tests use the rule-file schema instead"; }

demo: install webui
	$(BIN)/python -m demo

test: install webui chromium promtool
	$(BIN)/ruff check .
	cd webui && npm run typecheck --silent && npm test --silent
	EASEL_REQUIRE_WEBUI=1 $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	PYTHONPATH=.:tests $(BIN)/lint-imports
	$(BIN)/ruff format --check easel

bench: install
	$(BIN)/python benchmarks/slicing.py
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/tuning.py
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis webui/node_modules webui/dist webui/test-results
