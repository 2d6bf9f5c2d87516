"""The repository's own rules: pins agree, notebooks are tidy and paired, and the README links every notebook."""

import json
import re
import subprocess
import sys
from importlib.metadata import version

import yaml

from lessons_src import notebooks
from lessons_src.doctor import pinned_versions
from lessons_src.exercises import available_pairs
from lessons_src.paths import repo_root

ROOT = repo_root()
ANNOUNCED = re.compile(r"next cell fails \**on purpose", re.IGNORECASE)


def test_requirements_and_environment_pin_the_same_versions():
    requirements = pinned_versions()
    environment = pinned_versions(ROOT / "environment.yml")
    assert requirements == environment


def test_every_prefect_version_the_course_names_is_the_pinned_and_installed_one():
    pinned = pinned_versions()["prefect"]
    assert version("prefect") == pinned, (
        f"installed prefect {version('prefect')}, pinned {pinned}: run python course.py install"
    )
    texts = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *notebooks.course_notebooks()]
    for path in texts:
        named = set(re.findall(r"Prefect (3\.\d+\.\d+)", path.read_text(), re.IGNORECASE))
        assert named <= {pinned}, f"{path.name} names Prefect {sorted(named)}; the course pins and checks {pinned}"


def test_the_installed_set_has_no_dependency_conflict():
    result = subprocess.run([sys.executable, "-m", "pip", "check"], capture_output=True, text=True)
    assert result.returncode == 0, f"pip check found conflicts in the pinned set:\n{result.stdout}{result.stderr}"


def test_every_pin_agrees_with_the_frozen_constraints():
    constraints = pinned_versions(ROOT / "constraints.txt")
    for name, pinned in pinned_versions().items():
        assert constraints.get(name) == pinned, name


def test_committed_notebooks_are_tidy():
    assert notebooks.untidy_notebooks() == [], "run: python -m lessons_src notebooks tidy"


def test_every_lesson_has_an_exercises_notebook_and_an_exercise_module():
    names = {p.name for p in notebooks.course_notebooks()}
    lessons = sorted(n for n in names if not n.endswith("_exercises.ipynb"))
    assert lessons
    for lesson in lessons:
        assert lesson.replace(".ipynb", "_exercises.ipynb") in names
        assert lesson[:2] in available_pairs(), f"no lessons_src/exercises/e{lesson[:2]}_*.py"


def test_every_notebook_starts_with_setup_and_never_edits_sys_path():
    for path in notebooks.course_notebooks():
        cells = json.loads(path.read_text())["cells"]
        first_code = next(c for c in cells if c["cell_type"] == "code")
        assert "setup(" in "".join(first_code["source"]), path.name
        for cell in cells:
            if cell["cell_type"] == "code" and "sys.path" in "".join(cell["source"]):
                raise AssertionError(f"{path.name}: import lessons_src as a package, never through sys.path")


def test_every_cell_that_fails_on_purpose_is_tagged_and_announced():
    for path in notebooks.course_notebooks():
        cells = json.loads(path.read_text())["cells"]
        for index, cell in enumerate(cells):
            tagged = "raises-exception" in cell.get("metadata", {}).get("tags", [])
            before = "".join(cells[index - 1]["source"]) if index else ""
            announced = cells[index - 1]["cell_type"] == "markdown" and ANNOUNCED.search(before) is not None
            assert tagged == (announced and cell["cell_type"] == "code"), (
                f"{path.name} cell {index}: a cell that fails on purpose carries the raises-exception tag and "
                f"follows a markdown cell saying 'the next cell fails on purpose' (and why); tagged: {tagged}, "
                f"announced: {announced}"
            )


def test_lessons_carry_the_card_and_the_recap():
    for path in notebooks.course_notebooks():
        if path.name.endswith("_exercises.ipynb"):
            continue
        text = path.read_text()
        for heading in ("What you will learn", "Prerequisites", "Time:", "Recap", "Next"):
            assert heading in text, f"{path.name} lacks '{heading}'"


def test_readme_links_every_notebook_and_every_link_exists():
    readme = (ROOT / "README.md").read_text()
    assert notebooks.readme_with_contents(readme) == readme, "run: python -m lessons_src notebooks tidy"
    links = set(re.findall(r"\]\((notebooks/[^)]+\.ipynb)\)", readme))
    assert links == {f"notebooks/{p.name}" for p in notebooks.course_notebooks()}
    assert all((ROOT / link).exists() for link in links)


