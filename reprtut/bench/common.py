"""What every benchmark shares: the run's metadata, the device's peak, timing and profiling."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import torch

from .. import profiles

# Dense (no sparsity) bf16 tensor-core peaks in TFLOP/s from the vendors' data sheets, keyed
# by a substring of torch.cuda.get_device_name; the longest matching key wins ("H100 PCIe"
# before "H100"). The T4 has no bf16: its fp16 peak stands in, the precision it trains in.
PEAK_TFLOPS = {
    "H100 PCIe": 756.0,
    "H100 NVL": 835.0,
    "H100": 989.0,    # SXM
    "H200": 989.0,
    "GH200": 989.0,
    "A100": 312.0,
    "L40S": 362.0,
    "L4": 121.0,
    "A10G": 70.0,
    "T4": 65.0,       # fp16
}

COMMIT_ENV = "REPRTUT_COMMIT"


def read_record(name: str) -> dict:
    """A JSON record kept beside the trained models (``$REPRTUT_CACHE/<name>``: this CPU's
    measured speed, the counted steps of the recipes), or ``{}`` when it is missing,
    unreadable or torn (the caller measures again)."""
    from ..cache import cache_dir
    try:
        path = cache_dir() / name
        return json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}


def write_record(name: str, record: dict) -> None:
    """Write :func:`read_record`'s ``name`` atomically (a reader sees the old file or the new
    one); an unwritable cache only costs the next process a new measurement."""
    from ..cache import cache_dir
    path = cache_dir() / name
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(record, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass


def device_name(device: torch.device) -> str:
    """The accelerator's marketing name, or the CPU's model name."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
        except OSError:
            pass
        return platform.processor() or platform.machine()
    return device.type


def peak_tflops(name: str) -> float | None:
    """The dense bf16 peak (TFLOP/s) of the GPU called ``name``, or None if unknown (CPUs)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, not {type(name).__name__}")
    for key in sorted(PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            return PEAK_TFLOPS[key]
    return None


def git_commit() -> str:
    """``$REPRTUT_COMMIT`` if set (a copied checkout without .git), else ``git rev-parse HEAD``
    with ``-dirty`` when tracked files differ from it, else ``"unknown"``."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    root = Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
        return sha + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def metadata(device: torch.device, command: str | None = None) -> dict:
    """Device, software, commit, command line (default: this benchmark's) and UTC date."""
    name = device_name(device)
    return {
        "device": device.type, "device_name": name, "peak_bf16_tflops": peak_tflops(name)
        if device.type == "cuda" else None,
        "torch": torch.__version__, "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(), "profile": profiles.name(),
        "commit": git_commit(),
        "command": command or shlex.join([sys.executable.rsplit("/", 1)[-1], *sys.argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alternate(fns: list[Callable[[], None]], device: torch.device, repeats: int) -> list[float]:
    """Median wall time (s) of each function, after one warm-up call each, timed in
    alternation so that a change in the machine's load affects all of them alike."""
    if repeats < 1:
        raise ValueError(f"repeats must be positive, got {repeats}")
    for fn in fns:
        fn()                                                   # warm-up (kernels, allocator)
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            record.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


class Profiled:
    """``with Profiled(enabled, device) as p: ...`` then ``p.table`` holds torch.profiler's
    top operators (by device time on GPUs, CPU time otherwise), or None when disabled."""

    def __init__(self, enabled: bool, device: torch.device, rows: int = 20):
        self.enabled, self.device, self.rows, self.table = enabled, device, rows, None

    def __enter__(self):
        if self.enabled:
            from torch.profiler import ProfilerActivity, profile
            acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if self.device.type == "cuda" else [])
            self._prof = profile(activities=acts)
            self._prof.__enter__()
        return self

    def __exit__(self, *exc):
        if self.enabled:
            sync(self.device)
            self._prof.__exit__(*exc)
            key = "cuda_time_total" if self.device.type == "cuda" else "cpu_time_total"
            self.table = self._prof.key_averages().table(sort_by=key, row_limit=self.rows)
        return False


def write(result: dict, out: str | os.PathLike | None) -> None:
    """Print ``result`` as JSON and, with ``out``, write it there too (folders created)."""
    text = json.dumps(result, indent=2, sort_keys=False)
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text + "\n")
    print(text)


def slug(device: torch.device) -> str:
    """A folder name for the machine: its device name in lower case with dashes, and the
    thread count on CPUs (``nvidia-h100-80gb-hbm3``, ``cpu-amd-epyc-2t``)."""
    name = "".join(c if c.isalnum() else "-" for c in device_name(device).lower())
    name = "-".join(filter(None, name.split("-")))
    if device.type == "cpu":
        return f"cpu-{name}-{torch.get_num_threads()}t"
    return name
