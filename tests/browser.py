"""Open an HTML file in a real headless Chromium (Debian's package, driven by Playwright) and report what happened.

.ci/setup installs `chromium` from the system packages and `playwright` from PyPI; Playwright's own browser download
is not used. Where either is missing the calling test skips, except under CI (CI=true), where it fails.
"""

from __future__ import annotations

import io
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@dataclass
class PageVisit:
    requests: list[str] = field(default_factory=list)  # every URL the page asked for, the page itself included
    console_errors: list[str] = field(default_factory=list)  # console.error messages and uncaught page errors
    text: str = ""  # the rendered page's visible text
    tables: dict[str, list[list[str]]] = field(default_factory=dict)  # section id -> first table's cell texts
    screenshot_std: float = 0.0  # pixel standard deviation of a full-page screenshot (0..1): 0 is a blank page
    plot_std: list[float] = field(default_factory=list)  # the same for each inline SVG plot, as drawn


def chromium() -> str:
    path = shutil.which("chromium") or "/usr/bin/chromium"
    missing = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "the playwright package (pip install playwright)"
    if not Path(path).exists():
        missing = "Chromium (apt-get install chromium)"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"browser tests need {missing}; .ci/setup installs it")
        pytest.skip(f"browser tests need {missing}")
    return path


def _std(png: bytes) -> float:
    from matplotlib.image import imread

    return float(imread(io.BytesIO(png), format="png")[..., :3].std())


def visit(path: Path) -> PageVisit:
    """Load `path` (file://) and wait for it to settle; returns requests, errors, text, tables and pixel spread."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    out = PageVisit()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: out.requests.append(r.url))
            page.on("console", lambda m: out.console_errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: out.console_errors.append(str(e)))
            page.goto(path.absolute().as_uri(), wait_until="networkidle")
            out.text = page.inner_text("body")
            for section in page.query_selector_all("section[id]"):
                table = section.query_selector("table")
                if table is not None:
                    out.tables[section.get_attribute("id")] = [
                        [cell.inner_text().strip() for cell in row.query_selector_all("th, td")]
                        for row in table.query_selector_all("tr")]
            out.screenshot_std = _std(page.screenshot(full_page=True))
            out.plot_std = [_std(svg.screenshot()) for svg in page.query_selector_all(".plot svg")]
        finally:
            browser.close()
    return out


# Every element of a card must end inside it, unless it sits in a horizontal scroll container inside the card (a
# wide table in `.scroll` scrolls there); the page itself must not scroll sideways.
_OVERFLOW_JS = """() => {
  const bad = [];
  for (const card of document.querySelectorAll('section.card')) {
    const edge = card.getBoundingClientRect().right;
    for (const el of card.querySelectorAll('*')) {
      let scrolls = false;
      for (let up = el.parentElement; up && up !== card; up = up.parentElement) {
        if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) { scrolls = true; break; }
      }
      const box = el.getBoundingClientRect();
      if (!scrolls && box.width > 0 && box.right > edge + 1) {
        bad.push(`#${card.id} ${el.tagName.toLowerCase()}${el.className ? '.' + el.className : ''} ` +
                 `"${(el.textContent || '').trim().slice(0, 40)}" ends ${Math.round(box.right - edge)} px outside`);
      }
    }
  }
  const page = document.documentElement.scrollWidth;
  if (page > window.innerWidth + 1) bad.push(`the page is ${page} px wide in a ${window.innerWidth} px window`);
  return bad;
}"""


def overflowing(path: Path, widths: tuple[int, ...] = (900, 1400)) -> dict[int, list[str]]:
    """Per window width, what spills out of its card (or makes the page scroll sideways): empty lists when the
    page fits."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    out: dict[int, list[str]] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            for width in widths:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.goto(path.absolute().as_uri(), wait_until="networkidle")
                out[width] = page.evaluate(_OVERFLOW_JS)
                page.close()
        finally:
            browser.close()
    return out
