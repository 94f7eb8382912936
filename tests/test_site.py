"""The built site as a reader sees it, in headless Chromium (Debian's ``chromium`` and
``chromium-driver``; Selenium uses the system driver and downloads nothing).

For every page of ``$REPRTUT_SITE`` (default ``_build/html``): it loads without a console
error; every image has loaded; the maths is rendered by MathJax served from the site itself;
internal links and their anchors resolve; the Colab button names a notebook of this
repository; a solution dropdown opens when clicked; every static slider
(``reprtut.viz.static_slider``) shows another frame when moved. Each page gets a full-page
screenshot at a desktop and a phone width in ``_build/screenshots/`` and its size (HTML and
images) is printed. The checks also run on a small synthetic site, once whole and once
broken (an image missing, a slider whose frames do not change), which they must catch.

Without a built site or a browser the tests are skipped; CI runs them after the book build
with ``REPRTUT_SITE_REQUIRED=1``, which turns a skip into a failure.
"""

from __future__ import annotations

import base64
import functools
import http.server
import os
import re
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SITE = Path(os.environ.get("REPRTUT_SITE", ROOT / "_build" / "html"))
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM, DRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
REQUIRED = os.environ.get("REPRTUT_SITE_REQUIRED") == "1"
WIDTHS = {"desktop": 1280, "phone": 390}


def _skip(reason: str):
    if REQUIRED:
        pytest.fail(f"REPRTUT_SITE_REQUIRED=1 but {reason}")
    pytest.skip(reason)


def _pages() -> list[Path]:
    return sorted((SITE / "book").glob("*.html")) if SITE.is_dir() else []


