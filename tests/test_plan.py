"""The cost model: it covers every page of the book, gives finite positive numbers, counts a
layer's FLOP as by hand and counts PGD's inner steps; the calibration reads recorded times."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

from reprtut import recipes
from reprtut.bench import calibration, costs, plan

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def stated_cpu(monkeypatch):
    # A stated CPU speed: the test measures nothing and stores nothing in the model cache.
    monkeypatch.setenv("REPRTUT_CPU_GFLOPS", "40")
    monkeypatch.setenv("REPRTUT_CPU_PASS_MS", "10")
    monkeypatch.setattr(plan, "_CPU", {})


def test_the_plan_covers_every_page_of_the_toc():
    files = re.findall(r"file:\s*book/(\S+)", (ROOT / "_toc.yml").read_text())
    assert files, "no pages read from _toc.yml"
    assert set(files) == set(plan.PAGES) | (set(plan.PAGES_WITHOUT_WORK) - {"intro"})


def test_every_page_has_finite_positive_costs_in_the_quick_profile():
    rows = plan.table("quick")
    assert [r["page"] for r in rows] == list(plan.PAGES)
    for r in rows:
        numbers = [r["tflop"], r["train_tflop"], r["peak_mib"], *(r[k] for k in r if k.startswith("min_"))]
        assert all(math.isfinite(v) and v > 0 for v in numbers), r
        assert r["models"] >= 1, r
        assert r["min_CPU"] > r["min_T4"] > r["min_H100"], "slower devices take longer"


def test_a_cuda_device_defaults_to_the_colab_profile(monkeypatch):
    from reprtut import profiles
    monkeypatch.delenv("REPRTUT_PROFILE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert profiles.name() == profiles.GPU_DEFAULT == "colab"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert profiles.name() == "quick"


def test_the_gpu_default_finishes_every_page_in_15_minutes_on_a_t4():
    """The colab profile is sized by the cost model: every page, cold, within 15 minutes on a
    T4 (the free Colab GPU), and below the full profile wherever full is over that."""
    colab = {r["page"]: r["min_T4"] for r in plan.table("colab")}
    full = {r["page"]: r["min_T4"] for r in plan.table("full")}
    over = {page: round(m, 1) for page, m in colab.items() if m > 15}
    assert not over, f"pages over 15 T4 minutes in the colab profile: {over}"
    assert all(colab[page] < full[page] for page in full if full[page] > 15)


def test_a_linear_layer_is_counted_as_by_hand():
    layer = torch.nn.Linear(12, 5)
    x = torch.rand(4, 12, requires_grad=True)
    with costs.FlopCount() as c:
        layer(x).sum().backward()
    # Forward 2*B*in*out; backward the same twice (the input's and the weight's gradients).
    assert c.total == 3 * 2 * 4 * 12 * 5


def test_a_recipe_step_is_counted_with_its_attack_steps(monkeypatch, tmp_path):
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    monkeypatch.setenv("REPRTUT_CACHE", str(tmp_path))   # no count stored by an earlier run
    monkeypatch.setattr(costs, "_COUNTED", {})
    standard = recipes.roar_classifier("mnist")
    c = costs.per_image(standard)
    # The perceptron of ROAR: Linear(784, 128) and Linear(128, 10). A step: the forward pass,
    # both weight gradients, and the hidden layer's input gradient (the image needs none).
    macs = 784 * 128 + 128 * 10
    assert c.forward_flop == 2 * macs
    assert c.flop == 2 * macs + 2 * macs + 2 * 128 * 10 and c.passes == 1
    from dataclasses import replace
    pgd = replace(standard, name="roar-pgd", method="pgd",
                  method_kwargs={"eps": 0.1, "norm": "linf", "steps": 3, "step_size": 0.05})
    k = costs.per_image(pgd)
    # Each PGD step: a forward pass and the input's gradient (no weight gradient).
    assert k.attack_flop == 2 * macs + 2 * macs
    assert k.flop == c.flop + 3 * k.attack_flop and k.passes == 4


def test_steps_are_epochs_times_full_batches(monkeypatch):
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    spec = recipes.mnist_standard()
    assert costs.steps_of(spec) == spec.train.epochs * (spec.n_train // spec.train.batch_size)


def test_calibration_reads_a_recorded_chapters_file(tmp_path):
    folder = tmp_path / "benchmarks" / "cpu-x-1t"
    folder.mkdir(parents=True)
    record = {"benchmark": "chapters", "device": "cpu", "device_name": "x", "cpu_threads": 1,
              "date": "2026-01-01T00:00:00Z", "commit": "abc", "profile": "quick",
              "chapters": [{"chapter": "03b_perceptual_attacks", "seconds": 50.0, "passed": True}]}
    (folder / "chapters.json").write_text(json.dumps(record))
    rows, source = calibration.calibration(tmp_path / "benchmarks")
    assert [r["page"] for r in rows] == ["03b_perceptual_attacks"] and "chapters.json" in source
    assert rows[0]["recorded_s"] == 50.0 and rows[0]["warm_s"] < rows[0]["cold_s"]


def test_describe_is_one_line_naming_profile_and_device(monkeypatch):
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    line = plan.describe("03b_perceptual_attacks")
    assert "\n" not in line and "quick" in line and "TFLOP" in line and "CPU" in line
    with pytest.raises(ValueError, match="unknown page"):
        plan.page("99_nothing")


@pytest.mark.parametrize("name, peak", [("Tesla T4", 65.0), ("NVIDIA A100-SXM4-80GB", 312.0),
                                        ("NVIDIA H200", 989.0), ("NVIDIA L40S", 362.0),
                                        ("Some Future GPU", 65.0)])
def test_a_gpu_is_costed_at_its_known_peak(monkeypatch, name, peak):
    from reprtut.bench import common
    monkeypatch.setattr(common, "device_name", lambda device: name)
    assert plan.gpu_device(torch.device("cuda")).amp_tflops == peak


def test_a_count_is_stored_for_the_next_process(monkeypatch, tmp_path):
    monkeypatch.setenv("REPRTUT_PROFILE", "quick")
    monkeypatch.setenv("REPRTUT_CACHE", str(tmp_path))
    monkeypatch.setattr(costs, "_COUNTED", {})
    spec = recipes.roar_classifier("mnist")
    counted = costs.per_image(spec)
    assert (tmp_path / costs.COUNTS_FILE).is_file()
    # A new process (an empty memo) reads the count instead of running the step again.
    monkeypatch.setattr(costs, "_COUNTED", {})
    monkeypatch.setattr(costs, "_per_image", lambda spec: pytest.fail("counted again"))
    assert costs.per_image(spec) == counted
    # A torn file is counted again, not trusted.
    (tmp_path / costs.COUNTS_FILE).write_text("{not json")
    monkeypatch.setattr(costs, "_COUNTED", {})
    monkeypatch.setattr(costs, "_per_image", lambda spec: counted)
    assert costs.per_image(spec) == counted
