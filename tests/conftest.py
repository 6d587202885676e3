import pytest
import torch

import snn_ssm

snn_ssm.reuse_cpu_memory()  # as the command line does: the suite's large CPU tensors are reused (snn_ssm/memory.py)


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
