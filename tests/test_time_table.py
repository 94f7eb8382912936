"""tools/time_table.py: the CI check that fails a page over twice its budget (or its ceiling)."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("time_table", ROOT / "tools" / "time_table.py")
time_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(time_table)


def _run(tmp_path, page_cells: dict[str, list[float]], events: list[tuple]):
    """--check on a JUnit report of ``page_cells`` (page -> cell seconds) and a ledger of
    ``events`` (model, "train" or "load", requester, seconds[, seconds waited for the lock])."""
    cases = "".join(f'<testcase classname="{page[:-3].replace("/", ".")}.md" name="Cell {i}" '
                    f'time="{t}"/>' for page, cells in page_cells.items()
                    for i, t in enumerate(cells))
    junit = tmp_path / "junit.xml"
    junit.write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
    cache = tmp_path / "models"
    cache.mkdir()
    (cache / "ledger.jsonl").write_text("".join(
        json.dumps({"name": m, "key": "k", "event": e, "seconds": s, "requester": r,
                    "waited": waited[0] if waited else 0.0}) + "\n"
        for m, e, r, s, *waited in events))
    return time_table.main(["--junit", str(junit), "--cache", str(cache), "--check"])


def test_a_page_within_its_budget_passes(tmp_path, capsys):
    assert _run(tmp_path, {"book/01_x.md": [20.0, 30.0]}, [("m", "train", "book/01_x.md", 40.0)]) == 0
    assert "| book/01_x.md | 50.0 | 40.0 | 0.0 | 10.0 | 50.0 | yes |" in capsys.readouterr().out


def test_waiting_for_a_model_another_process_trains_is_not_the_pages_own_time(tmp_path, capsys):
    # CI's two workers: a test trains the model for 130 s while the page waits for its lock;
    # the page's own seconds are what is left, its cold seconds add the training once.
    events = [("big", "train", "tests/test_a.py::test_b", 130.0),
              ("big", "load", "book/01_x.md", 0.5, 129.5)]
    assert _run(tmp_path, {"book/01_x.md": [10.0, 150.0]}, events) == 0
    assert "| book/01_x.md | 160.0 | 0.0 | 129.5 | 30.5 | 160.5 | yes |" in capsys.readouterr().out


def test_a_page_over_twice_its_budget_fails(tmp_path, capsys):
    # its own seconds are within budget; the model it asks for, trained by a test, is not
    trained = ("big", "train", "tests/test_a.py::test_b", 2 * time_table.COLD_BUDGET)
    page = {"book/09_new.md": [10.0]}
    (tmp_path / "a").mkdir()
    assert _run(tmp_path / "a", page, [trained]) == 0  # the page does not ask for it
    (tmp_path / "b").mkdir()
    assert _run(tmp_path / "b", page, [trained, ("big", "load", "book/09_new.md", 1.0)]) == 1
    assert "book/09_new.md" in capsys.readouterr().err


@pytest.mark.parametrize("factor, code", [(1.9, 0), (2.1, 1)])
def test_a_page_over_budget_is_held_to_twice_its_ceiling(tmp_path, factor, code):
    page, ceiling = next(iter(time_table.CEILINGS.items()))
    assert _run(tmp_path, {page: [factor * ceiling]}, []) == code
