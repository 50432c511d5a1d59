# polyp-rt: `make demo` runs the bundled sample, `make test` runs every check CI runs.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# On the development machines these two lie on local disk (pip takes them from there);
# elsewhere pip downloads them. Override to pick another build: make TORCH="torch torchvision"
TORCH ?= torch==2.14.1 torchvision==0.29.1
STUBS ?= tensorrt-stubs==10.13.0.35.1
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: demo test lint typecheck pytest soak clean

$(STAMP):
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	# tensorrt-stubs requires the real tensorrt, which is not installable here: types only
	$(BIN)/pip install --quiet --no-deps $(STUBS)
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/polyp-rt --source samples/demo.mp4 $(if $(DISPLAY),,--headless) \
		--record out/demo.mp4 --masks-out out/demo_masks --truth samples/demo_masks \
		--stats-json out/demo_stats.json

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/python scripts/typings.py
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

soak: $(STAMP)
	$(BIN)/pytest -m slow -s tests/reliability/test_soak.py

clean:
	rm -rf $(VENV) .typings .mypy_cache .pytest_cache .ruff_cache out
