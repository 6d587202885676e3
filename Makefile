# Set-up and checks. `make demo` and `make test` work on a fresh Linux machine with Python >= 3.10.
PYTHON ?= python3
# The CPU build of torch (on our machines `pip install torch==2.13.0` takes a local CPU wheel).
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)" numpy
	$(BIN)/pip install --quiet -e .
	touch $@

# SpikingJelly 2.0.0 requires torchvision/torchaudio, which would pull several GB of CUDA wheels that do not
# import on CPU-only machines; its neuron/functional/model-zoo core needs only what the `test` extra lists.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[test]"
	$(BIN)/pip install --quiet --no-deps spikingjelly==2.0.0
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m snn_ssm demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