@pytest.fixture
def browser():
    """A fresh headless Chromium per test: full-page screenshots of long pages are large, and a
    renderer that has taken a dozen of them may crash on the next page."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _skip("selenium is not installed (pip install selenium)")
    if not (CHROMIUM.exists() and DRIVER.exists()):
        _skip(f"no {CHROMIUM} or {DRIVER} (apt-get install chromium chromium-driver)")
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--hide-scrollbars", f"--window-size={WIDTHS['desktop']},900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(DRIVER)))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@functools.lru_cache(maxsize=None)
def _server(root: Path) -> str:
    """A local HTTP server of ``root`` (a browser treats file:// pages as opaque origins)."""
    handler = functools.partial(_Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}/"


def _ids(path: Path) -> set[str]:
    return set(re.findall(r'\sid="([^"]+)"', path.read_text(errors="replace")))


def _links(driver, root: Path, base: str) -> list[str]:
    """Internal links of the page whose file or anchor does not exist under ``root``."""
    broken = []
    for href in set(driver.execute_script(
            "return Array.from(document.querySelectorAll('a[href]'), a => a.href)")):
        if not href.startswith(base):
            continue
        url = urllib.parse.urlsplit(href)
        path = root / urllib.parse.unquote(url.path.lstrip("/"))
        if path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            broken.append(href)
        elif url.fragment and path.suffix == ".html" and \
                urllib.parse.unquote(url.fragment) not in _ids(path):
            broken.append(href)
    return broken


def _wait_for_maths(driver) -> None:
    driver.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const wait = (n) => {
            if (window.MathJax && MathJax.startup && MathJax.startup.promise)
                MathJax.startup.promise.then(() => done(true), () => done(false));
            else if (n > 0) setTimeout(() => wait(n - 1), 100);
            else done(false);
        };
        wait(document.querySelector('.math') ? 100 : 0);""")


def _screenshot(driver, name: str, width: int) -> Path:
    """A full-page PNG at ``width`` CSS pixels (Chrome's DevTools protocol)."""
    metrics = {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    height = min(driver.execute_script("return document.documentElement.scrollHeight"), 30000)
    # A viewport as tall as the page: the theme's sticky header is drawn once, at the top, not
    # again at every seam of a capture beyond the viewport.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {**metrics, "height": height})
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    path.write_bytes(base64.b64decode(shot["data"]))
    driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    return path


def _move_sliders(driver) -> list[str]:
    """Each static slider's ranges moved one step; the names of those whose frame stayed."""
    from selenium.webdriver.common.keys import Keys

    stuck = []
    for s, slider in enumerate(driver.find_elements("css selector", ".reprtut-slider")):
        img = slider.find_element("css selector", "img")
        for r, rng in enumerate(slider.find_elements("css selector", "input[type=range]")):
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", rng)
            before = img.get_attribute("src")
            rng.send_keys(Keys.ARROW_RIGHT)
            loaded = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img)
            if img.get_attribute("src") == before or not loaded:
                stuck.append(f"slider {s} range {r}")
    return stuck


def _open_dropdown(driver) -> bool | None:
    """Clicks the first solution dropdown; whether its body shows (None: the page has none)."""
    dropdowns = driver.find_elements("css selector", "div.solution.dropdown")
    if not dropdowns:
        return None
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    box = dropdowns[0]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", box)
    body = box.find_element("css selector", ".admonition-title ~ *")
    wait = WebDriverWait(driver, 5, poll_frequency=0.1)
    try:  # sphinx-togglebutton hides the body once its script has run
        wait.until(lambda _: not body.is_displayed())
        # The chevron: the title's text may hold a link to the exercise.
        buttons = box.find_elements("css selector", ".admonition-title button")
        (buttons[0] if buttons else box.find_element("css selector", ".admonition-title")).click()
        wait.until(lambda _: body.is_displayed())
    except TimeoutException:
        return False
    return True


def inspect(driver, root: Path, page: Path, repo: Path = ROOT) -> dict:
    """Every check of one page: the problems found (empty: none) and what was measured."""
    base = _server(root)
    driver.get_log("browser")  # drop what earlier pages logged
    driver.get(base + page.relative_to(root).as_posix())
    _wait_for_maths(driver)
    problems = []
    # The browser asks the server for /favicon.ico on its own; the site does not link one.
    errors = [e["message"] for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "/favicon.ico" not in e["message"]]
    if errors:
        problems.append(f"console errors: {errors[:3]}")
    images = driver.execute_script("return Array.from(document.images, i => [i.currentSrc || i.src,"
                                   " i.complete && i.naturalWidth > 0])")
    problems += [f"image not loaded: {src[:80]}" for src, ok in images if not ok]
    maths = driver.execute_script("""
        const m = document.querySelectorAll('.math');
        const raw = Array.from(m).filter(e => !e.querySelector('mjx-container')).length;
        return [m.length, raw, document.querySelectorAll('mjx-container').length]""")
    if maths[1]:
        problems.append(f"{maths[1]} of {maths[0]} formulas not rendered by MathJax")
    broken = _links(driver, root, base)
    problems += [f"broken link: {href}" for href in broken]
    colab = driver.execute_script("return Array.from(document.querySelectorAll('a[href*=\"colab.research\"]'),"
                                  " a => a.href)")
    has_code = bool(driver.find_elements("css selector", "div.cell"))
    notebook = None
    for href in colab:
        notebook = urllib.parse.urlsplit(href).path.split("/blob/", 1)[-1].split("/", 1)[-1]
        if not (repo / notebook).is_file():
            problems.append(f"the Colab link names {notebook}, not in the repository")
    if has_code and not colab:
        problems.append("no Colab link on a page with code")
    dropdown = _open_dropdown(driver)
    if dropdown is False:
        problems.append("a solution dropdown did not open when clicked")
    sliders = len(driver.find_elements("css selector", ".reprtut-slider"))
    problems += [f"{s} shows the same frame after moving" for s in _move_sliders(driver)]
    local = {urllib.parse.unquote(urllib.parse.urlsplit(src).path.lstrip("/"))
             for src, _ in images if src.startswith(base)}
    size = page.stat().st_size + sum((root / p).stat().st_size for p in local if (root / p).is_file())
    return {"problems": problems, "images": len(images), "maths": maths[0], "links_broken": len(broken),
            "colab": notebook, "dropdown": dropdown, "sliders": sliders, "bytes": size}


def _report(page: str, r: dict) -> str:
    return (f"{page}: {'OK' if not r['problems'] else 'FAIL'}; images {r['images']}, formulas "
            f"{r['maths']}, broken links {r['links_broken']}, colab {r['colab'] or '-'}, dropdown "
            f"{'-' if r['dropdown'] is None else 'opens' if r['dropdown'] else 'stuck'}, sliders "
            f"{r['sliders']}, size {r['bytes']:,} bytes")


@pytest.mark.parametrize("name", [p.name for p in _pages()] or ["(no site)"])
def test_page(browser, name):
    """One page of the built site passes every check; its screenshots are saved."""
    if not _pages():
        _skip(f"no built site in {SITE} (jupyter-book build .)")
    page = SITE / "book" / name
    result = inspect(browser, SITE, page)
    for label, width in WIDTHS.items():
        _screenshot(browser, f"{page.stem}-{label}.png", width)
    line = _report(name, result)
    print("\n" + line)
    with open(SHOTS / "report.txt", "a") as out:
        out.write(line + "\n")
    assert not result["problems"], result["problems"]


def _synthetic_site(root: Path) -> Path:
    """A one-page site with an image, an internal anchor and a static slider of two frames."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reprtut import viz

    def draw(k):
        fig, ax = plt.subplots(figsize=(1, 1))
        ax.imshow([[k, 1 - k]], cmap="gray", vmin=0, vmax=1)
        return fig

    (root / "book").mkdir(parents=True)
    fig = draw(0)
    fig.savefig(root / "book" / "figure.png")
    plt.close(fig)
    slider = viz.static_slider(draw, {"k": [0, 1]}).data
    page = root / "book" / "page.html"
    page.write_text(f'<html><body><h1 id="top">A page</h1><a href="#top">top</a>'
                    f'<img src="figure.png">{slider}</body></html>')
    return page


def test_checks_pass_on_a_whole_page(browser, tmp_path):
    page = _synthetic_site(tmp_path)
    result = inspect(browser, tmp_path, page)
    assert result["problems"] == [] and result["sliders"] == 1 and result["images"] == 2, result


def test_checks_catch_a_missing_image_and_a_stuck_slider(browser, tmp_path):
    """The broken variant: the figure's file removed, the slider's second frame a copy of its first."""
    page = _synthetic_site(tmp_path)
    (tmp_path / "book" / "figure.png").unlink()
    html = page.read_text()
    frames = re.search(r'frames = (\{.*?\})', html).group(1)
    first = re.search(r'"0": "([^"]+)"', frames).group(1)
    page.write_text(html.replace(frames, '{"0": "%s", "1": "%s"}' % (first, first)))
    result = inspect(browser, tmp_path, page)
    kinds = " | ".join(result["problems"])
    assert "image not loaded" in kinds and "same frame" in kinds, result
    assert not (tmp_path / "book" / "figure.png").exists()
    shutil.rmtree(tmp_path / "book")
