"""The cost model against recorded page times: the quick profile's CPU estimates beside the
wall time each page took (``python -m reprtut.bench plan --calibrate``)."""

from __future__ import annotations

import re

from .plan import PAGE_OVERHEAD_S, PAGES, cpu_device, page, profiles_as, work
from . import costs, report

# Seconds per page of the quick profile on this book's CI machine (two cores, one thread per
# process, pages run after the unit tests, which had trained some of the pages' models), from
# a CI report; used by :func:`calibration` until a chapters JSON is recorded under benchmarks/.
CI_QUICK_SECONDS = {"01_adversarial_training": 21.8, "02_evaluating_robustness": 183.6,
                    "03_perceptual_regularization": 6.5, "03a_perceptual_transfer": 21.8,
                    "03b_perceptual_attacks": 9.3, "04_robust_representations": 73.7,
                    "05_gradient_interpretability": 123.2, "06_feature_desensitization": 107.1,
                    "06a_afd_cifar": 150.4, "07_low_rank_representations": 65.7}


def recorded_quick(where=None) -> tuple[dict[str, float], str]:
    """(page -> seconds, where they come from): the newest quick-profile chapters record on
    a CPU under ``benchmarks/`` (``tools/run_chapters.py --json``), else :data:`CI_QUICK_SECONDS`."""
    runs = [r for r in report.load(report.folder() if where is None else where)
            if r["benchmark"] == "chapters" and r.get("profile") == "quick" and r.get("device") == "cpu"]
    if runs:
        run = max(runs, key=lambda r: r["date"])
        return ({c["chapter"]: c["seconds"] for c in run["chapters"] if c["passed"]},
                f"benchmarks/{run['file']} ({report.label(run)})")
    return dict(CI_QUICK_SECONDS), "a CI report (pages after the tests: some models cached)"


def calibration(where=None) -> tuple[list[dict], str]:
    """The quick profile's CPU estimates against recorded page times: per page the recorded
    seconds, the estimate with every model cached (``warm_s``: evaluations and overhead) and
    from an empty cache (``cold_s``), and ``factor``: how far the record lies outside
    [warm, cold] (1 inside; e.g. 2.5 means 2.5x below warm or above cold)."""
    recorded, source = recorded_quick(where)
    dev = cpu_device()
    rows = []
    with profiles_as("quick"):
        for name in PAGES:
            if name not in recorded:
                continue
            train, evaluate = work(page(name))
            warm = evaluate.seconds(dev) + PAGE_OVERHEAD_S
            cold = warm + train.seconds(dev)
            t = recorded[name]
            factor = warm / t if t < warm else t / cold if t > cold else 1.0
            rows.append({"page": name, "recorded_s": t, "warm_s": warm, "cold_s": cold,
                         "factor": factor})
    return rows, source



def format_calibration(rows: list[dict]) -> str:
    """:func:`calibration`'s rows as text."""
    lines = [f"{'page':30s} {'recorded s':>10s} {'warm s':>8s} {'cold s':>8s} {'factor':>7s}"]
    for r in rows:
        lines.append(f"{r['page']:30s} {r['recorded_s']:10.1f} {r['warm_s']:8.1f} "
                     f"{r['cold_s']:8.1f} {r['factor']:7.2f}")
    return "\n".join(lines)


def device_of(run: dict):
    """The cost model's :class:`~.costs.Device` for a recorded run: this CPU for a CPU run
    (measured here: right only where the run was recorded on this machine), the GPU of
    :data:`.costs.GPUS` whose name the run's device name contains, else None."""
    if run.get("device") == "cpu":
        return cpu_device()
    name = run.get("device_name", "")
    return next((d for k, d in costs.GPUS.items() if re.search(rf"\b{k}\b", name)), None)


def beside(run: dict) -> list[dict]:
    """A recorded chapters run (``tools/run_chapters.py --json``) beside the cost model: per
    page the recorded seconds and the estimated seconds with every model cached (warm) and
    from an empty cache (cold) in the run's profile on the run's device (None: unknown GPU)."""
    if run.get("benchmark") != "chapters":
        raise ValueError(f"run must be a chapters record, got benchmark={run.get('benchmark')!r}")
    dev = device_of(run)
    rows = []
    with profiles_as(run["profile"]):
        for c in run["chapters"]:
            warm = cold = None
            if dev is not None and c["chapter"] in PAGES:
                train, evaluate = work(page(c["chapter"]))
                warm = evaluate.seconds(dev) + PAGE_OVERHEAD_S
                cold = warm + train.seconds(dev)
            rows.append({"page": c["chapter"], "recorded_s": c["seconds"], "passed": c["passed"],
                         "warm_s": warm, "cold_s": cold})
    return rows