def test_binder_links_use_the_configured_repository_and_open_existing_notebooks():
    readme = (ROOT / "README.md").read_text()
    slug = notebooks.github_repository()
    launches = re.findall(r"https://mybinder\.org/v2/gh/([^/]+/[^/]+)/HEAD\?urlpath=lab/tree/([^)\s]+)", readme)
    assert launches and all(found == slug for found, _ in launches)
    codespaces = re.findall(r"https://codespaces\.new/([^/?]+/[^/?)]+)", readme)
    assert codespaces and all(found == slug for found in codespaces), codespaces
    for _, target in launches:
        assert (ROOT / target).exists(), target


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    for command in ("python course.py test", "python course.py\n", "make test", "make course"):
        assert command in readme, command
    assert "make test" in (ROOT / ".ci" / "run").read_text() and "course.py test" in (ROOT / "Makefile").read_text()
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    for name, job in workflow["jobs"].items():
        commands = [step["run"] for step in job["steps"] if "run" in step]
        assert any(c.startswith("python course.py test") for c in commands), f"job {name} runs {commands}"


def test_ci_covers_linux_macos_and_windows_on_the_lowest_and_highest_supported_python():
    from lessons_src.course import SUPPORTED_PYTHONS

    jobs = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())["jobs"]
    lowest, highest = (f"{v[0]}.{v[1]}" for v in (min(SUPPORTED_PYTHONS), max(SUPPORTED_PYTHONS)))
    for job, systems in (("full", {"ubuntu-latest"}), ("smoke", {"macos-latest", "windows-latest"})):
        matrix = jobs[job]["strategy"]["matrix"]
        assert set(matrix["os"]) == systems and set(matrix["python"]) == {lowest, highest}, (job, matrix)


def test_the_drift_guard_runs_the_course_on_the_newest_prefect_every_week():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "prefect-latest.yml").read_text())
    job = workflow["jobs"]["notebooks-on-newest-prefect"]
    commands = "\n".join(step.get("run", "") for step in job["steps"])
    assert workflow[True]["schedule"], "a weekly schedule"  # YAML 1.1 reads the key `on` as True
    assert "--upgrade prefect prefect-dask fastapi sqlalchemy" in commands and "prefect==" in commands  # unpinned
    assert "lessons_src test" in commands
    assert "continue-on-error" not in job, "a failure must show red"


def test_navigation_points_both_ways():
    books = notebooks.course_notebooks()
    for before, after in zip(books, books[1:], strict=False):
        assert f"]({after.name}) >" in notebooks.nav_markdown(before)
        assert f"< [{notebooks.title_of(before)}]({before.name})" in notebooks.nav_markdown(after)


def test_the_instructor_guide_lists_every_lessons_objectives():
    guide = (ROOT / "docs" / "instructor_guide.md").read_text()
    assert notebooks.guide_with_objectives(guide) == guide, "run: python -m lessons_src notebooks tidy"


def test_every_lesson_has_instructor_notes_in_three_parts_that_learners_do_not_see():
    for lesson in (p for p in notebooks.course_notebooks() if not p.stem.endswith("_exercises")):
        notes = notebooks.instructor_notes(lesson)
        where = [notes.find(part) for part in notebooks.NOTES_PARTS]
        assert -1 not in where and where == sorted(where), f"{lesson.name}: notes need {notebooks.NOTES_PARTS} in order"
        cells = "".join("".join(c["source"]) for c in json.loads(lesson.read_text())["cells"])
        assert notebooks.NOTES_PARTS[1] not in cells, f"{lesson.name}: instructor notes belong in metadata, not a cell"


def test_the_instructor_guide_has_a_measured_time_for_every_notebook():
    guide = (ROOT / "docs" / "instructor_guide.md").read_text()
    table = guide.split(notebooks.TIMINGS_START)[1].split(notebooks.TIMINGS_END)[0]
    for path in notebooks.course_notebooks():
        assert re.search(rf"\| {re.escape(path.name)} \| \d+\.\d \|", table), (
            "run: python -m lessons_src notebooks time"
        )
