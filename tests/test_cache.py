"""The model cache: keys, train-once semantics, and profiles."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch

import reprtut as rt
from reprtut.cache import ModelSpec
from reprtut.train import TrainConfig


def _spec(**kw):
    base = dict(name="tiny", dataset="mnist", arch="mnist_cnn", arch_kwargs={"width": 4, "hidden": 16},
                n_train=256, n_eval=100, train=TrainConfig(epochs=1, batch_size=64, lr=0.05))
    base.update(kw)
    return ModelSpec(**base)


def test_key_depends_on_spec_and_profile(monkeypatch):
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    a = _spec().key()
    assert a == _spec().key()
    assert a != _spec(train=TrainConfig(epochs=2, batch_size=64, lr=0.05)).key()
    assert a != _spec(method="pgd", method_kwargs={"eps": 0.1}).key()
    monkeypatch.setenv("REPRTUT_PROFILE", "full")
    assert a != _spec().key()


def test_get_trains_once_then_loads(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    first = rt.cache.get(_spec(), device="cpu", progress=False)
    assert first.path.exists() and first.path.parent == tmp_path
    assert not list(tmp_path.glob("*.ckpt")), "the resume checkpoint is removed once training ends"

    def no_training(*args, **kwargs):
        raise AssertionError("a cached model was trained again")

    monkeypatch.setattr(rt.cache, "fit", no_training)
    second = rt.cache.get(_spec(), device="cpu", progress=False)
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values()):
        assert (a == b).all()
    assert second.history == first.history and not second.model.training


def test_the_callers_random_stream_does_not_depend_on_the_cache(monkeypatch, tmp_path):
    """After get() the caller draws the same random numbers whether the model was trained in
    the call or loaded: a page run cold and the same page run warm show the same numbers."""
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    spec = _spec(method="pgd", method_kwargs={"eps": 0.1, "steps": 1, "step_size": 0.1})
    draws = []
    for _ in range(2):  # trained, then loaded
        rt.cache.get(spec, device="cpu", progress=False)
        draws.append(torch.rand(8))
    assert torch.equal(*draws)
    assert len(list(tmp_path.glob("*.pt"))) == 1


def test_unknown_parts_are_rejected(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="unknown architecture"):
        rt.cache.get(_spec(arch="vgg99"), device="cpu")
    with pytest.raises(ValueError, match="unknown method"):
        rt.cache.get(_spec(method="magic"), device="cpu")


def test_profiles(monkeypatch):
    monkeypatch.setenv("REPRTUT_PROFILE", "paper")
    assert rt.profiles.pick(quick=1, full=2, paper=3) == 3
    assert rt.profiles.pick(quick=1, full=2) == 2
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    assert rt.profiles.pick(quick=1, full=2, paper=3) == 1
    monkeypatch.setenv("REPRTUT_PROFILE", "huge")
    with pytest.raises(ValueError, match="not a profile"):
        rt.profiles.name()


# ------------------------------------------------------------------ integrity, locks, failures

def _count_training(monkeypatch):
    """Wrap the cache's call to fit so a test can count training runs."""
    runs = []
    real_fit = rt.cache.fit

    def counted(*args, **kwargs):
        runs.append(1)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(rt.cache, "fit", counted)
    return runs


def _same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


