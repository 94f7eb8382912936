"""The precision of older GPUs (Colab's T4): fp16 with a gradient scaler below compute
capability 8.0, bf16 without one from 8.0 on (and on CPUs with native bf16), and a scaler
whose state survives a resume; the steps of an attack in bf16 exactly where models train in
bf16 (outside a training step, whose precision holds), its verdicts in fp32.

No GPU is needed: the capability is mocked, and the scaler is exercised on the CPU (torch's
GradScaler runs on "cpu" since 2.3)."""

from __future__ import annotations

import pytest
import torch

import reprtut as rt
import reprtut.train as train_mod
from reprtut.device import amp_dtype, grad_scaler
from reprtut.train import TrainConfig, fit, load_checkpoint

CUDA = torch.device("cuda")


@pytest.mark.parametrize("capability, expected", [
    ((6, 0), torch.float16),    # P100
    ((7, 5), torch.float16),    # T4
    ((8, 0), torch.bfloat16),   # A100
    ((8, 9), torch.bfloat16),   # L4
    ((9, 0), torch.bfloat16),   # H100, H200
])
def test_amp_dtype_is_fp16_below_capability_8_and_bf16_from_it(monkeypatch, capability, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert amp_dtype(CUDA) == expected


@pytest.mark.parametrize("avx512_bf16, amx, expected", [
    (False, False, None),             # emulated bf16 (AVX2, or AVX512 without BF16): fp32
    (True, False, torch.bfloat16),    # AVX512-BF16, e.g. AMD EPYC Zen 4
    (False, True, torch.bfloat16),    # AMX tiles, e.g. Intel Sapphire Rapids
])
def test_amp_dtype_on_cpu_is_bf16_only_where_it_is_native(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert amp_dtype(torch.device("cpu")) == expected, "never the mocked T4's fp16 on a CPU"


class _Spy:
    """Stands in for torch.amp.GradScaler and records how it was asked to be built (a real
    CUDA scaler would disable itself on a machine without CUDA)."""

    def __init__(self, device="cuda", enabled=True, **kwargs):
        self.device, self.enabled = device, enabled


@pytest.mark.parametrize("capability, enabled", [((7, 5), True), ((8, 0), False), ((9, 0), False)])
def test_grad_scaler_is_enabled_only_for_fp16(monkeypatch, capability, enabled):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(torch.amp, "GradScaler", _Spy)
    scaler = grad_scaler(CUDA)
    assert (scaler.device, scaler.enabled) == ("cuda", enabled)
    assert grad_scaler(CUDA, enabled=False).enabled is False, "amp=False turns the scaler off"
    assert grad_scaler(torch.device("cpu")).enabled is False, "no scaler on CPUs (fp32 or bf16)"


# --- the scaler's state through a checkpoint ---------------------------------------------

def _run(tmp_path, monkeypatch, stop_at_epoch: int | None = None, name: str = "run.ckpt"):
    """Three epochs of a small MNIST run whose loop holds an *enabled* CPU GradScaler that
    starts at scale 1 and doubles every 3 clean steps, so its state changes every epoch.
    Returns (objective, the scaler fit used, checkpoint path)."""
    made = []

    def enabled_scaler(device, enabled=True):
        made.append(torch.amp.GradScaler("cpu", init_scale=1.0, growth_interval=3))
        return made[-1]

    monkeypatch.setattr(train_mod, "grad_scaler", enabled_scaler)
    torch.manual_seed(0)
    objective = rt.methods.build("standard", rt.models.mnist_cnn(width=4, hidden=32))
    loader = rt.data.TensorLoader(rt.data.load("mnist", "train", n=640), 64, device="cpu")
    cfg = TrainConfig(epochs=3, optimizer="sgd", lr=0.05, schedule="onecycle")
    ckpt = tmp_path / name

    class Stop(Exception):
        pass

    def on_step(epoch, step):
        if epoch == stop_at_epoch:
            raise Stop

    try:
        fit(objective, loader, cfg, checkpoint=ckpt, progress=False, on_step=on_step)
    except Stop:
        pass
    return objective, made[-1], ckpt


def _state(scaler):
    s = scaler.state_dict()
    return s["scale"], s["_growth_tracker"]


def test_grad_scaler_state_survives_a_checkpoint_and_resume(tmp_path, monkeypatch):
    reference, ref_scaler, _ = _run(tmp_path, monkeypatch, name="ref.ckpt")
    assert ref_scaler.is_enabled() and ref_scaler.get_scale() > 1.0, "the scaler grew"

    _, stopped_scaler, ckpt = _run(tmp_path, monkeypatch, stop_at_epoch=2)
    saved = load_checkpoint(ckpt)
    assert saved["epoch"] == 2
    assert saved["scaler"]["scale"] > 1.0, "the checkpoint holds the grown scale, not the initial one"

    resumed, resumed_scaler, _ = _run(tmp_path, monkeypatch)   # resumes from epoch 2
    assert _state(resumed_scaler) == _state(ref_scaler), "scale and growth tracker as uninterrupted"
    for (name, a), b in zip(reference.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), f"{name} differs after resuming"


def test_the_resume_check_fails_when_the_scaler_is_not_restored(tmp_path, monkeypatch):
    """The test above can fail: a loop that forgot the scaler's state would end elsewhere."""
    _, ref_scaler, _ = _run(tmp_path, monkeypatch, name="ref.ckpt")
    _run(tmp_path, monkeypatch, stop_at_epoch=2)
    monkeypatch.setattr(torch.amp.GradScaler, "load_state_dict", lambda self, state: None)
    _, forgetful, _ = _run(tmp_path, monkeypatch)
    assert _state(forgetful) != _state(ref_scaler)


# --- the training loop on a T4: fp16 autocast with an enabled scaler ----------------------

@pytest.mark.parametrize("capability, dtype, scaled", [((7, 5), torch.float16, True),
                                                      ((8, 0), torch.bfloat16, False)])
def test_the_loop_trains_in_the_precision_of_the_mocked_gpu(monkeypatch, capability, dtype, scaled):
    """The CPU stands in for a GPU of the mocked compute capability: on a T4 (7.5) ``fit``
    runs its forward passes in fp16 and steps through an enabled GradScaler, and still
    trains; from 8.0 on it runs in bf16 with the scaler off."""
    real_amp_dtype = rt.device.amp_dtype
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    monkeypatch.setattr(rt.device, "amp_dtype",
                        lambda device: real_amp_dtype(CUDA if device.type == "cpu" else device))
    scalers, real_grad_scaler = [], train_mod.grad_scaler
    monkeypatch.setattr(train_mod, "grad_scaler",
                        lambda device, enabled=True: scalers.append(real_grad_scaler(device, enabled)) or scalers[-1])
    torch.manual_seed(0)
    model = rt.models.mnist_cnn(width=4, hidden=32)
    seen = set()
    model.head.register_forward_hook(lambda module, args, out: seen.add(out.dtype))
    objective = rt.methods.build("standard", model)
    before = [p.detach().clone() for p in model.parameters()]
    loader = rt.data.TensorLoader(rt.data.load("mnist", "train", n=384), 64, device="cpu")
    history = fit(objective, loader, TrainConfig(epochs=2, optimizer="sgd", lr=0.05), progress=False)
    assert seen == {dtype}, f"the forward passes ran in {seen}"
    assert scalers[-1].is_enabled() is scaled
    if scaled:  # every step's loss was scaled, and no fp16 gradient overflowed
        assert scalers[-1].state_dict()["_growth_tracker"] == 2 * len(loader)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters())), "it trained"
    assert history["train_loss"][-1] < history["train_loss"][0]


