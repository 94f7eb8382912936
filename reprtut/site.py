"""Sphinx extension of the published book (``extra_extensions: [reprtut.site]`` in _config.yml):
the site's footer names the package version and commit it was built from.

A reader comparing a page with a notebook run on Colab (which installs the version the page
pins) can tell which code produced the page's numbers.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the checkout, for an editable install


def commit() -> str:
    """The checkout's short commit hash, with '+changes' when its tracked files differ."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, text=True, capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + ("+changes" if dirty else "")


def _add_footer(app, config) -> None:
    from . import __version__

    options = config.html_theme_options
    options["extra_footer"] = (options.get("extra_footer", "") +
                               f"<p>Built from reprtut {__version__}, commit "
                               f"<code>{commit()}</code>.</p>")


def setup(app):
    app.connect("config-inited", _add_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
