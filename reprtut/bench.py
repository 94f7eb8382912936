"""Throughput of PGD-20 (l_inf) in reprtut and in torchattacks, on the same model and device.

    python -m reprtut.bench [--batch 256] [--repeats 5] [--device cuda]

Prints images per second and the ratio reprtut / torchattacks twice: both in fp32 (the same
arithmetic, so the ratio measures the implementations' overhead), and reprtut in mixed
precision (:func:`reprtut.device.attack_dtype`: bf16 or fp16 on GPUs, bf16 on CPUs with native
bf16) against torchattacks in fp32, its default. The model is the active profile's CIFAR-10
architecture (``recipes._cifar_arch``) with random weights (speed does not depend on them); the
images are CIFAR-10 test images if the data is at hand, else uniform noise. On GPUs both run
channels_last. Timing uses the median of ``repeats`` runs after a warm-up, the attacks timed in
alternation, with the device synchronised around each run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from . import attacks, data, models, recipes
from .device import attack_dtype, default_device, to_device_layout

EPS, ALPHA, STEPS = 8 / 255, 2 / 255, 20   # Madry et al.'s CIFAR-10 evaluation attack


def _images(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        ds = data.load("cifar10", "test", n=n, download=False)
        x, y = ds.images(device), ds.y.to(device)
    except (FileNotFoundError, RuntimeError):
        x, y = torch.rand(n, 3, 32, 32, device=device), torch.randint(0, 10, (n,), device=device)
    reps = -(-n // len(x))                                    # repeat a small mirror up to n
    return to_device_layout(x.repeat(reps, 1, 1, 1)[:n], device), y.repeat(reps)[:n]


def _seconds(fns, device: torch.device, repeats: int) -> list[float]:
    """Median wall time of each function in ``fns``, timed in alternation so that a change
    in the machine's load (other jobs on shared cores) affects all of them alike."""
    for fn in fns:
        fn()                                                   # warm-up (kernels, allocator)
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, record in zip(fns, times):
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            t0 = time.perf_counter()
            fn()
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            record.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def run(batch: int = 256, repeats: int = 5, device: str | None = None) -> dict[str, float]:
    """Images/s of PGD-20 for reprtut and torchattacks, and their ratio."""
    import torchattacks

    device = torch.device(device) if device else default_device()
    torch.manual_seed(0)
    arch, kwargs = recipes._cifar_arch()
    model = models.build(arch, "cifar10", **kwargs).to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    x, y = _images(batch, device)

    dtype = attack_dtype(device)

    def ours(mixed: bool):
        with torch.autocast(device.type, dtype=dtype, enabled=mixed and dtype is not None):
            attacks.pgd(model, x, y, eps=EPS, norm="linf", steps=STEPS, step_size=ALPHA)

    theirs_attack = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)

    def theirs():
        theirs_attack(x, y)

    fns = [lambda: ours(False), theirs] + ([lambda: ours(True)] if dtype is not None else [])
    t = _seconds(fns, device, repeats)
    result = {"device": str(device), "arch": arch, "batch": batch, "reprtut": batch / t[0],
              "torchattacks": batch / t[1], "ratio": t[1] / t[0], "mixed_dtype": str(dtype)}
    if dtype is not None:
        result.update({"reprtut_mixed": batch / t[2], "ratio_mixed": t[1] / t[2]})
    return result


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256, help="images per attack call")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--device", default=None, help="cpu, cuda, mps (default: fastest)")
    args = parser.parse_args(argv)
    r = run(args.batch, args.repeats, args.device)
    print(f"PGD-{STEPS} (l_inf, eps 8/255) on {r['arch']}, batch {r['batch']}, {r['device']}")
    print(f"  torchattacks (fp32)    {r['torchattacks']:9.1f} images/s")
    print(f"  reprtut (fp32)         {r['reprtut']:9.1f} images/s   ratio {r['ratio']:.2f}")
    if "ratio_mixed" in r:
        print(f"  reprtut ({r['mixed_dtype'].removeprefix('torch.')})      "
              f"{r['reprtut_mixed']:9.1f} images/s   ratio {r['ratio_mixed']:.2f}")
    else:
        print("  (no reduced precision is native on this device)")


if __name__ == "__main__":
    main()
