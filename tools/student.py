"""Build the student materials: the book's notebooks and site without the exercises' solutions.

    python tools/student.py [--out _build/student] [--cache DIR] [--no-site] [--strict] [--check]
    python tools/student.py --check-only [--out _build/student]

Writes, from the chapters of ``_toc.yml`` (never edit the output by hand):

- ``<out>/notebooks/book/<page>.ipynb``: every notebook page without its solutions (both the
  ``{solution}`` directives and everything between ``{solution-start}`` and ``{solution-end}``,
  code and prose; see ``reprtut/solutions.py``), with no outputs, an empty cell for the answer
  before each exercise's check, and, as its first cell, a link that opens that very notebook
  on Colab. The link points to ``<publish-at>/book/<page>.ipynb``
  in the repository and branch of ``_config.yml`` (``repository:``): publish the folder
  ``<out>/notebooks`` there (e.g. ``cp -r _build/student/notebooks student`` on the branch the
  class uses) for the links to open;
- ``<out>/html``: the book's site built from the same pages, without solutions, whose launch
  buttons open the student notebooks. The site is not executed again: each page's outputs
  are read from the jupyter-cache ``--cache`` (default ``$REPRTUT_EXECUTION_CACHE``: the one the
  page tests fill and the main build renders), the solutions' cells are dropped with their
  outputs, and the copy is built with ``execute_notebooks: off``. A page missing from the
  cache is rendered without outputs, and the build says so (and fails under ``--strict``).

``--check`` then looks for every solution's lines (those of five words or more that the page
does not also hold outside its solutions) in the notebooks and in every HTML page and source
file of the student site, and exits 1 on the first leak it finds, naming it.
"""

from __future__ import annotations

import argparse
import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from reprtut import solutions  # noqa: E402
from tools.run_chapters import toc_chapters  # noqa: E402

COLAB_CELL = ("[![Open in Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})\n\n"
              "This is the student version of the page: the exercises' solutions are not in it.")


ANSWER_CELL = "# Your answer: define here what the exercise asks for, then run the check below."
OBJECTIVE_LINE = re.compile(r"\n*^% objective: \d+[ \t]*$", re.M)


def colab_url(config: dict, publish_at: str, page: Path) -> str:
    """The Colab address of the student notebook of ``page`` (a path relative to the root)."""
    repo = config["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    base = config.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com")
    path = "/".join(p for p in (publish_at.strip("/"), page.with_suffix(".ipynb").as_posix()) if p)
    return f"{base.rstrip('/')}/github/{repo}/blob/{config['repository'].get('branch', 'main')}/{path}"


def student_notebook(md: Path, config: dict, publish_at: str):
    """The page as a student notebook: no solutions, no outputs, its Colab link first."""
    nb, _ = solutions.strip(jupytext.read(md))
    cells = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "rt.check." in cell.source:   # room for the answer
            cells.append(nbformat.v4.new_code_cell(ANSWER_CELL))
        elif cell.cell_type == "markdown":   # the index's metadata, not for the reader
            cell.source = OBJECTIVE_LINE.sub("", cell.source)
        cells.append(cell)
    nb.cells = cells
    url = colab_url(config, publish_at, md.relative_to(ROOT))
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(COLAB_CELL.format(url=url)))
    nb.metadata.pop("jupytext", None)
    return nb


def executed_page(md: Path, cache):
    """The page as Jupyter Book reads it, with the outputs stored in the cache (None if absent)."""
    from myst_nb.core.read import read_myst_markdown_notebook

    page = read_myst_markdown_notebook(md.read_text(), path=md)
    if cache is None:
        return None
    try:
        _, merged = cache.merge_match_into_notebook(page)
    except KeyError:
        return None
    return merged


