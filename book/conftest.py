"""Run the chapters (jupytext MyST-markdown notebooks) as tests with nbval.

nbval collects only .ipynb files; this hook hands it the .md chapters, read with jupytext.
The paired .ipynb files (for Colab) are not collected: they hold the same cells, and
tests/test_book.py checks that they stay in sync with the .md sources.
"""

from __future__ import annotations

from unittest import mock

import jupytext
import nbval.plugin

collect_ignore_glob = ["*.ipynb", "_build/*"]


class MarkdownNotebook(nbval.plugin.IPyNbFile):
    def collect(self):
        with mock.patch.object(nbval.plugin.nbformat, "read", lambda path, as_version: jupytext.read(path)):
            yield from super().collect()


def pytest_collect_file(file_path, parent):
    if file_path.suffix == ".md" and "jupytext" in file_path.read_text().split("\n---", 1)[0]:
        return MarkdownNotebook.from_parent(parent, path=file_path)
    return None


# Wall time per page (every cell; the kernel start, a few seconds, is not included), printed at the end of the run: the per-page
# budget of the quick profile is read off this table.
_page_seconds: dict[str, float] = {}


def pytest_runtest_logreport(report):
    page = report.nodeid.split("::", 1)[0]
    if page.endswith(".md"):
        _page_seconds[page] = _page_seconds.get(page, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter):
    if not _page_seconds:
        return
    terminalreporter.section("seconds per page")
    for page, seconds in _page_seconds.items():
        terminalreporter.write_line(f"{seconds:8.1f} s  {page}")
