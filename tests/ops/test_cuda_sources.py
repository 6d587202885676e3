"""The CUDA C++ of the CuPy kernels compiles, for every variant a launcher can ask for, wherever nvcc is installed
(no GPU needed): a variant that does not compile fails every call that reaches it, and a GPU to find out on is not
always at hand. ptxas runs too, so static shared memory over 48 KiB or a register overflow fails here."""
import shutil
import subprocess

import pytest
import torch

from snn_ssm.ops.lif_scan import cuda_source as lif_source
from snn_ssm.ops.ssm_lif import cuda_source as ssm_source

NVCC = shutil.which("nvcc")
pytestmark = pytest.mark.skipif(NVCC is None, reason="needs nvcc, the CUDA compiler (no GPU needed)")


def _compiles(code: str, options, tmp_path) -> str:
    path = tmp_path / "module.cu"
    path.write_text(code)
    proc = subprocess.run([NVCC, "-arch=sm_90", "-cubin", "-Xptxas", "-v", *options, str(path), "-o",
                           str(tmp_path / "module.cubin")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stderr


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("skip", [False, True])
def test_lif_scan_sources_compile(dtype, skip, tmp_path):
    _compiles(lif_source.source(dtype, lif_source.CHUNK, skip), lif_source.OPTIONS, tmp_path)


# (dtype, modes, lanes, split neurons, extra soma input, soma): the defaults at N = 64 (4 lanes forward, 16 backward),
# odd and single modes (1 lane), every variant of the module, and the split backward on and off.
SSM_CASES = [(dtype, 32, lanes, 0, False, True) for dtype in (torch.float32, torch.float16, torch.bfloat16)
             for lanes in (4, 16)] + [
    (torch.float64, 4, 2, 0, False, True), (torch.float32, 1, 1, 0, False, True), (torch.float32, 3, 1, 0, False, True),
    (torch.float32, 32, 4, 0, True, True), (torch.float32, 32, 16, 0, True, True),
    (torch.float32, 32, 4, 0, False, False), (torch.float32, 32, 16, 0, False, False),
    (torch.float64, 1, 1, 0, False, False), (torch.bfloat16, 32, 16, 0, True, True),
    (torch.float32, 32, 16, 16, False, True), (torch.float32, 32, 16, 16, True, True),
    (torch.float64, 32, 16, 16, False, True), (torch.float32, 1, 1, 16, False, True)]


@pytest.mark.parametrize("dtype, modes, lanes, split, has_u, soma", SSM_CASES)
def test_ssm_lif_sources_compile(dtype, modes, lanes, split, has_u, soma, tmp_path):
    assert ssm_source.group_size(modes, lanes) == lanes
    threads = ssm_source.THREADS // 2 if dtype == torch.float64 else ssm_source.THREADS
    log = _compiles(ssm_source.source(dtype, modes, lanes, ssm_source.CHUNK, ssm_source.SUB, threads, split, has_u,
                                      soma),
                    ssm_source.OPTIONS, tmp_path)
    assert ("ssm_lif_bwd_split" in log) == (split > 0)  # compiled only where it runs
