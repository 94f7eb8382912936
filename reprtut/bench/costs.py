"""The arithmetic of a trained model and of an attack, and what it costs on a device.

A training step is counted, not modelled: :func:`step_cost` runs one real step of a
:class:`~reprtut.cache.ModelSpec`'s objective on a batch of 2 random images under
PyTorch's FLOP formulas (:class:`FlopCount`) (2 FLOP per multiply-add, convolutions and
matrix products only), so PGD's inner steps, TRADES' KL term, AFD's three updates, the
VAE-GAN's critic updates and a frozen feature map are all in the count as the method does
them. The count is linear in the batch and is scaled to the recipe's batch. It also counts
the classifier's forward calls: on a GPU, small networks are bound by kernel launches, not
arithmetic, so a step costs at least a few milliseconds per forward and backward pass.

Time on a device is ``FLOP / (peak * efficiency) + passes * seconds_per_pass``. For GPUs the
peaks come from the vendors' data sheets and the efficiency and per-pass time are stated
assumptions (:data:`GPUS`); for the CPU at hand both are measured (:func:`measure_cpu`).
Operations the counter does not see (element-wise work, the low-rank layer's SVD, data
loading) are in the measured CPU rate only in the proportion the timed models have them.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from .. import data as data_mod
from ..cache import ModelSpec, build
from ..device import autocast, default_device
from .common import read_record, write_record

# Training images per dataset when a recipe uses all of them (n_train=None).
TRAIN_SIZES = {"mnist": 60_000, "fashion_mnist": 60_000, "cifar10": 50_000, "svhn": 73_257,
               "celeba": 162_770, **{f"celeba_{t}": 20_000 for t in ("eyeglasses", "smile", "gender", "all")},
               **{f"flanked_mnist_{t}": 60_000 for t in ("left", "centre", "right", "all")}}
COUNT_BATCH = 2   # images per counted step: batch norm in training mode needs more than one


@dataclass(frozen=True)
class Device:
    """A device's arithmetic: dense peaks (TFLOP/s) in mixed precision (fp16 or bf16, what
    :func:`reprtut.device.amp_dtype` trains in) and in fp32, the fraction of the peak a
    training loop sustains, and the seconds a forward and backward pass takes at least."""

    name: str
    amp_tflops: float
    fp32_tflops: float
    efficiency: float
    pass_s: float
    source: str

    def seconds(self, flop: float, passes: float, amp: bool = True) -> float:
        peak = self.amp_tflops if amp else self.fp32_tflops
        return flop / (peak * 1e12 * self.efficiency) + passes * self.pass_s


# Peaks from the vendors' data sheets (dense, no sparsity). Efficiency and per-pass time are
# assumptions, not measurements: 30 % of the tensor-core peak is what a well-fed convolutional
# network on 32x32 images reaches in eager PyTorch with channels_last (the counting of
# a PGD-10 ResNet-18 epoch, 1.3 PFLOP, at "over a minute per epoch" on a T4 is about 30 % of
# its fp16 peak), and 1 ms per forward and backward pass is the launch floor of a network of a
# few dozen kernels (~10 us each, forward and backward) that small batches never leave.
GPUS = {
    # NVIDIA T4 data sheet: 65 TFLOPS fp16 tensor cores, 8.1 TFLOPS fp32 (no bf16: fp16 + scaler).
    "T4": Device("T4", 65.0, 8.1, 0.30, 1.0e-3, "NVIDIA T4 data sheet"),
    # fp32 recipes (amp=False) on Ampere and later: PyTorch lets cuDNN's convolutions use TF32
    # (torch.backends.cudnn.allow_tf32 is True by default), so their peak is the dense TF32 one.
    # NVIDIA L4 data sheet: 242 TFLOPS bf16 with sparsity, 121 dense; TF32 120 with sparsity, 60 dense.
    "L4": Device("L4", 121.0, 60.0, 0.30, 1.0e-3, "NVIDIA L4 data sheet"),
    # NVIDIA A100 data sheet: 312 TFLOPS bf16 dense, 156 TF32 dense (19.5 plain fp32).
    "A100": Device("A100", 312.0, 156.0, 0.30, 1.0e-3, "NVIDIA A100 data sheet"),
    # NVIDIA H100 SXM data sheet: 989 TFLOPS bf16 dense, 494 TF32 dense (67 plain fp32).
    "H100": Device("H100", 989.0, 494.0, 0.30, 1.0e-3, "NVIDIA H100 data sheet (SXM)"),
}


@dataclass(frozen=True)
class StepCost:
    """One training step of a spec, per image of its batch: FLOP, the forward passes of the
    classifier (``passes``, per step), and the memory of the step in MiB: ``fixed_mib`` (fp32
    weights, gradients and two Adam moments of every parameter) and ``image_mib`` (the tensors
    one forward pass of the classifier saves for its backward, per image)."""

    flop: float
    passes: int
    fixed_mib: float
    image_mib: float
    forward_flop: float       # one forward pass of the classifier, one image
    attack_flop: float        # one forward and input-gradient pass of the frozen classifier, one image


def _shape(spec: ModelSpec) -> tuple[int, int, int]:
    return data_mod.INFO[spec.dataset].shape


def _labels(spec: ModelSpec, b: int) -> torch.Tensor:
    classes = len(data_mod.INFO[spec.dataset].classes)
    if spec.method == "multitask":      # one column per task of the dataset
        return torch.randint(classes, (b, max(spec.method_kwargs["tasks"]) + 1))
    return torch.randint(classes, (b,))


def _first_layer(model: nn.Module) -> nn.Module:
    # Every pass through the classifier (or its feature map alone) starts here.
    return next(m for m in model.modules() if not list(m.children()))


class FlopCount(TorchDispatchMode):
    """``with FlopCount() as c: ...`` then ``c.total``: the FLOP of the block, by PyTorch's own
    formulas (:data:`torch.utils.flop_counter.flop_registry`). FlopCounterMode tracks modules
    with hooks that ``torch.autograd.grad`` (every attack's input gradient) does not support;
    this mode counts the same operators without them."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += formula(*args, **kwargs, out_val=out)
        return out


_COUNTED: dict[str, StepCost] = {}
# The counts, kept beside the trained models so that every process of a run (the tests, the
# appendix, the syllabus) counts each recipe once: a step of a ResNet-18 recipe takes seconds
# on a CPU, and the full and colab profiles have dozens. Keyed also by torch's version, whose
# FLOP formulas they are.
COUNTS_FILE = "step-counts.json"


def _per_image(spec: ModelSpec) -> StepCost:
    # Counted on the device at hand: a GPU counts a ResNet-18's PGD step in milliseconds,
    # where a CPU takes seconds; the count does not depend on where it is made.
    device = default_device()
    torch.manual_seed(0)
    objective = build(spec).to(device)
    objective.train()
    b = COUNT_BATCH
    x, y = torch.rand(b, *_shape(spec), device=device), _labels(spec, b).to(device)

    def update(_name, loss):
        objective.zero_grad(set_to_none=True)
        loss.backward()

    calls = [0]
    handle = _first_layer(objective.model).register_forward_hook(
        lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        with FlopCount() as counter:
            objective.step(x, y, update)
    finally:
        handle.remove()

    model = objective.model.eval()
    saved = [0]

    def pack(t):
        saved[0] += t.numel() * t.element_size()
        return t

    requires = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with FlopCount() as fwd, torch.no_grad():
            model(x)
        xg = x.clone().requires_grad_(True)
        with FlopCount() as att:
            with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                out = model(xg)
            out.float().sum().backward()
    finally:
        for p, r in zip(model.parameters(), requires):
            p.requires_grad_(r)
    params = sum(p.numel() for p in objective.parameters()) * 4 * 4
    return StepCost(counter.total / b, calls[0], params / 2**20, saved[0] / b / 2**20,
                    fwd.total / b, att.total / b)


def per_image(spec: ModelSpec) -> StepCost:
    """The step of ``spec`` counted for ONE image (FLOP and saved bytes divided by the
    counted batch; passes and the parameters' memory are per step)."""
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"spec must be a ModelSpec, got {type(spec).__name__}")
    # What the count depends on: not the name, data size, epochs or batch size.
    key = json.dumps([torch.__version__, spec.dataset, spec.arch, spec.arch_kwargs, spec.method,
                      spec.method_kwargs, spec.freeze], sort_keys=True, default=str)
    if key not in _COUNTED:
        stored = read_record(COUNTS_FILE).get(key)
        if stored is not None:
            _COUNTED[key] = StepCost(**stored)
        else:
            _COUNTED[key] = _per_image(spec)
            write_record(COUNTS_FILE, {**read_record(COUNTS_FILE), key: asdict(_COUNTED[key])})
    return _COUNTED[key]


@dataclass(frozen=True)
class Work:
    """Arithmetic and launch-bound passes of a piece of a page's work, by precision."""

    flop: float = 0.0
    passes: float = 0.0
    fp32_flop: float = 0.0     # the part that trains in fp32 on GPUs too (amp=False recipes)
    fp32_passes: float = 0.0
    peak_mib: float = 0.0

    def __add__(self, other: "Work") -> "Work":
        return Work(self.flop + other.flop, self.passes + other.passes,
                    self.fp32_flop + other.fp32_flop, self.fp32_passes + other.fp32_passes,
                    max(self.peak_mib, other.peak_mib))

    @property
    def total_flop(self) -> float:
        return self.flop + self.fp32_flop

    def seconds(self, device: Device) -> float:
        return device.seconds(self.flop, self.passes) + device.seconds(self.fp32_flop, self.fp32_passes, amp=False)


def steps_of(spec: ModelSpec) -> int:
    """Optimizer steps of the recipe: epochs x full batches (the loader drops the last one)."""
    n = spec.n_train if spec.n_train is not None else TRAIN_SIZES[spec.dataset]
    return spec.train.epochs * (n // spec.train.batch_size)


def training(spec: ModelSpec) -> Work:
    """The work of training ``spec`` alone (not its ``init``): every step at the recipe's
    batch, and the per-epoch evaluation of ``n_eval`` test images (a forward pass each)."""
    c = per_image(spec)
    steps = steps_of(spec)
    flop = steps * spec.train.batch_size * c.flop
    flop += spec.train.epochs * spec.n_eval * c.forward_flop
    passes = steps * c.passes
    peak = c.fixed_mib + c.image_mib * spec.train.batch_size
    if spec.train.amp:
        return Work(flop=flop, passes=passes, peak_mib=peak)
    return Work(fp32_flop=flop, fp32_passes=passes, peak_mib=peak)


def attack(spec: ModelSpec, images: int, passes: int, batch: int = 500) -> Work:
    """The work of ``passes`` forward and input-gradient passes on ``images`` test images of
    the frozen classifier of ``spec`` (PGD-K: K passes; a sweep: the sum over its budgets),
    in batches of ``batch`` for the launch floor."""
    c = per_image(spec)
    return Work(flop=images * passes * c.attack_flop, passes=passes * math.ceil(images / batch))


def measure_cpu(specs: list[ModelSpec], steps: int = 3) -> tuple[float, float]:
    """(FLOP/s, seconds per pass) of this CPU, fitted to ``steps`` timed training steps of
    each spec (after one untimed step) by least squares on t = FLOP / rate + passes * s.

    Timed in CPU time of this process (``time.process_time``), not wall time: on a shared
    machine a niced measurement gets a fraction of the cores, but while it runs, it runs at
    the CPU's speed, so the rate is that of the process's threads when they have the cores
    to themselves (cache and memory contention from neighbours still slow it somewhat). A
    few steps per model: a short measurement, good to tens of percent. The steps run in the
    precision the training loop uses here (:func:`reprtut.device.amp_dtype`).
    """
    rows = []
    for spec in specs:
        c = per_image(spec)
        torch.manual_seed(0)
        objective = build(spec).train()
        opt = torch.optim.SGD([p for p in objective.parameters() if p.requires_grad], lr=1e-3)
        b = spec.train.batch_size
        x = torch.rand(b, *_shape(spec))
        y = _labels(spec, b)

        def update(_name, loss):
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        with autocast(torch.device("cpu")):
            objective.step(x, y, update)
            t0 = time.process_time()
            for _ in range(steps):
                objective.step(x, y, update)
        rows.append((c.flop * b, c.passes, (time.process_time() - t0) / steps))
    # Least squares for (1/rate, s) with both >= 0.
    a = torch.tensor([[f, p] for f, p, _ in rows], dtype=torch.float64)
    t = torch.tensor([r[2] for r in rows], dtype=torch.float64)
    sol = torch.linalg.lstsq(a, t[:, None]).solution.flatten()
    inv_rate, per_pass = float(sol[0]), float(sol[1])
    if inv_rate <= 0 or per_pass < 0:     # an ill-posed fit: the arithmetic alone
        inv_rate, per_pass = float(t.sum() / a[:, 0].sum()), 0.0
    return 1.0 / inv_rate, per_pass
