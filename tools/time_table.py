"""Where a run's time goes: every model trained, every page and test, and the pages' budgets.

    pytest --junitxml=report.xml                  # any run of the tests, with a fresh cache
    python tools/time_table.py --junit report.xml [--cache DIR] [--check] [--out table.md]

Reads the model cache's ledger (``$REPRTUT_CACHE/ledger.jsonl``, see ``reprtut/ledger.py``:
each training and load with its seconds and the test or page that asked) and pytest's JUnit
report (seconds per test; a page's are the sum of its cells'). Prints three Markdown tables:

1. models: recipe, seconds to train, who trained it, who else loaded it, and whether any page
   uses it (a model only tests use is marked, so it can be questioned);
2. pages: seconds under nbval, seconds spent training models there, seconds spent waiting
   for a model that another process was training (the ledger's ``waited``: its training is
   counted where it ran), the page's own (warm) seconds — the rest — and its cold seconds —
   own seconds plus the training of every model it asks for, whoever trained it first —
   against the quick profile's budgets (90 s warm, 180 s cold);
3. the slowest tests, with the training they did.

``--check`` exits non-zero when a page exceeds twice either budget, so a slow page is caught
in the run that adds it. The pages listed in ``CEILINGS`` are over the budget today; each is
held to twice its own measured seconds instead (so it cannot grow unnoticed), and the table
marks it over the budget until it is brought within it and leaves the list.
"""

from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reprtut import ledger  # noqa: E402

WARM_BUDGET, COLD_BUDGET = 90.0, 180.0  # seconds per page, quick profile, this CPU

# Pages over the budget, with their cold seconds (the page's own seconds plus the training of
# every model it asks for) in a clean-clone CI run: two single-threaded test processes on a
# 2-core AMD EPYC training in bf16 autocast, 2026-12-07 (in fp32 they were 1.2-1.6x these). Each
# is held to twice its ceiling, warm and cold.
CEILINGS = {
    "book/02_evaluating_robustness.md": 615.0,
    "book/04_robust_representations.md": 610.0,
    "book/05_gradient_interpretability.md": 385.0,
    "book/06_feature_desensitization.md": 365.0,
    "book/06a_afd_cifar.md": 500.0,
    "book/07_low_rank_representations.md": 500.0,
}


def limits(page: str) -> tuple[float, float]:
    """(warm, cold) seconds over which ``page`` fails --check: twice its budget, or twice its
    ceiling when it is one of the pages over the budget."""
    if page in CEILINGS:
        return 2 * max(WARM_BUDGET, CEILINGS[page]), 2 * max(COLD_BUDGET, CEILINGS[page])
    return 2 * WARM_BUDGET, 2 * COLD_BUDGET


def test_seconds(junit: Path) -> dict[str, float]:
    """Seconds per test node id from a JUnit XML report; a page's cells summed per page."""
    seconds: dict[str, float] = defaultdict(float)
    for case in ET.parse(junit).getroot().iter("testcase"):
        cls, name = case.get("classname", ""), case.get("name", "")
        t = float(case.get("time", 0) or 0)
        if cls.endswith(".md") or name.startswith("Cell "):  # an nbval cell: book.01_x.md
            seconds[_page_path(cls)] += t
        else:
            parts = cls.split(".")
            seconds[f"{'/'.join(parts)}.py::{name}"] += t
    return dict(seconds)


def _page_path(classname: str) -> str:
    stem, _, _ = classname.rpartition(".md")
    folder, _, page = stem.rpartition(".")
    return f"{folder.replace('.', '/')}/{page}.md" if folder else f"{page}.md"


def models_table(rows: list[dict]) -> tuple[list[str], dict]:
    by_model: dict[str, dict] = {}
    for r in rows:
        m = by_model.setdefault(f"{r['name']}-{r['key']}", {"train": 0.0, "trained_by": [],
                                                            "asked_by": set()})
        m["asked_by"].add(r["requester"])
        if r["event"] == "train":
            m["train"] += r["seconds"]
            m["trained_by"].append(r["requester"])
    lines = ["| model | train s | trained by | also asked by | a page uses it |",
             "|---|---:|---|---|---|"]
    for model, m in sorted(by_model.items(), key=lambda kv: -kv[1]["train"]):
        others = sorted(m["asked_by"] - set(m["trained_by"]))
        paged = any(a.endswith(".md") for a in m["asked_by"])
        lines.append(f"| {model} | {m['train']:.1f} | {', '.join(m['trained_by']) or '(cached)'} | "
                     f"{', '.join(others) or '-'} | {'yes' if paged else '**no: tests only**'} |")
    return lines, by_model


