"""A target for ``ncu``: the fused SSM-LIF op (CuPy), forward and backward, three times at one layer's shape (default
the SpikingSSM sMNIST layer: T=784, B=50, H=400, N=64, fp32), then the compiled kernels' registers and memory.

    cd benchmarks && ncu --clock-control none -k regex:ssm_lif --launch-skip 2 --launch-count 2 --set full \\
        python prof_ssm_lif.py [T B H]
"""
import sys

import torch
from bench_ssm_lif import problem

from snn_ssm.ops.ssm_lif import cupy as impl
from snn_ssm.ops.ssm_lif import ssm_lif


def main():
    T, B, H = (int(a) for a in sys.argv[1:4]) if len(sys.argv) > 3 else (784, 50, 400)
    x, params = problem(T, B, H, 64, "cuda")
    w = torch.randn_like(x)
    for _ in range(3):
        s, h, v = ssm_lif(x, *params, backend="cupy")
        (s * w).sum().backward()
    torch.cuda.synchronize()
    for key, module in impl._modules.items():
        for name in ("ssm_lif_fwd", "ssm_lif_bwd", "ssm_lif_bwd_split"):
            f = module.get_function(name)
            print(name, key, "registers", f.num_regs, "local bytes", f.local_size_bytes, "shared bytes",
                  f.shared_size_bytes)


if __name__ == "__main__":
    main()
