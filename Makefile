# Set-up and checks. `make demo` and `make test` work on a fresh Linux machine with Python >= 3.10.
PYTHON ?= python3
# The CPU build of torch (on our machines `pip install torch==2.13.0` takes a local CPU wheel).
TORCH ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint test-legacy docs clean kjv

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

# The unit tests, the integration recipes, then every tutorial notebook executed top to bottom (small setting).
test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q --nbmake examples

# Lint with ruff (rules in pyproject.toml, [tool.ruff.lint]).
lint: $(VENV)/.installed-test
	$(BIN)/ruff check snn_ssm tests benchmarks integrations examples

# The legacy SpikingJelly 0.0.0.0.14 in a venv of its own (it cannot live beside 2.0.0); see integrations/.
LEGACY := .venv-legacy
$(LEGACY)/.installed: pyproject.toml
	$(PYTHON) -m venv $(LEGACY)
	$(LEGACY)/bin/pip install --quiet "$(TORCH)" numpy pytest
	$(LEGACY)/bin/pip install --quiet --no-deps spikingjelly==0.0.0.0.14
	$(LEGACY)/bin/pip install --quiet --no-deps -e .
	touch $@

test-legacy: $(LEGACY)/.installed
	cd integrations/legacy_spikingjelly && ../../$(LEGACY)/bin/python -m pytest -q -p no:cacheprovider .

# The API reference (Sphinx, pages from the docstrings); warnings fail the build.
docs: $(VENV)/.installed-test
	$(BIN)/pip install --quiet "sphinx>=7"
	$(BIN)/python -m sphinx -q -E -W --keep-going -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

# The offline text corpus of the language models: the King James Bible from Debian's bible-kjv-text and bible-kjv
# packages, fetched with apt-get download and unpacked with dpkg-deb -x (nothing is installed), dumped one verse per
# line by the package's own `bible` program, then checked, split by book and checksummed (snn_ssm.data.text).
KJV := data/kjv
KJV_BUILD := $(KJV)/.build
kjv: $(KJV)/SHA256SUMS
$(KJV)/SHA256SUMS: $(VENV)/.installed
	rm -rf $(KJV_BUILD) && mkdir -p $(KJV_BUILD)
	cd $(KJV_BUILD) && apt-get download bible-kjv-text bible-kjv
	cd $(KJV_BUILD) && for deb in *.deb; do dpkg-deb -x $$deb root; done
	$(KJV_BUILD)/root/usr/bin/bible -f -p $(KJV_BUILD)/root/usr/lib gen1:1-rev22:21 < /dev/null > $(KJV_BUILD)/dump.txt
	$(BIN)/python -m snn_ssm data kjv --dump $(KJV_BUILD)/dump.txt --out $(KJV)
	rm -rf $(KJV_BUILD)
	@echo "corpus in $(KJV): train with  python -m snn_ssm train --model spikingssm_lm --task kjv --data-dir $(KJV)"

clean:
	rm -rf $(VENV) $(LEGACY) build *.egg-info .pytest_cache docs/_build
