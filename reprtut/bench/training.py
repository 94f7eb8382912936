"""Training throughput: standard and PGD-10 l_inf adversarial training of a CIFAR-10 classifier.

The book's own loop does the work: :func:`reprtut.train.fit` over a
:class:`~reprtut.data.TensorLoader` (data resident on the device, whole-batch crops and flips)
with the ``standard`` and ``pgd`` :class:`~reprtut.methods.Objective` s. The images are
synthetic (uniform uint8 noise with random labels): throughput does not depend on their content,
and the output says so. ``fit`` runs two epochs of ``steps`` batches; the first warms up
(cuDNN autotuning, ``torch.compile``), the second is timed by ``fit`` itself (the device is
synchronised at the end of each epoch, never inside it). The time per step is extrapolated to a
50,000-image epoch.

Arithmetic: ResNet-18 on a 32x32 image costs about 0.56 GMAC = 1.12 GFLOP forward; a training
step costs about 3x the forward pass (forward, and a backward pass twice as long), and each of
PGD's iterations is one more forward and backward pass (3x forward again), so PGD-10 training
costs 3 + 10 * 3 = 33 forwards per image. The forward cost of the architecture actually run is
counted with :class:`torch.utils.flop_counter.FlopCounterMode`; the nominal 0.56 GMAC is kept
beside it for ResNet-18.
"""

from __future__ import annotations

import dataclasses

import torch

from .. import data, methods, models
from ..train import TrainConfig, fit
from .common import Profiled

EPOCH_IMAGES = 50_000                 # a CIFAR-10 training epoch
RESNET18_GMAC = 0.56                  # forward, per 32x32 image
EPS, ALPHA, PGD_STEPS = 8 / 255, 2 / 255, 10   # Madry et al.'s CIFAR-10 l_inf threat model


def forward_flops(model: torch.nn.Module, shape: tuple[int, int, int], device: torch.device) -> float:
    """FLOPs of one forward pass on one image of ``shape`` (C, H, W) (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(2, *shape, device=device)     # 2 images: BatchNorm in train mode needs > 1
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2


def synthetic(n: int, seed: int = 0) -> data.Dataset:
    """``n`` CIFAR-10-shaped images of uniform uint8 noise with uniform random labels."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    y = torch.randint(0, 10, (n,), generator=g)
    return data.Dataset(x, y, data.INFO["cifar10"], "synthetic")


def forwards_per_image(method: str) -> float:
    """Training cost in forward passes: 3 for a step, plus 3 per PGD iteration."""
    return 3.0 + (3.0 * PGD_STEPS if method == "pgd" else 0.0)


def run(device: torch.device, *, arch: str = "resnet18", batch: int = 512, steps: int = 20,
        amp: bool = True, compile: bool = False, profile: bool = False,
        methods_: tuple[str, ...] = ("standard", "pgd")) -> dict:
    """Seconds per 50,000-image epoch and achieved TFLOP/s of each training method."""
    if batch < 2 or steps < 1:
        raise ValueError(f"batch must be >= 2 and steps >= 1, got batch={batch}, steps={steps}")
    for m in methods_:
        if m not in ("standard", "pgd"):
            raise ValueError(f"methods_ must hold 'standard' and/or 'pgd', not {m!r}")
    loader = data.TensorLoader(synthetic(batch * steps), batch, augment=True, drop_last=True,
                               device=device)
    cfg = TrainConfig(epochs=2, batch_size=batch, optimizer="sgd", lr=0.05, schedule="constant",
                      amp=amp, compile=compile)
    flops = None
    out = {"arch": arch, "batch": batch, "timed_steps": steps, "amp": amp, "compile": compile,
           "synthetic_data": True, "epoch_images": EPOCH_IMAGES,
           "nominal_forward_gmac": RESNET18_GMAC if arch == "resnet18" else None, "methods": {}}
    for method in methods_:
        torch.manual_seed(0)
        model = models.build(arch, "cifar10")
        if flops is None:
            flops = forward_flops(model.to(device), (3, 32, 32), device)
        kwargs = {"eps": EPS, "norm": "linf", "steps": PGD_STEPS, "step_size": ALPHA} if method == "pgd" else {}
        objective = methods.build(method, model, **kwargs)
        prof = Profiled(profile, device)
        # fit's first epoch warms up; the profiler, when on, records both epochs.
        with prof:
            history = fit(objective, loader, dataclasses.replace(cfg), progress=False)
        step_s = history["seconds"][1] / steps
        epoch_s = step_s * EPOCH_IMAGES / batch
        flop_per_image = forwards_per_image(method) * flops
        row = {"seconds_per_step": step_s, "seconds_per_epoch": epoch_s,
               "images_per_s": batch / step_s, "forwards_per_image": forwards_per_image(method),
               "achieved_tflops": flop_per_image * batch / step_s / 1e12}
        if prof.table is not None:
            row["profile_table"] = prof.table
        out["methods"][method] = row
    out["forward_gflop_counted"] = flops / 1e9
    return out
