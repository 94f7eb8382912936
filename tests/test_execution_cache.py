"""The site is rendered from the executions the page tests make (book/conftest.py).

A page whose cells all pass under nbval is stored in the jupyter-cache named by
``$REPRTUT_EXECUTION_CACHE`` with the outputs Jupyter Book's own executor would give (progress
lines updated in place, glue, a trailing ';' hiding a value, widget state); a page with a
failing cell is not stored, so the build would execute it again and fail as well.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"

PAGE = textwrap.dedent('''\
    ---
    jupytext:
      text_representation:
        extension: .md
        format_name: myst
        format_version: 0.13
    kernelspec:
      display_name: Python 3
      language: python
      name: python3
    ---

    # A page

    ```{code-cell} ipython3
    :tags: [hide-input]
    from IPython.display import display
    handle = display("starting", display_id=True)
    handle.update("the last line")
    print("printed")
    ```

    ```{code-cell} ipython3
    from myst_nb import glue
    glue("answer", 42, display=False)
    "a value the semicolon hides";
    ```

    The answer is {glue:text}`answer`.

    ```{code-cell} ipython3
    {body}
    ```
    ''')


def run_page(tmp_path: Path, body: str) -> tuple[subprocess.CompletedProcess, Path]:
    shutil.copy(BOOK / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "page.md").write_text(PAGE.replace("{body}", body))
    cache = tmp_path / "executed"
    env = {**os.environ, "REPRTUT_EXECUTION_CACHE": str(cache), "PYTEST_ADDOPTS": ""}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--nbval-lax", "--nbval-current-env", "page.md"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    return proc, cache


def cached_notebooks(cache: Path) -> list:
    return [nbformat.read(p, as_version=4) for p in sorted(cache.glob("executed/*/base.ipynb"))]


@pytest.mark.slow
def test_a_passing_page_is_stored_as_the_build_would_render_it(tmp_path):
    proc, cache = run_page(tmp_path, 'print("done")')
    assert proc.returncode == 0, proc.stdout[-2000:]
    [nb] = cached_notebooks(cache)
    first, second, third = [c for c in nb.cells if c.cell_type == "code"]
    texts = [o.get("text") or o.get("data", {}).get("text/plain") for o in first.outputs]
    assert texts == ["'the last line'", "printed\n"], texts  # updated in place, as nbclient does
    assert all(o.get("output_type") != "execute_result" for o in second.outputs)  # ';' hides it
    assert any("application/papermill.record+json" in o.get("data", {}) or
               "scrapbook" in str(o.get("metadata", {})) for o in second.outputs)  # the glue
    assert third.outputs[0]["text"] == "done\n"
    assert first.metadata.get("tags") == ["hide-input"]

    from jupyter_cache import get_cache
    from myst_nb.core.read import read_myst_markdown_notebook
    page = read_myst_markdown_notebook((tmp_path / "page.md").read_text())
    assert get_cache(str(cache)).match_cache_notebook(page) is not None  # the build finds it


@pytest.mark.slow
def test_a_page_with_a_failing_cell_is_not_stored(tmp_path):
    proc, cache = run_page(tmp_path, 'raise RuntimeError("this page is broken")')
    assert proc.returncode != 0 and "this page is broken" in proc.stdout
    assert cached_notebooks(cache) == []
