"""tools/margins.py: the rewritten guards keep their truth values and record their margins."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("margins", ROOT / "tools" / "margins.py")
margins = importlib.util.module_from_spec(spec)
spec.loader.exec_module(margins)


def _run(source: str, tmp_path, cell: int = 7):
    """Run ``source`` instrumented, as the kernel would; (namespace, records, texts)."""
    records = tmp_path / "records.jsonl"
    code, texts = margins.instrument(source, cell)
    namespace = {}
    exec(margins.PRELUDE.replace("{path!r}", repr(str(records))), namespace)
    try:
        exec(code, namespace)
    finally:
        rows = [json.loads(line) for line in records.read_text().splitlines()] if records.is_file() else []
    return namespace, rows, texts


def _by_text(rows, texts) -> dict[str, list]:
    """comparison text -> its recorded margins, in the order evaluated."""
    out = {}
    for r in rows:
        out.setdefault(texts[r["id"]][1], []).append(r["margin"])
    return out


def test_margins_of_each_kind_of_comparison(tmp_path):
    source = ("acc = {'pgd': 0.52, 'fgsm': 0.71}\n"
              "assert acc['pgd'] < acc['fgsm'] - 0.05\n"
              "assert 0.5 <= acc['pgd'] < 0.6\n"
              "assert all(a >= b for a, b in [(3, 1), (2, 2), (0, 9)] if a > 0) and 'pgd' in acc\n")
    _, rows, texts = _run(source, tmp_path)
    by_text = _by_text(rows, texts)
    assert by_text["acc['pgd'] < acc['fgsm'] - 0.05"] == [pytest.approx(0.14)]
    assert by_text["0.5 <= acc['pgd']"] == [pytest.approx(0.02)]
    assert by_text["acc['pgd'] < 0.6"] == [pytest.approx(0.08)]
    assert by_text["a >= b"] == [2, 0]  # every element kept by the filter; the table keeps the smallest
    assert "a > 0" not in by_text
    assert by_text["'pgd' in acc"] == [None]
    assert all(r["held"] for r in rows) and {line for line, _ in texts.values()} == {2, 3, 4}


def test_a_failing_guard_still_fails_and_records_its_negative_margin(tmp_path):
    with pytest.raises(AssertionError, match="too close"):
        _run("gap = 0.03\nassert gap > 0.05, 'too close'\n", tmp_path)
    rows = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    assert rows == [{"id": "7:2:7:0", "held": False, "margin": pytest.approx(-0.02)}]


def test_claims_are_measured_by_name_and_other_calls_are_left_alone(tmp_path):
    source = ("def claim(checks, name, holds, detail=''):\n"
              "    checks[name] = bool(holds)\n"
              "checks = {}\n"
              "claim(checks, 'AFD above AT', 0.61 > 0.58 + 0.01, 'detail')\n"
              "ok = sorted([3, 1]) == [1, 3]\n")
    namespace, rows, texts = _run(source, tmp_path)
    assert namespace["checks"] == {"AFD above AT": True} and namespace["ok"] is True
    assert [texts[r["id"]][1] for r in rows] == ["claim: AFD above AT: 0.61 > 0.58 + 0.01"]
    assert rows[0]["margin"] == pytest.approx(0.02)


def test_a_cell_without_guards_and_with_magics_is_left_as_it_is():
    source = "%matplotlib inline\nx = 1 < 2\n"
    assert margins.instrument(source, 0) == (source, {})


def test_the_table_keeps_each_seeds_smallest_margin_and_marks_failures():
    texts = {"3:5:7:0": [5, "a < b"]}
    runs = [{"page": "book/01_x.md", "seed": 0, "status": "passed", "texts": texts,
             "records": [{"id": "3:5:7:0", "held": True, "margin": 0.2},
                         {"id": "3:5:7:0", "held": True, "margin": 0.1}]},
            {"page": "book/01_x.md", "seed": 1, "status": "failed in cell 3: AssertionError",
             "texts": texts, "records": [{"id": "3:5:7:0", "held": False, "margin": -0.05}]}]
    text = margins.table(runs, [0, 1])
    assert "| 01_x | 3 | 5 | `a < b` | +0.1 | **-0.05 failed** | **-0.05 failed** |" in text
    assert "book/01_x.md seed 1: failed in cell 3" in text


def test_element_wise_comparisons_keep_their_tensor(tmp_path):
    # rt.book.claim(checks, ..., (gain > 0.005).all() and gain[0] > 0.015): the comparison
    # stays a tensor for the page to reduce; its margin is that of its worst element
    source = ("import torch\n"
              "gain = torch.tensor([0.02, 0.01, 0.007])\n"
              "assert (gain > 0.005).all() and gain[0] > 0.015\n"
              "assert 0 < 1 < 0.5 or True\n")
    _, rows, texts = _run(source, tmp_path)
    margin = _by_text(rows, texts)
    assert margin["gain > 0.005"] == [pytest.approx(0.002)]
    assert margin["gain[0] > 0.015"] == [pytest.approx(0.005)]
    assert margin["0 < 1"] == [1] and margin["1 < 0.5"] == [pytest.approx(-0.5)]
