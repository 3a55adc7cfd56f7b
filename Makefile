# Two commands for a fresh machine: `make run` (the demo) and `make test` (everything CI checks).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8765

.PHONY: install system-deps node-deps run test check autobahn clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

# Installs wsio (building the C accelerator) and what the tests need; again
# only when the package's definition or the C source changed.
INSTALLED := $(VENV)/.installed
install: $(INSTALLED)
$(INSTALLED): $(PY) pyproject.toml setup.py src/wsio/protocol/_speedups.c src/wsio/asyncio/_transport.c
	$(PIP) install -q -e ".[test]"
	touch $@

# Debian packages the tests run for real: redis-server (the pub/sub hub across
# processes), chromium (the browser tests), tinyproxy, microsocks and danted
# (the proxy tests). Idempotent: installs only what is missing, in one go.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SYSTEM_PACKAGES := redis-server:redis-server chromium:chromium tinyproxy:tinyproxy microsocks:microsocks danted:dante-server
system-deps: system-libs
	@missing="$$(for pair in $(SYSTEM_PACKAGES); do command -v $${pair%%:*} >/dev/null || [ -x /usr/sbin/$${pair%%:*} ] || echo $${pair##*:}; done)"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi
	@command -v npm >/dev/null || ($(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q nodejs npm)

# Debian libraries (no command to look for, so dpkg is asked): libuv1, which socketify,
# a peer in the benchmarks and their smoke test, links against. Idempotent, like system-deps.
SYSTEM_LIBRARIES := libuv1
.PHONY: system-libs
system-libs:
	@missing="$$(for pkg in $(SYSTEM_LIBRARIES); do dpkg-query -W -f='$${Status}' $$pkg 2>/dev/null | grep -q 'ok installed' || echo $$pkg; done)"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -q && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	fi

# Node's ws package, the peer of the interop tests (pinned by tests/interop/node/package-lock.json).
node-deps: system-deps
	npm ci --prefix tests/interop/node --no-audit --no-fund --loglevel=error

# The chat demo; `make run WORKERS=4 REDIS=redis://127.0.0.1:6379/0` runs it on 4 processes joined by Redis.
run: install
	@echo "wsio demo: open http://127.0.0.1:$(PORT)/ in a browser (Ctrl-C stops it)"
	$(PY) examples/chat/server.py --host 127.0.0.1 --port $(PORT) $(if $(REDIS),--redis $(REDIS)) $(if $(WORKERS),--workers $(WORKERS))

# Everything CI checks, spread over the cores (tests/runner.py): the whole suite
# with the C accelerator; the core, both I/O layers, interop, hostile and fuzz
# tests again on the pure-Python path; tests/protocol, tests/asyncio and
# tests/sync on both paths on every other CPython 3.10+ found (in .venvs/3.X,
# with the wheel built for it). Logs and JUnit XML in reports/tests/.
# TEST_JOBS=N fills N cores (default: all); the exit status is 1 if anything failed.
test: install system-deps node-deps
	$(PY) tests/runner.py

# The edit loop, in under 3 minutes: lint and types, then the core and both I/O layers on both paths at once.
check: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check src tests bench examples
	$(PY) -m mypy
	$(PY) tests/runner.py --only c-core,py-core

# atheris on each parser (not in CI): PARSER=request|response|frames|differential|all, SECONDS each.
# New inputs that reach new code land in tests/fuzz/corpus/.
.PHONY: fuzz soak
fuzz: install
	$(PIP) install -q atheris
	nice -n 19 $(PY) tests/fuzz/run.py $(or $(PARSER),all) $(or $(SECONDS),600)

# 2,000 connections with churn for 15 minutes (make test runs 2 minutes of it);
# file descriptors, tasks and RSS must come back.
soak: install
	$(PY) tests/soak/soak.py --seconds $(or $(SOAK_SECONDS),900) --connections 2000

# The documentation site (Sphinx, furo, MyST): warnings are errors. make test builds it too (tests/test_docs.py).
.PHONY: docs
docs: install
	$(PY) -m sphinx -W --keep-going -n -b html docs docs/_build/html
	@echo "docs: open docs/_build/html/index.html"

autobahn: install
	$(PY) -m pytest -q tests/autobahn

# The benchmarks (timings, not tests): wsio beside websockets, picows, socketify, aiohttp,
# websocket-client, a plain TCP echo and a C WebSocket echo (built with cc at bench time).
# Writes bench/results/latest.{md,json} and a chart per scenario. BENCH_MODE=quick (the default, about 3 minutes) or full.
.PHONY: bench
bench: install system-libs
	$(PIP) install -q -e ".[bench]"
	BENCH_MODE=$(or $(BENCH_MODE),quick) $(PY) -m bench

# The ASGI suite: a Starlette echo on uvicorn (httptools, uvloop) with wsio's,
# websockets-sansio's and wsproto's engines. Writes bench/results/asgi.{md,json}.
.PHONY: bench-asgi
bench-asgi: install system-libs
	$(PIP) install -q -e ".[bench]"
	BENCH_MODE=$(or $(BENCH_MODE),quick) $(PY) -m bench --suite asgi

clean:
	rm -rf $(VENV) .venvs build reports src/*.egg-info src/wsio/*.so