def build_site(out: Path, config: dict, publish_at: str, cache_dir: str | None, strict: bool) -> None:
    """Copy the book without solutions into ``out/src`` and build it into ``out/html``."""
    from jupyter_cache import get_cache

    cache = get_cache(cache_dir) if cache_dir and Path(cache_dir).is_dir() else None
    src = out / "src"
    shutil.rmtree(src, ignore_errors=True)
    shutil.copytree(ROOT / "book", src / "book", ignore=shutil.ignore_patterns("*.ipynb", "conftest.py", "__pycache__"))
    shutil.copytree(ROOT / "reprtut", src / "reprtut", ignore=shutil.ignore_patterns("__pycache__"))  # literalinclude
    shutil.copy(ROOT / "_toc.yml", src / "_toc.yml")
    missing = []
    for md in toc_chapters():
        target = src / md.relative_to(ROOT)
        executed = executed_page(md, cache)
        if executed is None:
            missing.append(md.stem)
            target.write_text(jupytext.writes(solutions.strip(jupytext.read(md))[0], fmt="md:myst"))
            continue
        target.unlink()
        nbformat.write(solutions.strip(executed)[0], target.with_suffix(".ipynb"))
    if missing:
        print(f"not in the execution cache, rendered without outputs: {', '.join(missing)}")
        if strict:
            sys.exit("--strict: every page must come from the execution cache")
    config = yaml.safe_load(yaml.safe_dump(config))
    config["execute"]["execute_notebooks"] = "off"
    config["exclude_patterns"] = [p for p in config["exclude_patterns"] if not p.endswith("*.ipynb")]
    config["repository"]["path_to_book"] = publish_at   # the launch buttons open the student notebooks
    config["title"] = config["title"] + " (student edition)"
    if missing:   # an unexecuted page has no glued values
        config["sphinx"]["config"]["suppress_warnings"].append("mystnb.glue")
    (src / "_config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    shutil.rmtree(src / "_build", ignore_errors=True)
    jb = Path(sys.executable).with_name("jupyter-book")
    cmd = [str(jb) if jb.exists() else "jupyter-book", "build", "--all", "-W", "--keep-going", str(src)]
    subprocess.run(cmd, check=True, env=env, cwd=src)
    shutil.rmtree(out / "html", ignore_errors=True)
    shutil.move(src / "_build" / "html", out / "html")


def _text(path: Path) -> str:
    """What a reader of the file sees: an HTML page's text, a notebook's cells, a file's text."""
    if path.suffix == ".html":
        return solutions.html_text(path.read_text())
    if path.suffix == ".ipynb":
        return "\n".join(c.source for c in nbformat.read(path, as_version=4).cells)
    return path.read_text()


@functools.lru_cache(maxsize=1)
def _telltales(pages: tuple) -> list[str]:
    """The solutions' telltale lines of the pages (path, mtime): read once per edit."""
    return solutions.telltales([jupytext.read(md) for md, _ in pages])


def check(out: Path) -> list[str]:
    """Every leak of a solution into the student notebooks or site, as 'file: line'."""
    found = []
    site = [p for p in (out / "html").rglob("*") if p.suffix in (".html", ".ipynb", ".md", ".txt")] \
        if (out / "html").is_dir() else []
    site_text = {p: _text(p) for p in site}
    if not site_text and not (out / "notebooks").is_dir():
        return [f"{out}: no student materials to check"]
    lines = _telltales(tuple((md, md.stat().st_mtime_ns) for md in toc_chapters()))
    files = {p: _text(p) for p in sorted((out / "notebooks").rglob("*.ipynb"))} | site_text
    for path, text in files.items():
        found += [f"{path}: {line}" for line in solutions.leaks(lines, text)]
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_build" / "student", help="output folder")
    parser.add_argument("--publish-at", default="student",
                        help="where <out>/notebooks is published in the repository (Colab links)")
    parser.add_argument("--cache", default=os.environ.get("REPRTUT_EXECUTION_CACHE"),
                        help="the jupyter-cache of executed pages (default $REPRTUT_EXECUTION_CACHE)")
    parser.add_argument("--no-site", action="store_true", help="write the notebooks only")
    parser.add_argument("--strict", action="store_true", help="fail if a page is not in the cache")
    parser.add_argument("--check", action="store_true", help="then look for solutions in the output")
    parser.add_argument("--check-only", action="store_true", help="look for solutions in <out>, build nothing")
    args = parser.parse_args(argv)
    if args.check_only:
        return _report(check(args.out))
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    t0 = time.perf_counter()
    notebooks = args.out / "notebooks"
    shutil.rmtree(notebooks, ignore_errors=True)
    for md in toc_chapters():
        path = notebooks / md.relative_to(ROOT).with_suffix(".ipynb")
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(student_notebook(md, config, args.publish_at), path)
    print(f"{len(toc_chapters())} student notebooks in {notebooks} ({time.perf_counter() - t0:.1f} s)")
    if not args.no_site:
        build_site(args.out.resolve(), config, args.publish_at, args.cache, args.strict)
        print(f"student site in {args.out / 'html'} ({time.perf_counter() - t0:.1f} s)")
    return _report(check(args.out)) if args.check else 0


def _report(found: list[str]) -> int:
    if found:
        print(f"{len(found)} solution lines found in the student materials:\n  " + "\n  ".join(found[:20]))
        return 1
    print("no solution in the student materials")
    return 0


if __name__ == "__main__":
    sys.exit(main())
