"""Sphinx extension of the published book (``extra_extensions: [reprtut.site]`` in _config.yml):
the site's footer names the package version and commit it was built from, and every page with
a paired notebook has a Colab button.

A reader comparing a page with a notebook run on Colab (which installs the version the page
pins) can tell which code produced the page's numbers. The theme adds launch buttons only to
pages it recognises as notebooks, which a jupytext page is not once myst-nb has read it; the
button here opens the page's paired ``.ipynb`` (the notebook without outputs, made for Colab).
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


def colab_url(app, pagename: str) -> str | None:
    """The Colab address of the page's paired notebook, or None (no notebook, no GitHub repository)."""
    source = Path(app.env.doc2path(pagename))
    options = app.config.html_theme_options
    colab = options.get("launch_buttons", {}).get("colab_url", "").strip("/")
    repository = options.get("repository_url", "").rstrip("/")
    if not (colab and repository.startswith("https://github.com/") and source.with_suffix(".ipynb").exists()):
        return None
    path = source.with_suffix(".ipynb").relative_to(Path(app.srcdir)).as_posix()
    branch = options.get("repository_branch", "main")
    return f"{colab}/github/{repository.removeprefix('https://github.com/')}/blob/{branch}/{path}"


def _add_colab_button(app, pagename, templatename, context, doctree) -> None:
    buttons = context.get("header_buttons")
    url = colab_url(app, pagename) if doctree is not None else None
    if buttons is None or url is None or any("colab" in str(b) for b in buttons):
        return
    buttons.append({"type": "group", "tooltip": "Launch interactive content", "icon": "fas fa-rocket",
                    "label": "launch-buttons",
                    "buttons": [{"type": "link", "text": "Colab", "tooltip": "Launch on Colab",
                                 "icon": "_static/images/logo_colab.png", "url": url}]})


def _drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    # sphinx-thebe and sphinx-togglebutton add their inline configuration scripts after the
    # builder has started, and they reach the page twice; the second `const THEBE_JS_URL` is a
    # SyntaxError in the reader's console. Each script is kept once, at its first place.
    seen, kept = set(), []
    for js in context.get("script_files", []):
        # An inline script is registered once with filename None and once with '' (Sphinx
        # re-reads the registry): the same script to a browser.
        key = (getattr(js, "filename", js) or "", repr(sorted(getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    context["script_files"] = kept


def _default_mode(app, pagename, templatename, context, doctree) -> None:
    # The theme reads its light/dark mode from `default_mode` in the page context; left empty,
    # a first visit logs "Got invalid theme mode" as an error before falling back to auto.
    if not context.get("default_mode"):
        context["default_mode"] = "auto"


def setup(app):
    app.connect("config-inited", _add_footer)
    # After the theme's own launch buttons (501), before it renders the header buttons (501 too,
    # registered later): a handler with the same priority runs in registration order.
    app.connect("html-page-context", _add_colab_button, priority=501)
    app.connect("html-page-context", _drop_repeated_scripts, priority=900)
    app.connect("html-page-context", _default_mode)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