@pytest.mark.parametrize("native, shown", [(True, "training and attack steps in bf16 autocast"),
                                           (False, "training in fp32")])
def test_a_chapter_banner_names_the_training_precision(monkeypatch, native, shown):
    from reprtut import device, profiles
    monkeypatch.setattr(device, "default_device", lambda: torch.device("cpu"))
    monkeypatch.setattr(device, "native_bf16_cpu", lambda: native)
    assert shown in profiles.describe()


# --- the precision of an attack's steps and of its verdict ------------------------------

def _head_dtypes(model):
    seen = []
    model.head.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    return seen


def _batch():
    torch.manual_seed(0)
    return torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8,))


@pytest.mark.parametrize("native, dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_pgd_steps_run_in_bf16_where_training_does_and_the_verdict_in_fp32(monkeypatch, native, dtype):
    monkeypatch.setattr(rt.device, "native_bf16_cpu", lambda: native)
    model = rt.models.mnist_cnn(width=4, hidden=32)
    seen = _head_dtypes(model)
    x, y = _batch()
    x_adv = rt.attacks.pgd(model, x, y, eps=0.1, steps=3)
    assert set(seen) == {dtype} and len(seen) == 3, f"the steps ran in {seen}"
    assert x_adv.dtype == torch.float32, "images stay fp32"
    seen.clear()
    rt.evaluate.accuracy(model, x_adv, y)
    rt.evaluate.accuracy_over_iterations(model, x, y, eps=0.1, steps=2, step_size=0.05)
    assert set(seen) - {dtype} == {torch.float32} or not native, "verdicts in fp32"
    assert seen[-3:] == [torch.float32] * 3, "each iterate's label is read in fp32"


def test_minimum_perturbation_attacks_stay_in_fp32(monkeypatch):
    monkeypatch.setattr(rt.device, "native_bf16_cpu", lambda: True)
    model = rt.models.mnist_cnn(width=4, hidden=32)
    seen = _head_dtypes(model)
    x, y = _batch()
    rt.attacks.deepfool(model, x, y, steps=2)
    rt.attacks.cw_l2(model, x, y, steps=2)
    rt.attacks.iter_fgsm(model, x, y, eps=0.1, steps=2, early_stop=True)
    assert set(seen) == {torch.float32}


def test_representation_optimisations_stay_in_fp32(monkeypatch):
    """An inversion's iterate is the image shown: fp32, so that inverting R(x) from x itself
    stays at x."""
    monkeypatch.setattr(rt.device, "native_bf16_cpu", lambda: True)
    model = rt.models.mnist_cnn(width=4, hidden=32)
    seen = []
    model.features.register_forward_hook(lambda module, args, out: seen.append(out.dtype))
    x, _ = _batch()
    r_target = rt.representation.representation(model, x[2:4])
    rt.representation.invert(model, x[:2], r_target, eps=1.0, steps=2, step_size=0.1)
    assert set(seen) == {torch.float32}


def test_models_trained_in_fp16_take_their_attack_steps_in_fp32(monkeypatch):
    """On a T4 (fp16 autocast) an attack's steps stay in fp32: fp16 flushes small input
    gradients to zero, which would look like gradient masking."""
    real_amp_dtype = rt.device.amp_dtype
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(rt.device, "amp_dtype",
                        lambda device: real_amp_dtype(CUDA if device.type == "cpu" else device))
    assert rt.device.amp_dtype(torch.device("cpu")) == torch.float16, "the mock stands"
    model = rt.models.mnist_cnn(width=4, hidden=32)
    seen = _head_dtypes(model)
    rt.attacks.pgd(model, *_batch(), eps=0.1, steps=2)
    assert set(seen) == {torch.float32}


@pytest.mark.parametrize("amp, dtype", [(True, torch.bfloat16), (False, torch.float32)])
def test_a_training_step_attacks_in_its_own_precision(monkeypatch, amp, dtype):
    """Inside the training loop's precision (``TrainConfig.amp``) the attack of a batch keeps
    it: ``amp=False`` trains adversarially in fp32 even where attack steps are bf16."""
    monkeypatch.setattr(rt.device, "native_bf16_cpu", lambda: True)
    model = rt.models.mnist_cnn(width=4, hidden=32)
    seen = _head_dtypes(model)
    with rt.device.autocast(torch.device("cpu"), amp):
        rt.attacks.Threat(eps=0.1, steps=2).perturb(model, *_batch())
    assert set(seen) == {dtype}


# ------------------------------------------------------------------ layout

@pytest.mark.parametrize("arch, dataset, kwargs", [("small_cnn", "cifar10", {"width": 8}),
                                                   ("mnist_cnn", "mnist", {"width": 4, "hidden": 16})])
def test_classifiers_compute_channels_last_and_return_plain_input_gradients(arch, dataset, kwargs):
    """Activations and convolution weights are channels-last (the fast layout on CPUs and GPUs);
    the gradient with respect to a plain input is plain, as attacks and losses expect, and
    the logits are those of the same network in the default layout."""
    model = rt.models.build(arch, dataset, **kwargs).eval()
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs)
    c = rt.data.INFO[dataset].shape[0]
    x = torch.rand(3, c, 32 if c == 3 else 28, 32 if c == 3 else 28, requires_grad=True)
    seen = []
    hook = model.features[1].register_forward_hook(lambda _m, _i, out: seen.append(out))
    logits = model(x)
    hook.remove()
    assert seen[0].is_contiguous(memory_format=torch.channels_last)  # the first convolution's
    (grad,) = torch.autograd.grad(logits.sum(), x)
    assert grad.is_contiguous() and not (c > 1 and grad.is_contiguous(memory_format=torch.channels_last))
    # The same computation in the default layout, layer by layer after the normalisation.
    h = (x - model.features[0].mean) / model.features[0].std
    for layer in list(model.features)[1:]:
        if isinstance(layer, torch.nn.Conv2d):
            h = torch.nn.functional.conv2d(h, layer.weight.contiguous(), layer.bias, layer.stride, layer.padding)
        else:
            h = layer(h.contiguous())
    torch.testing.assert_close(logits, model.head(h), rtol=1e-4, atol=1e-5)
