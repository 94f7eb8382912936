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
