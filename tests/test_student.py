"""The student materials (tools/student.py): solutions removed, and the check that finds one.

The notebooks are built here (a second or two); the site only where it was built before
(continuous integration builds it after the book and runs ``tools/student.py --check-only``),
otherwise that test is skipped. The check is shown to work by putting solutions back.
"""

from __future__ import annotations

import html
import importlib.util
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

from reprtut import solutions

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("student", ROOT / "tools" / "student.py")
student = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(student)
PAGES = student.toc_chapters()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    assert student.main(["--out", str(out), "--no-site"]) == 0
    return out


@pytest.mark.parametrize("md", PAGES, ids=lambda p: p.stem)
def test_strip_removes_every_solution_and_keeps_every_exercise(md):
    nb = jupytext.read(md)
    kept, removed = solutions.strip(nb)
    text = "\n".join(c.source for c in kept.cells)
    assert "{solution" not in text
    labels = [line for line in md.read_text().splitlines() if line.startswith(":label:")]
    assert all(label in text for label in labels)
    if "{solution" in md.read_text():
        assert removed and solutions.telltales([nb]), f"{md.name}: nothing to look for"


def test_student_notebooks_hold_no_solution_and_open_themselves_on_colab(built):
    assert student.check(built) == []
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    repo = config["repository"]["url"].removeprefix("https://github.com/")
    for md in PAGES:
        nb = nbformat.read(built / "notebooks" / md.relative_to(ROOT).with_suffix(".ipynb"), as_version=4)
        link = (f"https://colab.research.google.com/github/{repo}/blob/{config['repository']['branch']}/"
                f"student/{md.relative_to(ROOT).with_suffix('.ipynb').as_posix()}")
        assert link in nb.cells[0].source
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def _solution_cells(page: str, kind: str):
    """The cells of the page's first solution of ``kind`` ('gated' or 'directive')."""
    cells = jupytext.read(ROOT / "book" / f"{page}.md").cells
    if kind == "directive":
        cell = next(c for c in cells if c.cell_type == "markdown" and "{solution}" in c.source)
        return [nbformat.v4.new_markdown_cell(cell.source[cell.source.index("```{solution}"):])]
    start = next(i for i, c in enumerate(cells) if "{solution-start}" in c.source)
    return [c for c in cells[start + 1:] if c.cell_type == "code"][:1]


@pytest.mark.parametrize("page,kind", [("01_adversarial_training", "gated"),
                                       ("02_evaluating_robustness", "directive"),
                                       ("07_low_rank_representations", "directive")])
def test_the_check_finds_a_solution_put_back_into_a_notebook(built, page, kind):
    path = built / "notebooks" / "book" / f"{page}.ipynb"
    original = path.read_text()
    try:
        nb = nbformat.read(path, as_version=4)
        nb.cells[len(nb.cells) // 2:len(nb.cells) // 2] = _solution_cells(page, kind)
        nbformat.write(nb, path)
        found = student.check(built)
        assert found and all(str(path) in f for f in found), found
    finally:
        path.write_text(original)
    assert student.check(built) == []


def test_the_check_finds_a_solution_in_a_rendered_page(built):
    """A solution line as Sphinx renders code: each token in a span, entities escaped."""
    line = next(c.source for c in _solution_cells("01_adversarial_training", "gated")).splitlines()[0]
    spans = "".join(f'<span class="n">{html.escape(tok)}</span>' for tok in line.split(" "))
    page = built / "html" / "book" / "01_adversarial_training.html"
    page.parent.mkdir(parents=True)
    try:
        page.write_text(f"<html><body><pre>{spans.replace('</span><span', '</span> <span')}</pre></body></html>")
        assert any(str(page) in f for f in student.check(built))
        page.write_text("<html><body><p>No solution here.</p></body></html>")
        assert student.check(built) == []
    finally:
        page.unlink()
        page.parent.rmdir()
        page.parent.parent.rmdir()


def test_the_student_site_holds_no_solution():
    out = ROOT / "_build" / "student"
    if not (out / "html").is_dir():
        pytest.skip("no student site: build it with `python tools/student.py`")
    assert student.check(out) == []
