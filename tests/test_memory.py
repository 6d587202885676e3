"""snn_ssm.reuse_cpu_memory: after it, a large tensor freed and allocated again reuses the pages it had (no page
faults); before it, glibc maps fresh zeroed pages for each one. Run in fresh interpreters: the setting is per
process."""
import os
import subprocess
import sys

import pytest

NEEDS_LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                 reason="reuse_cpu_memory tunes glibc's malloc, which only Linux has")

PROBE = """
import resource, sys, torch, snn_ssm
applied = snn_ssm.reuse_cpu_memory() if sys.argv[1] == "1" else False
torch.zeros(16_000_000)  # 64 MB, above glibc's largest automatic mmap threshold (32 MiB)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    torch.zeros(16_000_000)
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(use: bool, env=None):
    r = subprocess.run([sys.executable, "-c", PROBE, "1" if use else "0"], capture_output=True, text=True, timeout=120,
                       env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    applied, faults = r.stdout.split()
    return applied == "True", int(faults)


@NEEDS_LINUX
def test_large_tensors_reuse_their_pages_after_reuse_cpu_memory():
    applied, faults = _faults(True)
    if not applied:
        pytest.skip("this Linux uses a C library other than glibc, where reuse_cpu_memory does nothing")
    _, default = _faults(False)
    # 10 x 64 MB is 156k pages of 4 KiB: mapped fresh, each page faults once per tensor; reused, the pages fault
    # at most once (measured: once, for the first tensor of the loop, 15.6k faults)
    assert default > 150_000 and faults < 20_000, (default, faults)


@NEEDS_LINUX
def test_the_environment_choice_stands():
    applied, _ = _faults(True, env={**os.environ, "MALLOC_TRIM_THRESHOLD_": "131072"})
    assert not applied
