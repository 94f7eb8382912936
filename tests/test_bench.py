"""The benchmark suite: its JSON carries what a recorded result must say, its arithmetic and
peak table are right, and the appendix's reader accepts only labelled results."""

from __future__ import annotations

import json

import pytest
import torch

from reprtut.bench import __main__ as cli
from reprtut.bench import common, report, training

META = ("device", "device_name", "torch", "commit", "command", "date", "profile")


@pytest.mark.parametrize("name, peak", [
    ("NVIDIA H100 80GB HBM3", 989.0), ("NVIDIA H100 PCIe", 756.0), ("NVIDIA H200", 989.0),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA L4", 121.0), ("NVIDIA L40S", 362.0),
    ("Tesla T4", 65.0), ("AMD EPYC 7B13", None)])
def test_peak_table_is_keyed_by_the_longest_matching_name(name, peak):
    assert common.peak_tflops(name) == peak


def test_training_arithmetic():
    assert training.forwards_per_image("standard") == 3
    assert training.forwards_per_image("pgd") == 3 + 3 * 10
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    flops = training.forward_flops(net, (3, 2, 2), torch.device("cpu"))
    assert flops == 2 * 12 * 5, "two FLOPs per multiply-add, per image"


def test_train_benchmark_writes_labelled_json(tmp_path, monkeypatch):
    monkeypatch.setenv(common.COMMIT_ENV, "abc1234")
    out = tmp_path / "train.json"
    cli.main(["train", "--arch", "small_cnn", "--batch", "4", "--steps", "1", "--device", "cpu",
              "--out", str(out)])
    r = json.loads(out.read_text())
    assert all(r[k] for k in META) and r["commit"] == "abc1234" and r["benchmark"] == "train"
    assert r["command"].startswith("python -m reprtut.bench train")
    assert r["synthetic_data"] is True and r["peak_bf16_tflops"] is None
    for method in ("standard", "pgd"):
        row = r["methods"][method]
        assert row["seconds_per_epoch"] == pytest.approx(row["seconds_per_step"] * 50_000 / 4)
        assert row["achieved_tflops"] > 0 and row["fraction_of_peak"] is None
    assert report.summary_rows(report.load(tmp_path))[0][0] == "train"


@pytest.mark.slow
def test_mnist_benchmark_stops_at_the_target(tmp_path):
    r = cli.main(["mnist", "--target", "0.6", "--every", "4", "--max-epochs", "1", "--device", "cpu"])
    accs = [e["test_acc"] for e in r["evaluations"]]
    assert r["reached"] and r["seconds_to_target"] > 0
    assert accs[-1] >= 0.6 and all(a < 0.6 for a in accs[:-1]), "stops at the first evaluation above"
    assert r["steps"] % 4 == 0 and r["epochs"] < 1


def test_attack_benchmark_alternates_both_libraries():
    r = cli.main(["attack", "--batch", "4", "--repeats", "1", "--device", "cpu"])
    assert set(r["images_per_s"]) >= {"reprtut_fp32", "torchattacks_fp32"}
    assert r["ratio_fp32"] == pytest.approx(r["images_per_s"]["reprtut_fp32"] / r["images_per_s"]["torchattacks_fp32"])


def test_report_rejects_unlabelled_results(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"benchmark": "train", "device_name": "cpu", "date": "2026"}))
    with pytest.raises(ValueError, match="commit"):
        report.load(tmp_path)
    assert report.load(tmp_path / "absent") == [] and report.load(None) == []
