"""Attack throughput: reprtut's PGD-20 (l_inf) against torchattacks' on the same model and device.

Images per second and the ratio reprtut / torchattacks twice: both in fp32 (the same
arithmetic, so the ratio measures the implementations' overhead), and reprtut in mixed
precision (:func:`reprtut.device.amp_dtype`: bf16 or fp16 on GPUs, bf16 on CPUs with native
bf16) against torchattacks in fp32, its default. The model is the active profile's CIFAR-10
architecture (``recipes.cifar_arch``, or ``arch``) with random weights (speed does not depend
on them); the images are CIFAR-10 test images if the data is at hand, else uniform noise
(``synthetic_data`` in the output says which). On GPUs both run channels_last. Each figure is
the median of ``repeats`` runs after a warm-up, the attacks timed in alternation in one
process, with the device synchronised around each run.
"""

from __future__ import annotations

import torch

from .. import attacks, data, models, recipes
from ..device import amp_dtype, to_device_layout
from .common import Profiled, alternate

EPS, ALPHA, STEPS = 8 / 255, 2 / 255, 20   # Madry et al.'s CIFAR-10 evaluation attack


def images(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """``n`` CIFAR-10 test images and labels (repeated if the mirror has fewer), or uniform
    noise with random labels when the data is not at hand; the flag says which (True: noise)."""
    try:
        ds = data.load("cifar10", "test", n=n, download=False)
        x, y, synthetic = ds.images(device), ds.y.to(device), False
    except (FileNotFoundError, RuntimeError):
        x, y, synthetic = torch.rand(n, 3, 32, 32, device=device), torch.randint(0, 10, (n,), device=device), True
    reps = -(-n // len(x))                                    # repeat a small mirror up to n
    return to_device_layout(x.repeat(reps, 1, 1, 1)[:n], device), y.repeat(reps)[:n], synthetic


def run(device: torch.device, *, batch: int = 256, repeats: int = 5, arch: str | None = None,
        profile: bool = False) -> dict:
    """Images/s of PGD-20 for reprtut (fp32 and mixed precision) and torchattacks (fp32)."""
    import torchattacks

    if batch < 1:
        raise ValueError(f"batch must be positive, got {batch}")
    torch.manual_seed(0)
    default_arch, kwargs = recipes.cifar_arch()
    arch, kwargs = (default_arch, kwargs) if arch is None else (arch, {})
    model = models.build(arch, "cifar10", **kwargs).to(device).eval()
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    x, y, synthetic = images(batch, device)
    dtype = amp_dtype(device)

    def ours(mixed: bool):
        with torch.autocast(device.type, dtype=dtype, enabled=mixed and dtype is not None):
            attacks.pgd(model, x, y, eps=EPS, norm="linf", steps=STEPS, step_size=ALPHA)

    theirs_attack = torchattacks.PGD(model, eps=EPS, alpha=ALPHA, steps=STEPS, random_start=True)

    def theirs():
        theirs_attack(x, y)

    fns = [lambda: ours(False), theirs] + ([lambda: ours(True)] if dtype is not None else [])
    t = alternate(fns, device, repeats)
    result = {"attack": f"PGD-{STEPS} linf eps 8/255", "arch": arch, "batch": batch,
              "repeats": repeats, "synthetic_data": synthetic, "torchattacks_version": torchattacks.__version__,
              "images_per_s": {"reprtut_fp32": batch / t[0], "torchattacks_fp32": batch / t[1]},
              "ratio_fp32": t[1] / t[0], "mixed_dtype": str(dtype).removeprefix("torch.") if dtype else None}
    if dtype is not None:
        result["images_per_s"]["reprtut_mixed"] = batch / t[2]
        result["ratio_mixed_vs_torchattacks_fp32"] = t[1] / t[2]
    if profile:
        prof = Profiled(True, device)
        with prof:
            ours(False)
        result["profile_table_reprtut_fp32"] = prof.table
        prof = Profiled(True, device)
        with prof:
            theirs()
        result["profile_table_torchattacks_fp32"] = prof.table
    return result
