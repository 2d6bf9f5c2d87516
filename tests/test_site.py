"""The course website: pages link to each other and to launch links, and the 01 lesson, executed against a real
course server, renders in headless Chromium with every figure it drew."""

from __future__ import annotations

import re

import pytest
import yaml

from lessons_src import site
from lessons_src.notebooks import course_notebooks
from lessons_src.paths import repo_root
from tests.chromium import CHROMIUM, CHROMIUM_ARGS, MISSING, WHY_MISSING


def test_links_to_notebooks_documents_and_the_readme_point_at_site_pages():
    text = (
        '<a href="02_retries.ipynb">x</a> <a href="../README.md#contents">c</a> '
        '<a href="notebooks/01_flows_and_tasks.ipynb#setup">n</a> <a href="../docs/demo_api.md">d</a> '
        '<a href="docs/instructor_guide.md#timings">g</a> <a href="https://example.org/a.ipynb">e</a>'
    )
    assert site.relink(text) == (
        '<a href="02_retries.html">x</a> <a href="index.html#contents">c</a> '
        '<a href="01_flows_and_tasks.html#setup">n</a> <a href="demo_api.html">d</a> '
        '<a href="instructor_guide.html#timings">g</a> <a href="https://example.org/a.ipynb">e</a>'
    )


def test_the_index_lists_every_lesson_and_exercises_page_and_every_document():
    index = site.index_page()
    for notebook in course_notebooks():
        assert f'href="{site.page_name(notebook)}"' in index, notebook.name
    for document in sorted((repo_root() / "docs").glob("*.md")):
        assert f'href="{site.page_name(document)}"' in index, document.name
    relative = re.findall(r'href="(?!https?:)[^"]*\.(?:ipynb|md)[#"]', index)
    assert 'id="contents"' in index and not relative, f"links still point at repository files: {relative}"


def test_the_pages_workflow_builds_the_site_and_publishes_it_from_main():
    workflow = yaml.safe_load((repo_root() / ".github" / "workflows" / "site.yml").read_text())
    assert workflow[True]["push"]["branches"] == ["main"], workflow[True]  # YAML reads the key `on` as True
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]
    runs = " ".join(step.get("run", "") for step in build["steps"])
    assert "course.py site" in runs, runs
    uploads = [s for s in build["steps"] if s.get("uses", "").startswith("actions/upload-pages-artifact")]
    assert uploads and uploads[0]["with"]["path"] == "_site", build["steps"]
    assert any(s.get("uses", "").startswith("actions/deploy-pages") for s in deploy["steps"]), deploy
    assert workflow["permissions"] == {"contents": "read", "pages": "write", "id-token": "write"}


def test_an_unknown_pair_is_refused_before_anything_starts(capsys):
    from lessons_src.cli import main

    assert main(["site", "--pairs", "1"]) == 2
    assert "no pair 1; pairs are two digits" in capsys.readouterr().err


def test_the_readme_links_to_the_published_site():
    assert site.pages_url() in (repo_root() / "README.md").read_text()


@pytest.fixture(scope="module")
def built_01(tmp_path_factory) -> site.BuiltSite:
    """The site of the 01 pair, its notebooks executed against this test process's own course server."""
    from lessons_src import setup

    setup(quiet=True)
    root = tmp_path_factory.mktemp("site")
    return site.build_site(["01"], folder=root / "_site", executed=root / "executed", say=lambda _: None)


def test_every_figure_of_the_executed_01_lesson_is_on_its_page(built_01):
    lesson = built_01.folder / "01_flows_and_tasks.html"
    drawn = site.figures_drawn(built_01.folder.parent / "executed" / "01_flows_and_tasks.ipynb")
    assert drawn >= 3, f"the 01 lesson drew {drawn} figures when executed, expected at least 3"
    assert site.count_figures(lesson) == drawn, f"page has {site.count_figures(lesson)} figures, notebook drew {drawn}"
    page = lesson.read_text()
    assert "mybinder.org" in page and "codespaces.new" in page, "the lesson page has no launch links"
    assert "What you will learn" in page and "Time:" in page, "the lesson card is missing from the page"
    relative = re.findall(r'href="(?!https?:)[^"]*\.(?:ipynb|md)[#"]', page)
    assert not relative, f"links still point at repository files: {relative}"


def test_files_the_documents_link_to_are_published_beside_them(built_01):
    for folder in (d for d in (repo_root() / "docs").iterdir() if d.is_dir()):
        for path in folder.rglob("*"):
            if path.is_file():
                copy = built_01.folder / path.relative_to(repo_root() / "docs")
                assert copy.read_bytes() == path.read_bytes(), f"{copy} is missing or differs"


def test_the_exercises_page_is_unsolved_and_says_checks_need_a_live_kernel(built_01):
    page = (built_01.folder / "01_flows_and_tasks_exercises.html").read_text()
    assert site.EXERCISES_NOTE in page
    assert "⏳" in page and "✅" not in page and "Traceback" not in page, "exercises shown solved or broken"


@pytest.mark.skipif(MISSING, reason=WHY_MISSING)
def test_chromium_renders_the_01_lesson_page_with_its_figures(built_01):
    from playwright.sync_api import sync_playwright

    lesson = built_01.folder / "01_flows_and_tasks.html"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(lesson.as_uri())
            page.wait_for_load_state("load")
            shown = page.evaluate(
                "() => [...document.querySelectorAll('img')]"
                ".filter(i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100).length"
            )
            title = page.title()
            (repo_root() / "artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(repo_root() / "artifacts" / "site_01_flows_and_tasks.png"))
        finally:
            browser.close()
    assert shown == site.count_figures(lesson), f"Chromium showed {shown} figures of {site.count_figures(lesson)}"
    assert title.startswith("01 · Flows and tasks"), title
