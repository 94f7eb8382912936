"""Devices and numerical precision, chosen once for every loop in the package."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

import torch

# True inside :func:`autocast`: the caller (the training loop) has chosen the precision, and
# :func:`search_autocast` keeps it.
_chosen: ContextVar[bool] = ContextVar("reprtut_precision_chosen", default=False)


def default_device() -> torch.device:
    """The fastest available device: CUDA, then Apple MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def native_bf16_cpu() -> bool:
    """Whether this CPU computes in bf16 natively (AVX512-BF16 or AMX tiles).

    There bf16 convolutions run about twice as fast as fp32 (1.9x for a training step of the
    quick profile's CIFAR-10 CNN on a 2-core AMD EPYC, one thread); CPUs without these
    instructions emulate bf16 and gain nothing.
    """
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, check, lambda: False)() for check in checks)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype for training and attacks on ``device``, or ``None`` for full fp32.

    bf16 on GPUs of compute capability 8.0 and above (A100, H100, RTX 30xx+); fp16 with a
    gradient scaler on older GPUs such as Colab's T4, whose bf16 is emulated and slow; bf16
    on CPUs with native bf16 arithmetic (:func:`native_bf16_cpu`); fp32 on other CPUs and on
    MPS, where autocast brings no speed. Weights, optimizer states and losses stay fp32.
    """
    if device.type == "cpu":
        return torch.bfloat16 if native_bf16_cpu() else None
    if device.type != "cuda":
        return None
    major, _ = torch.cuda.get_device_capability(device)
    return torch.bfloat16 if major >= 8 else torch.float16


@contextlib.contextmanager
def autocast(device: torch.device | str | None = None, enabled: bool = True):
    """Mixed-precision context for ``device`` (fp32 where :func:`amp_dtype` is ``None`` or
    ``enabled`` is false). Inside it the precision is the caller's: :func:`search_autocast`
    keeps it, so a training step with ``amp=False`` attacks its batches in fp32."""
    device = torch.device(device) if device is not None else default_device()
    dtype = amp_dtype(device) if enabled else None
    token = _chosen.set(True)
    try:
        with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
            yield
    finally:
        _chosen.reset(token)


def search_autocast(device: torch.device | str):
    """The precision of an attack's search on ``device``: bf16 autocast where models train in
    bf16 (:func:`amp_dtype`), fp32 elsewhere, and the caller's inside :func:`autocast`.

    Only the search runs in it: the gradient steps of PGD and its variants, whose direction
    needs no more than bf16's three digits. Every verdict (accuracy, success, a norm, a
    representation) is computed in fp32 on the images the search returns, and the
    minimum-perturbation attacks (DeepFool, C&W, DDN and PGD with early stopping), which
    place points just past the boundary, stay in fp32, as do the representation
    optimisations, whose iterates are the results. Never fp16: its range flushes small input
    gradients to zero, which would look like gradient masking.
    """
    device = torch.device(device)
    if _chosen.get() or amp_dtype(device) != torch.bfloat16:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def grad_scaler(device: torch.device, enabled: bool = True) -> torch.amp.GradScaler:
    """A gradient scaler that is active only for fp16 autocast (bf16 and fp32 need none)."""
    active = enabled and amp_dtype(device) == torch.float16
    return torch.amp.GradScaler(device.type, enabled=active)


def to_device_layout(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Move an image batch (B, C, H, W) to ``device``, channels_last on CUDA (faster convs)."""
    x = x.to(device, non_blocking=True)
    if device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x
