"""CPU steps with glibc's default allocator settings vs after :func:`snn_ssm.reuse_cpu_memory` (snn_ssm/memory.py).

The setting holds for a whole process and cannot be undone to glibc's adaptive default, so each case runs in fresh
interpreters, the two settings alternating (default, reuse, default, reuse, ...) within this one run; every
interpreter times ``--steps`` steps after one warm-up step and reports the median, with its user and system CPU time
and minor page faults per step. Cases, at the named configs' sizes:

- ``eval``: the SpikingSSM sMNIST model (2 x 400, N = 64), forward of a batch of 50 without gradients;
- ``train``: a training step of the same model (forward, backward, AdamW) on a batch of 50;
- ``demo``: a training step of ``make demo``'s model (2 x 64, batch 64).

    cd benchmarks && python bench_cpu_memory.py --rounds 2
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys

from _common import parser, write

CHILD = r"""
import json, resource, statistics, sys, time
import torch
import snn_ssm
case, reuse, steps = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3])
applied = snn_ssm.reuse_cpu_memory() if reuse else False
torch.manual_seed(0)
big = case in ("eval", "train")
model = snn_ssm.SpikingSSM(1, 10, d_model=400 if big else 64, n_layers=2, d_state=64)
B = 50 if big else 64
x, y = torch.rand(784, B, 1), torch.randint(0, 10, (B,))
opt = torch.optim.AdamW(model.parameters(), lr=1e-3)

def step():
    if case == "eval":
        model.eval()
        with torch.no_grad():
            model(x)
        return
    model.train()
    opt.zero_grad(set_to_none=True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()

step()
times, users, systems, faults = [], [], [], []
for _ in range(steps):
    r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    step()
    t1, r1 = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
    times.append(1e3 * (t1 - t0))
    users.append(1e3 * (r1.ru_utime - r0.ru_utime))
    systems.append(1e3 * (r1.ru_stime - r0.ru_stime))
    faults.append(r1.ru_minflt - r0.ru_minflt)
m = statistics.median
print(json.dumps({"applied": applied, "ms": m(times), "user_ms": m(users), "sys_ms": m(systems),
                  "faults": m(faults), "threads": torch.get_num_threads()}))
"""


def run(case: str, reuse: bool, steps: int) -> dict:
    r = subprocess.run([sys.executable, "-c", CHILD, case, "1" if reuse else "0", str(steps)], capture_output=True,
                       text=True, timeout=1800)
    if r.returncode != 0:
        raise RuntimeError(f"{case} (reuse={reuse}) failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main():
    p = parser(__doc__)
    p.add_argument("--cases", nargs="+", default=["eval", "train", "demo"], choices=["eval", "train", "demo"])
    p.add_argument("--rounds", type=int, default=2, help="interpreters per setting, alternating")
    p.add_argument("--steps", type=int, default=5, help="timed steps per interpreter (after one warm-up step)")
    args = p.parse_args()
    if args.device != "cpu":
        p.error("this benchmark is about the CPU allocator: --device cpu")
    rows = []
    for case in args.cases:
        results = {False: [], True: []}
        for _ in range(args.rounds):
            for reuse in (False, True):
                results[reuse].append(run(case, reuse, args.steps))
        base = statistics.median(r["ms"] for r in results[False])
        for reuse in (False, True):
            rs = results[reuse]
            row = {"case": case, "setting": "reuse_cpu_memory()" if reuse else "glibc default",
                   "applied": all(r["applied"] for r in rs) if reuse else False,
                   **{k: statistics.median(r[k] for r in rs) for k in ("ms", "user_ms", "sys_ms", "faults")}}
            row["speedup"] = base / row["ms"]
            rows.append(row)
            print(f"{case:6s} {row['setting']:20s} {row['ms']:9.1f} ms/step  user {row['user_ms']:8.1f}  "
                  f"sys {row['sys_ms']:8.1f}  faults {row['faults']:9.0f}  x{row['speedup']:.2f}", flush=True)
    threads = rs[-1]["threads"]
    write(args, "cpu_memory", f"T=784; eval/train: SpikingSSM 2 x 400, N=64, B=50; demo: 2 x 64, B=64; "
          f"{args.rounds} interpreters per setting, {args.steps} steps each; {threads} threads",
          "CPU step time, glibc default vs reuse_cpu_memory()",
          {"case": ("case", "{}"), "setting": ("setting", "{}"), "ms/step": ("ms", "{:.1f}"),
           "user ms": ("user_ms", "{:.1f}"), "sys ms": ("sys_ms", "{:.1f}"), "page faults": ("faults", "{:.0f}"),
           "x default": ("speedup", "{:.2f}")}, rows)


if __name__ == "__main__":
    main()