def pages_table(seconds: dict[str, float], rows: list[dict], by_model: dict):
    trained_here: dict[str, float] = defaultdict(float)
    waited_here: dict[str, float] = defaultdict(float)
    asked: dict[str, set] = defaultdict(set)
    for r in rows:
        asked[r["requester"]].add(f"{r['name']}-{r['key']}")
        waited_here[r["requester"]] += r.get("waited", 0.0)  # absent in older ledgers
        if r["event"] == "train":
            trained_here[r["requester"]] += r["seconds"]
    lines = ["| page | under nbval s | training there s | waiting for a model s | own (warm) s | "
             "cold s | within budget |", "|---|---:|---:|---:|---:|---:|---|"]
    over = []
    for page in sorted(p for p in seconds if p.endswith(".md")):
        total, train, waited = seconds[page], trained_here.get(page, 0.0), waited_here.get(page, 0.0)
        warm = max(0.0, total - train - waited)
        cold = warm + sum(by_model[m]["train"] for m in asked.get(page, ()))
        ok = warm <= WARM_BUDGET and cold <= COLD_BUDGET
        warm_limit, cold_limit = limits(page)
        if warm > warm_limit or cold > cold_limit:
            over.append(page)
            verdict = f"**over {warm_limit:.0f} s warm or {cold_limit:.0f} s cold**"
        elif ok:
            verdict = "yes"
        else:
            verdict = "over" + (f" (ceiling {CEILINGS[page]:.0f} s)" if page in CEILINGS else "")
        lines.append(f"| {page} | {total:.1f} | {train:.1f} | {waited:.1f} | {warm:.1f} | "
                     f"{cold:.1f} | {verdict} |")
    total_cold = sum(max(0.0, seconds[p] - trained_here.get(p, 0.0) - waited_here.get(p, 0.0))
                     for p in seconds if p.endswith(".md"))
    total_cold += sum(m["train"] for m in by_model.values()
                      if any(a.endswith(".md") for a in m["asked_by"]))
    lines.append(f"\nCold book (every page's own seconds plus every model a page asks for, "
                 f"each trained once): **{total_cold / 60:.1f} min**")
    return lines, over


def tests_table(seconds: dict[str, float], rows: list[dict], most: int) -> list[str]:
    trained_here: dict[str, float] = defaultdict(float)
    waited_here: dict[str, float] = defaultdict(float)
    for r in rows:
        waited_here[r["requester"]] += r.get("waited", 0.0)
        if r["event"] == "train":
            trained_here[r["requester"]] += r["seconds"]
    lines = [f"| test (slowest {most}) | s | training there s | waiting for a model s |",
             "|---|---:|---:|---:|"]
    tests = sorted((t for t in seconds if not t.endswith(".md")), key=lambda t: -seconds[t])
    for t in tests[:most]:
        lines.append(f"| {t} | {seconds[t]:.1f} | {trained_here.get(t, 0.0):.1f} | "
                     f"{waited_here.get(t, 0.0):.1f} |")
    total = sum(seconds[t] for t in tests)
    lines.append(f"\n{len(tests)} tests, {total / 60:.1f} min; pages "
                 f"{sum(v for k, v in seconds.items() if k.endswith('.md')) / 60:.1f} min")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--junit", type=Path, required=True, help="pytest's --junitxml report")
    p.add_argument("--cache", type=Path, default=None,
                   help="the model cache (default: $REPRTUT_CACHE, else ~/.cache/reprtut/models)")
    p.add_argument("--most", type=int, default=25, help="how many tests to list")
    p.add_argument("--check", action="store_true",
                   help="fail on a page over twice its budget (or its ceiling, see CEILINGS)")
    p.add_argument("--out", type=Path, default=None, help="also write the tables to this file")
    args = p.parse_args(argv)
    if not args.junit.is_file():
        p.error(f"--junit {args.junit} does not exist (run pytest with --junitxml=...)")
    cache = args.cache or (Path(os.environ["REPRTUT_CACHE"]) if os.environ.get("REPRTUT_CACHE")
                           else Path.home() / ".cache" / "reprtut" / "models")
    rows = ledger.read(cache)
    seconds = test_seconds(args.junit)
    model_lines, by_model = models_table(rows)
    page_lines, over = pages_table(seconds, rows, by_model)
    text = "\n".join(["## Models trained", *model_lines, "", "## Pages", *page_lines, "",
                      "## Tests", *tests_table(seconds, rows, args.most)])
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.check and over:
        print(f"\nover twice the budget ({WARM_BUDGET:.0f} s warm, {COLD_BUDGET:.0f} s cold) "
              f"or twice their ceiling (CEILINGS): {', '.join(over)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
