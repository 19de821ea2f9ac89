# Two entry points on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,kernels]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/infercast whatif

test: $(STAMP)
	$(BIN)/python -m pytest -q --nbmake tests notebooks

clean:
	rm -rf $(VENV) build *.egg-info