@pytest.mark.parametrize("damage", ["flip one bit", "truncate", "drop the checksum"])
def test_a_damaged_file_is_reported_and_retrained_never_served(monkeypatch, tmp_path, damage):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    runs = _count_training(monkeypatch)
    first = rt.cache.get(_spec(), device="cpu", progress=False)
    assert runs == [1] and rt.cache.checksum_path(first.path).is_file()
    blob = bytearray(first.path.read_bytes())
    if damage == "flip one bit":  # a weight's byte near the end, where the tensors are stored
        blob[len(blob) * 3 // 4] ^= 0x10
        first.path.write_bytes(bytes(blob))
    elif damage == "truncate":
        first.path.write_bytes(bytes(blob[: len(blob) // 2]))
    else:
        rt.cache.checksum_path(first.path).unlink()
    with pytest.warns(rt.cache.CacheWarning, match=re.escape(str(first.path))):
        second = rt.cache.get(_spec(), device="cpu", progress=False)
    assert runs == [1, 1], "the damaged model was trained again"
    assert _same_weights(first, second), "retraining gives the original model back (same seed)"
    assert rt.cache.sha256_of(second.path) == rt.cache.checksum_path(second.path).read_text().strip()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the repaired file is served without complaint
        rt.cache.get(_spec(), device="cpu", progress=False)
    assert runs == [1, 1]


def test_the_checksum_check_can_fail(monkeypatch, tmp_path):
    """Without verification a flipped bit would be served: the damaged weights differ."""
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    first = rt.cache.get(_spec(), device="cpu", progress=False)
    blob = bytearray(first.path.read_bytes())
    blob[len(blob) * 3 // 4] ^= 0x10
    first.path.write_bytes(bytes(blob))
    state = rt.train.load_checkpoint(first.path)  # the unverified loader reads it happily
    clean = first.objective.state_dict()
    assert any(not torch.equal(state["objective"][k], clean[k]) for k in clean)


CONCURRENT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    import reprtut as rt
    from test_cache import _spec
    real_fit = rt.cache.fit
    def counted(*args, **kwargs):
        with open({marker!r}, "a") as f:
            f.write(str(os.getpid()) + "\\n")
        return real_fit(*args, **kwargs)
    rt.cache.fit = counted
    trained = rt.cache.get(_spec(), device="cpu", progress=False)
    print(float(trained.model.head.weight.sum()))
""")


def test_concurrent_requests_train_once(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path / "models"))
    marker = tmp_path / "trainings.txt"
    script = CONCURRENT.format(tests=str(Path(__file__).parent), marker=str(marker))
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    assert len(marker.read_text().split()) == 1, "the model was trained by both processes"
    assert outs[0][0] == outs[1][0], "both got the same weights"


def test_orphaned_temporary_files_are_removed(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    orphan = tmp_path / f".tiny-000.pt.{dead}.tmp"
    live = tmp_path / f".tiny-001.pt.{os.getppid()}.tmp"  # a running process's file is kept
    orphan.write_bytes(b"half a checkpoint")
    live.write_bytes(b"being written")
    rt.cache.get(_spec(), device="cpu", progress=False)
    assert not orphan.exists() and live.exists()


def test_a_diverging_run_raises_and_stores_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    spec = _spec(train=TrainConfig(epochs=1, batch_size=64, lr=1e30, optimizer="sgd"))
    with pytest.raises(rt.train.Diverged, match="lr"):
        rt.cache.get(spec, device="cpu", progress=False)
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".lock")], "nothing stored"
    with pytest.raises(ValueError, match="lr"):  # an infinite lr is refused before training
        TrainConfig(lr=math.inf)


def test_an_epoch_without_steps_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    with pytest.raises(ValueError, match="n_train=40 is smaller than batch_size=64"):
        _spec(n_train=40)
    objective = rt.methods.build("standard", rt.models.mnist_cnn(width=4, hidden=16))
    loader = rt.data.TensorLoader(rt.data.load("mnist", "train", n=40), 64, drop_last=True, device="cpu")
    with pytest.raises(ValueError, match="zero steps.*batch_size=64"):
        rt.train.fit(objective, loader, TrainConfig(epochs=1, batch_size=64), progress=False)


# ------------------------------------------------------------------ specs that start from others

def test_init_is_trained_first_copied_and_frozen(monkeypatch, tmp_path):
    """A spec with init=base, load and freeze of "features" gets base's feature map, frozen
    (no gradients, eval mode while the rest trains), and a head of its own."""
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    base = _spec(name="base")
    child = _spec(name="child", init=base, load=("features",), freeze=("features",))
    assert child.key() != _spec(name="child", init=_spec(name="other"), load=("features",),
                                freeze=("features",)).key(), "the key covers the nested init"
    out = rt.cache.get(child, device="cpu", progress=False)
    src = rt.cache.get(base, device="cpu", progress=False).model
    assert all(torch.equal(a, b) for a, b in zip(src.features.state_dict().values(),
                                                 out.model.features.state_dict().values()))
    assert not torch.equal(src.head.weight, out.model.head.weight)
    assert not any(p.requires_grad for p in out.model.features.parameters())
    assert all(p.requires_grad for p in out.model.head.parameters())
    out.objective.train()
    assert not any(m.training for m in out.model.features.modules()) and out.model.head.training
    with rt.nn.frozen(out.model):  # a frozen block gives each layer its own mode back
        pass
    assert not out.model.features.training and out.model.head.training


def test_init_is_resolved_before_the_spec_takes_its_lock(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    held, nested = [], []
    real_lock = rt.cache.FileLock

    class Recording:
        def __init__(self, path):
            self.path, self.lock = path, real_lock(path)

        def __enter__(self):
            if held:
                nested.append((held[-1], self.path))
            held.append(self.path)
            return self.lock.__enter__()

        def __exit__(self, *exc):
            held.pop()
            return self.lock.__exit__(*exc)

    monkeypatch.setattr(rt.cache, "FileLock", Recording)
    child = _spec(name="child", init=_spec(name="base"))   # the whole model is copied
    out = rt.cache.get(child, device="cpu", progress=False)
    assert nested == [], f"a lock was taken while another was held: {nested}"
    assert len(out.history["test_acc"]) == 1


def test_a_cached_model_names_its_starting_points_in_the_ledger(monkeypatch, tmp_path):
    """Loading a cached child still needs its base on a cold run: the ledger says so, so that
    the time table charges the base's training to whoever asked for the child."""
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(rt.ledger, "requester", lambda: "trainer")
    base = _spec(name="base")
    child = _spec(name="child", init=base)
    rt.cache.get(child, device="cpu", progress=False)
    monkeypatch.setattr(rt.ledger, "requester", lambda: "book/reader.md")
    rt.cache.get(child, device="cpu", progress=False)
    rows = [r for r in rt.ledger.read(tmp_path) if r["requester"] == "book/reader.md"]
    assert {(r["name"], r["event"]) for r in rows} == {("child", "load"), ("base", "needs")}
    assert next(r for r in rows if r["name"] == "base")["key"] == base.key()


def test_the_ledger_counts_the_wait_for_a_model_another_process_holds(monkeypatch, tmp_path):
    """A request that waits on the lock while another process trains the model records the
    wait apart from its own seconds: the time table charges it to the training, not to the
    waiting page."""
    import threading
    from filelock import FileLock

    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    trained = rt.cache.get(_spec(), device="cpu", progress=False)
    held, release = threading.Event(), threading.Event()

    def trainer():  # a second holder of the same file lock, as another process would be
        with FileLock(str(trained.path) + ".lock"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=trainer)
    thread.start()
    held.wait(10)
    threading.Timer(1.0, release.set).start()
    rt.cache.get(_spec(), device="cpu", progress=False)
    thread.join()
    first, load = rt.ledger.read(tmp_path)
    assert (first["event"], load["event"]) == ("train", "load")
    assert first["waited"] < 0.5 and 0.5 < load["waited"] < 10 and load["seconds"] < 5


def test_init_weights_must_fit(monkeypatch, tmp_path):
    monkeypatch.setenv(rt.cache.CACHE_ENV, str(tmp_path))
    wide = _spec(name="wide", arch_kwargs={"width": 8, "hidden": 16})
    with pytest.raises(ValueError, match="do not fit"):
        rt.cache.get(_spec(name="child", init=wide), device="cpu", progress=False)
    with pytest.raises(ValueError, match="name no parameters"):
        rt.cache.build(_spec(freeze=("feature",)))
    with pytest.raises(ValueError, match="init is None"):
        _spec(load=("features",))
    with pytest.raises(TypeError, match="ModelSpec"):
        _spec(init={"name": "base"})
