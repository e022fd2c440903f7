# The two commands a newcomer runs: `make report` and `make test`.
# Each creates or refreshes .venv from constraints.txt first.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

# Which build of mxnet 1.9.1: cpu, a CUDA build (cu101, cu102, cu110 ... cu117; each wheel
# brings its CUDA libraries and needs only the NVIDIA driver), or auto: the newest CUDA build
# the driver runs, from the CUDA version nvidia-smi prints (cpu without nvidia-smi). Unless
# given, the build installed already (the stamp records it), else cpu: `make test` after
# `make report GPU=cu117` keeps the CUDA build.
#   make report GPU=cu117      make report GPU=auto      make report GPU=cpu
GPU ?= $(or $(shell cat $(STAMP) 2>/dev/null),cpu)
CUDA_BUILDS := cu101 cu102 cu110 cu111 cu112 cu113 cu114 cu115 cu116 cu117
ifeq ($(GPU),auto)
override GPU := $(shell nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | { \
	read major minor || { echo cpu; exit; }; \
	if [ $$major -gt 11 ] || { [ $$major -eq 11 ] && [ $$minor -ge 7 ]; }; then echo cu117; \
	elif [ $$major -eq 11 ]; then echo cu11$$minor; \
	elif [ $$major -eq 10 ] && [ $$minor -ge 1 ]; then echo cu10$$minor; \
	else echo cpu; fi; })
endif
ifeq ($(filter $(GPU),cpu $(CUDA_BUILDS)),)
$(error GPU=$(GPU): expected auto, cpu or one of $(CUDA_BUILDS))
endif
# The stamp records the build installed: another GPU= installs again.
ifneq ($(shell cat $(STAMP) 2>/dev/null),$(GPU))
$(STAMP): FORCE
endif

.PHONY: report test lint bench clean FORCE

report: $(STAMP)
	$(VENV)/bin/reportgen build

# The linters first (seconds), then the tests: one process per core, at most 4 (each holds
# its own session fixtures), a test file's tests in one process so that they share its fixtures.
test: lint
	$(VENV)/bin/python -m pytest -n auto --maxprocesses 4 --dist loadfile

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
	@# Every build installs the same mxnet package: remove the others first.
	$(VENV)/bin/python -m pip uninstall -q -y $(filter-out mxnet$(if $(filter cpu,$(GPU)),,-$(GPU)),mxnet $(addprefix mxnet-,$(CUDA_BUILDS))) 2>/dev/null || true
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test,$(GPU)]'
	echo $(GPU) > $(STAMP)

clean:
	rm -rf $(VENV) build *.egg-info
