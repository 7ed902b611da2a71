# Two commands on a fresh machine: `make demo` (the main job: a real launch of the tiny job on this machine) and
# `make test`. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch goes in first, the build pip finds: the CPU build where a CPU index or wheel folder offers it (CI's machines;
# elsewhere PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu), else PyPI's CUDA build
TORCH_SPEC ?= torch==2.13.0

.PHONY: install demo test clean

install: $(VENV)/.installed

# orch itself with -qq: setuptools' "Editable installation ... be careful" banner read as a failed setup (errors
# still show); its trainer stack at the versions a cloud VM installs, so the tests run those
PINS := orchestrator/launch/pinned_packages.txt
$(VENV)/.installed: pyproject.toml $(PINS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install -qq -c $(PINS) -e ".[dev]"
	touch $@

demo: install
	$(BIN)/orch launch examples/tiny.yaml --budget 0.05 --yes

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) build *.egg-info
