"""Recorded benchmark results: find, read, tabulate and plot ``benchmarks/**/*.json``.

The book's appendix "Performance" shows what :mod:`reprtut.bench` and ``tools/run_chapters.py``
recorded on named machines; it cannot measure a GPU from a CPU build, so it reads files. Each
file is one run's JSON with at least ``benchmark`` (``train``, ``attack``, ``mnist`` or
``chapters``), ``device_name``, ``date`` and ``commit``.
"""

from __future__ import annotations

import json
from pathlib import Path

KINDS = ("train", "attack", "mnist", "chapters")


def folder(start: str | Path | None = None) -> Path | None:
    """The nearest ``benchmarks/`` folder at or above ``start`` (default: the working
    directory), or None (e.g. on Colab, where only the package is installed)."""
    here = Path(start or Path.cwd()).resolve()
    for d in (here, *here.parents):
        if (d / "benchmarks").is_dir():
            return d / "benchmarks"
    return None


def load(where: str | Path | None) -> list[dict]:
    """Every result under ``where`` (recursively), sorted by benchmark, device and date; each
    gains ``file`` (its path relative to ``where``). An absent folder gives an empty list."""
    if where is None or not Path(where).is_dir():
        return []
    out = []
    for path in sorted(Path(where).rglob("*.json")):
        result = json.loads(path.read_text())
        if result.get("benchmark") == "plan":     # the cost model's estimates: not a measurement
            continue
        if result.get("benchmark") not in KINDS:
            raise ValueError(f"{path}: 'benchmark' must be one of {KINDS}, got {result.get('benchmark')!r}")
        for key in ("device_name", "date", "commit"):
            if key not in result:
                raise ValueError(f"{path} lacks {key!r}: record results with `python -m reprtut.bench`")
        result["file"] = str(path.relative_to(where))
        out.append(result)
    return sorted(out, key=lambda r: (r["benchmark"], r["device_name"], r["date"]))


def label(result: dict) -> str:
    """'<device>, <date>, <commit>' — what every number on the page is labelled with."""
    n = result.get("cpu_threads")
    threads = f" ({n} thread{'s' * (n != 1)})" if result.get("device") == "cpu" else ""
    return f"{result['device_name']}{threads}, {result['date'][:10]}, {result['commit'][:7]}"


def summary_rows(results: list[dict]) -> list[tuple]:
    """One row per result: benchmark, machine label, the headline figures as text."""
    rows = []
    for r in results:
        kind = r["benchmark"]
        if kind == "train":
            figs = "; ".join(f"{m}: {v['seconds_per_epoch']:.1f} s/epoch, {v['achieved_tflops']:.2f} TFLOP/s"
                             + (f" ({v['fraction_of_peak']:.0%} of peak)" if v.get("fraction_of_peak") else "")
                             for m, v in r["methods"].items())
            figs = f"{r['arch']}, batch {r['batch']}{', compiled' if r.get('compile') else ''}: {figs}"
        elif kind == "attack":
            ips = r["images_per_s"]
            figs = (f"{r['arch']}, batch {r['batch']}: reprtut {ips['reprtut_fp32']:.0f} vs torchattacks "
                    f"{ips['torchattacks_fp32']:.0f} images/s in fp32 (ratio {r['ratio_fp32']:.2f})")
            if "reprtut_mixed" in ips:
                figs += f"; reprtut {r['mixed_dtype']} {ips['reprtut_mixed']:.0f} images/s"
        elif kind == "mnist":
            figs = (f"{r['seconds_to_target']:.1f} s to {r['target']:.1%}" if r["reached"]
                    else f"{r['target']:.1%} not reached ({r['final_test_acc']:.1%})")
            figs += f" ({r['profile']} profile, {r['epochs']:.2f} epochs)"
        else:
            ok = sum(c["passed"] for c in r["chapters"])
            figs = (f"{ok}/{len(r['chapters'])} chapters passed in the {r['profile']} profile, "
                    f"{r['total_seconds'] / 60:.1f} min")
        rows.append((kind, label(r), figs))
    return rows


def plot(results: list[dict]):
    """One panel per kind of benchmark recorded: seconds per 50,000-image epoch (standard and
    PGD-10 training), PGD-20 images/s, seconds to the MNIST target, per-chapter wall time."""
    import matplotlib.pyplot as plt

    kinds = [k for k in KINDS if any(r["benchmark"] == k for r in results)]
    if not kinds:
        raise ValueError("no results to plot")
    fig, axes = plt.subplots(len(kinds), 1, figsize=(8, 2.6 * len(kinds)), squeeze=False)
    for ax, kind in zip(axes[:, 0], kinds):
        rs = [r for r in results if r["benchmark"] == kind]
        if kind == "train":
            bars = [(f"{label(r)}\n{r['arch']} {m}", v["seconds_per_epoch"]) for r in rs
                    for m, v in r["methods"].items()]
            ax.set_xlabel("seconds per 50,000-image epoch (log scale)")
            ax.set_xscale("log")
        elif kind == "attack":
            bars = [(f"{label(r)}\n{name}", v) for r in rs for name, v in r["images_per_s"].items()]
            ax.set_xlabel("PGD-20 images per second")
        elif kind == "mnist":
            bars = [(label(r), r["seconds_to_target"] or float("nan")) for r in rs]
            ax.set_xlabel("seconds to the MNIST target accuracy")
        else:
            bars = [(f"{c['chapter']} ({label(r)})", c["seconds"]) for r in rs for c in r["chapters"]]
            ax.set_xlabel("wall time per chapter (s)")
        names, values = zip(*bars)
        finite = [v for v in values if v == v]
        ax.barh(range(len(values)), [v if v == v else 0 for v in values], color="tab:blue")
        for i, v in enumerate(values):      # the value at the end of each bar
            ax.text(v if v == v else 0, i, f" {v:.3g}" if v == v else " target not reached",
                    va="center", fontsize=7)
        if ax.get_xscale() == "log" and finite:
            ax.set_xlim(min(finite) / 2, max(finite) * 4)
        elif finite:
            ax.set_xlim(0, max(finite) * 1.25)
        ax.set_yticks(range(len(values)), names, fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{kind} (recorded)", fontsize=9, loc="left")
    fig.tight_layout()
    return fig
