import pytest
import torch
from hypothesis import settings

import snn_ssm

snn_ssm.reuse_cpu_memory()  # as the command line does: the suite's large CPU tensors are reused (snn_ssm/memory.py)


# The fuzz tests (hypothesis) draw the same examples at every run unless asked otherwise: `make test` and CI pass or
# fail reproducibly (a random draw once found a latent tolerance case in a fresh clone and could fail CI by chance).
# Explore new examples with `pytest --hypothesis-profile explore tests/ops` (hypothesis keeps what fails in
# .hypothesis/ and replays it first).
settings.register_profile("deterministic", derandomize=True)
settings.register_profile("explore", derandomize=False)


def pytest_configure(config):
    if not config.getoption("hypothesis_profile", None):
        settings.load_profile("deterministic")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(42)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run through the device machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
