"""A real browser: JupyterLab in headless Chromium runs every cell of the 01 lesson with no unplanned error."""

from __future__ import annotations

import shutil

import pytest

from lessons_src.browser import KERNEL_IDLE, NOTEBOOK_REPORT
from lessons_src.paths import repo_root
from tests.chromium import CHROMIUM, CHROMIUM_ARGS, MISSING, WHY_MISSING

SCREENSHOT = repo_root() / "artifacts" / "browser_01_flows_and_tasks.png"

if MISSING:
    pytest.skip(WHY_MISSING, allow_module_level=True)


@pytest.fixture
def lesson_in_lab(course_server, tmp_path, jupyter_lab):
    """JupyterLab on a copy of the 01 lesson (so an autosave never writes outputs into the repository)."""
    shutil.copy(repo_root() / "notebooks" / "01_flows_and_tasks.ipynb", tmp_path)
    url = jupyter_lab("--expose-app-in-browser", f"--notebook-dir={tmp_path}")
    return f"{url}lab/tree/01_flows_and_tasks.ipynb?token={jupyter_lab.token}"


def test_the_01_lesson_runs_all_cells_in_a_real_browser(lesson_in_lab):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(lesson_in_lab)
        page.wait_for_function(KERNEL_IDLE, timeout=90_000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_function(
            f"() => {{ const r = ({NOTEBOOK_REPORT})(); return r.unrun === 0 && r.busy === 'idle'; }}",
            timeout=180_000,
            polling=500,
        )
        report = page.evaluate(NOTEBOOK_REPORT)
        news_pop_ups = page.get_by_text("official Jupyter news").count()  # off in jupyterlab/overrides.json
        page.locator(".jp-RenderedImage img").first.scroll_into_view_if_needed()
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=False)
        browser.close()
    assert report["cells"] > 10 and report["unrun"] == 0
    assert report["unplanned"] == [], report
    assert report["images"] >= 3, report  # the lesson's measured plots rendered as images
    assert news_pop_ups == 0, "JupyterLab asked about Jupyter news over the lesson: course.py install_lab_settings"
