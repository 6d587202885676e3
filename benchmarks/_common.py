"""Shared by the benchmark scripts: timing, command line, and writing results (JSON + markdown)."""
from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import multiprocessing as mp
import platform
import statistics
import time
from pathlib import Path

import torch


def timed(fn, device: str, repeats: int, inner: int = 1):
    """Median milliseconds of ``fn()`` over ``repeats`` calls after a warm-up, and the peak extra GPU memory (MiB).

    With ``inner > 1`` each timing covers ``inner`` calls back to back and is divided by ``inner``: the steady cost
    of a call whose host work overlaps the previous call's kernels (as in a model), rather than that of one call
    issued to an idle GPU."""
    fn()  # warm-up (compilation, allocator)
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(inner):
                fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            for _ in range(inner):
                fn()
            times.append(1e3 * (time.perf_counter() - t0))
    peak = (torch.cuda.max_memory_allocated() - base) / 2**20 if device == "cuda" else float("nan")
    return statistics.median(times) / inner, peak


def _spin():
    count = 0
    while True:  # pure Python arithmetic: one core busy, no memory traffic
        count += 1


@contextlib.contextmanager
def spinning(n: int):
    """``n`` processes each keeping one core busy for the duration (another job on the machine)."""
    procs = [mp.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(n)]
    for proc in procs:
        proc.start()
    try:
        if n:
            time.sleep(0.5)  # started
        yield
    finally:
        for proc in procs:
            proc.terminate()
            proc.join()


def parser(doc: str, **extra_ints) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--T", type=int, nargs="+", default=None, help="default: 1024 4096 16384 (cuda), 1024 (cpu)")
    p.add_argument("--B", type=int, default=64)
    p.add_argument("--H", type=int, default=256)
    for name, default in extra_ints.items():
        p.add_argument(f"--{name}", type=int, default=default)
    p.add_argument("--out", default=str(Path(__file__).parent / "results"))
    p.add_argument("--tag", default="", help="suffix of the result files' names (a second run on one day)")
    return p


def lengths(args) -> list[int]:
    return args.T or ([1024, 4096, 16384] if args.device == "cuda" else [1024])


def device_name(device: str) -> str:
    return torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"


def write(args, kind: str, shape: str, title: str, columns: dict, rows: list[dict]) -> None:
    """Write ``rows`` as ``{kind}_{device}_{date}[_{tag}].json`` and ``.md`` (``columns``: header -> (key, format))."""
    meta = {"device": device_name(args.device), "date": datetime.date.today().isoformat(),
            "torch": torch.__version__, "python": platform.python_version(), "shape": shape}
    with contextlib.suppress(ImportError):
        import triton
        meta["triton"] = triton.__version__
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{kind}_{args.device}_{meta['date']}" + (f"_{args.tag}" if args.tag else "")
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    lines = [f"# {title}, {meta['device']}, {meta['date']}", "", f"{meta}", "",
             "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt.format(r.get(key, "")) for key, fmt in columns.values()) + " |" for r in rows]
    (out / f"{stem}.md").write_text("\n".join(lines) + "\n")
