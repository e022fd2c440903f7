# The two commands a newcomer runs: `make report` and `make test`.
# Each creates or refreshes .venv from constraints.txt first.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: report test lint bench clean

report: $(STAMP)
	$(VENV)/bin/reportgen build

# The linters first (seconds), then the tests.
test: lint
	$(VENV)/bin/python -m pytest

# ruff, the type checker, and the layers' contracts (pyproject.toml, [tool.importlinter]).
lint: $(STAMP)
	$(VENV)/bin/ruff check reportgen tests benchmarks tools
	$(VENV)/bin/ruff format --check reportgen tests benchmarks tools
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/bench.py

$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (reportgen needs Python 3.11)" >&2; exit 2; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
