# Two commands for a fresh machine: `make run` (the demo) and `make test` (everything CI checks).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8765

.PHONY: venv install run test test-core test-pure autobahn clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel

# Installs wsio (building the C accelerator) and what the tests need.
install: $(PY)
	$(PIP) install -q -e ".[test]"

run: install
	@echo "wsio demo: open http://127.0.0.1:$(PORT)/ in a browser (Ctrl-C stops it)"
	$(PY) examples/chat/server.py --host 127.0.0.1 --port $(PORT)

# The whole suite with the C accelerator, then the protocol tests again on the
# pure-Python path: both must pass, and give the same results.
test: install
	WSIO_REQUIRE_SPEEDUPS=1 $(PY) -m pytest -q
	WSIO_NO_SPEEDUPS=1 $(PY) -m pytest -q tests/protocol tests/asyncio

autobahn: install
	$(PY) -m pytest -q tests/autobahn

clean:
	rm -rf $(VENV) build reports src/*.egg-info src/wsio/*.so
