"""The Teaching part's generated content: objectives, exercises, sessions and recorded times."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reprtut import teaching

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pages():
    return teaching.book_pages()


def test_every_exercise_names_an_objective_of_its_page(pages):
    assert len(pages) >= 10
    for p in pages:
        assert len(p.objectives) >= 3, p.stem
        assert p.exercises, p.stem
        for e in p.exercises:
            assert e.label and e.title, e
            assert e.objective is not None and 1 <= e.objective <= len(p.objectives), e


def test_every_chapter_has_an_auto_checked_exercise(pages):
    chapters = {p.stem[:2] for p in pages if p.stem[0].isdigit()}
    checked = {p.stem[:2] for p in pages for e in p.exercises if e.checks}
    assert chapters <= checked, chapters - checked


def test_the_sessions_teach_every_page_once(pages):
    taught = [s for session in teaching.SESSIONS for s in session.pages]
    assert sorted(taught) == sorted(p.stem for p in pages)
    assert len(teaching.SESSIONS) == 8


def _record(folder: Path, device: str, profile: str, seconds: dict, date: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": "chapters", "device": device, "device_name": f"a {device}",
              "cpu_threads": 2, "profile": profile, "commit": "0123456789", "date": date,
              "chapters": [{"chapter": c, "seconds": s, "returncode": 0, "passed": True}
                           for c, s in seconds.items()]}
    record["total_seconds"] = sum(seconds.values())
    (folder / f"chapters-{date[:10]}.json").write_text(json.dumps(record))


def test_times_are_read_from_recorded_runs_or_said_to_be_missing(pages, tmp_path):
    assert teaching.chapter_times(tmp_path) == {}
    text = teaching.syllabus_markdown(pages, {})
    assert text.count("no recorded times") == 2 * len(teaching.SESSIONS)

    stems = [p.stem for p in pages]
    _record(tmp_path / "laptop", "cpu", "quick", {s: 60.0 for s in stems}, "2026-01-01T00:00:00Z")
    _record(tmp_path / "laptop", "cpu", "quick", {s: 90.0 for s in stems}, "2026-02-01T00:00:00Z")
    _record(tmp_path / "laptop", "cpu", "full", {s: 999.0 for s in stems}, "2026-03-01T00:00:00Z")
    times = teaching.chapter_times(tmp_path)
    assert set(times) == {"cpu"} and "2026-02-01" in times["cpu"]["label"]
    rows = teaching.syllabus(pages, times)
    assert rows[0]["cpu"] == "1.5 min" and rows[0]["gpu"] == "no recorded times"
    two_pages = next(r for r in rows if len(r["pages"]) == 2)
    assert two_pages["cpu"] == "3.0 min"

    _record(tmp_path / "gpu", "cuda", "full", {stems[0]: 30.0}, "2026-02-02T00:00:00Z")
    rows = teaching.syllabus(pages, teaching.chapter_times(tmp_path))
    assert rows[0]["gpu"] == "0.5 min" and rows[1]["gpu"].startswith("not recorded for")


def test_gpu_times_are_the_cost_models_estimates_labelled_so(pages, monkeypatch):
    from reprtut.bench import plan
    monkeypatch.setattr(plan, "table", lambda profile=None: [
        {"page": p.stem, "min_T4": 2.0, "profile": profile} for p in pages])
    est = teaching.estimated_times()
    assert est["estimated"] and "colab profile" in est["label"] and "T4" in est["label"]
    rows = teaching.syllabus(pages, {"gpu": est})
    assert all(r["gpu"] == f"{2.0 * len(r['pages']):.1f} min" or "performance" in
               [p.stem for p in r["pages"]] for r in rows)
    text = teaching.syllabus_markdown(pages, {"gpu": est})
    assert text.count("GPU (estimated): ") == len(teaching.SESSIONS)
    assert "GPU (estimated)" not in teaching.syllabus_markdown(pages, {})
    with pytest.raises(ValueError, match="device must be one of"):
        teaching.estimated_times(device="V100")


def test_the_index_lists_every_exercise(pages):
    rows = teaching.index_rows(pages)
    assert len(rows) == sum(len(p.exercises) for p in pages)
    assert sum(row[3] != "no" for row in rows) >= 8
