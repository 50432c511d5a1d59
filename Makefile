# polyp-rt: `make demo` runs the bundled sample, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On the development machines these two lie on local disk (pip takes them from there);
# elsewhere pip downloads them. Override to pick another build: make TORCH="torch torchvision"
TORCH ?= torch==2.14.1 torchvision==0.29.1
STUBS ?= tensorrt-stubs==10.13.0.35.1
HASH := $(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.run-$(HASH)
DEV_STAMP := $(VENV)/.dev-$(HASH)

.PHONY: demo test lint typecheck pytest soak clean

# the light install: what the live loop needs (no PyTorch), with OpenVINO, the fastest CPU runtime
$(RUN_STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[openvino]"
	rm -f $(VENV)/.run-*
	touch $@

# everything the tests need: training (PyTorch), Ray, the type stubs
$(DEV_STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	# tensorrt-stubs requires the real tensorrt, which is not installable here: types only
	$(BIN)/pip install --quiet --no-deps $(STUBS)
	rm -f $(VENV)/.dev-* $(VENV)/.run-*
	touch $@ $(RUN_STAMP)

demo: $(RUN_STAMP)
	$(BIN)/polyp-rt --source samples/demo.mp4 $(if $(DISPLAY),,--headless) \
		--record out/demo.mp4 --masks-out out/demo_masks --overwrite --truth samples/demo_masks \
		--stats-json out/demo_stats.json

test: lint typecheck pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/python scripts/typings.py
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/pytest

soak: $(DEV_STAMP)
	$(BIN)/pytest -m slow -s tests/reliability/test_soak.py

clean:
	rm -rf $(VENV) .typings .mypy_cache .pytest_cache .ruff_cache out
