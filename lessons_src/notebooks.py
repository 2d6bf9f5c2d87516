"""Keep the course notebooks tidy: generated navigation cells and committed without outputs."""

from __future__ import annotations

import hashlib
import json
import re
import time
import tomllib
from pathlib import Path
from typing import Any

from lessons_src.paths import repo_root

NAV_TAG = "navigation"
CONTENTS_START, CONTENTS_END = "<!-- contents:start -->", "<!-- contents:end -->"
TIMINGS_START, TIMINGS_END = "<!-- timings:start -->", "<!-- timings:end -->"
OBJECTIVES_START, OBJECTIVES_END = "<!-- objectives:start -->", "<!-- objectives:end -->"
NOTES_START, NOTES_END = "<!-- notes:start -->", "<!-- notes:end -->"
NOTES_KEY = "instructor_notes"  # notebook metadata: Markdown lines an instructor reads, which a learner never sees
NOTES_PARTS = ("**Say:**", "**Where learners get stuck:**", "**Timing:**")


def course_notebooks() -> list[Path]:
    """Return the course notebooks in reading order: each lesson, then its exercises."""
    return sorted(
        (repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"), key=lambda p: (p.name[:2], "exercises" in p.stem)
    )


def title_of(path: Path) -> str:
    """Return the notebook's title: the first `# ` heading of its first non-navigation markdown cell."""
    for cell in json.loads(path.read_text())["cells"]:
        if cell["cell_type"] == "markdown" and NAV_TAG not in cell.get("metadata", {}).get("tags", []):
            for line in "".join(cell["source"]).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    raise ValueError(f"{path.name} has no '# Title' line in its first markdown cell")


def nav_markdown(path: Path) -> str:
    """Return the navigation line for a notebook: previous · contents · next."""
    books = course_notebooks()
    index = books.index(path.resolve())  # a relative path names the same notebook
    parts = []
    if index > 0:
        parts.append(f"< [{title_of(books[index - 1])}]({books[index - 1].name})")
    parts.append("[Contents](../README.md#contents)")
    if index < len(books) - 1:
        parts.append(f"[{title_of(books[index + 1])}]({books[index + 1].name}) >")
    return " | ".join(parts)


def _nav_cell(text: str, cell_id: str) -> dict:
    return {"cell_type": "markdown", "id": cell_id, "metadata": {"tags": [NAV_TAG]}, "source": [text]}


def _stable_id(cell: dict, index: int) -> str:
    return hashlib.sha1(f"{index}:{''.join(cell['source'])}".encode()).hexdigest()[:8]


def tidy(path: Path) -> dict:
    """Return the notebook with navigation cells at both ends, ids, slide breaks at headings, and no outputs."""
    notebook = json.loads(path.read_text())
    cells = [c for c in notebook["cells"] if NAV_TAG not in c.get("metadata", {}).get("tags", [])]
    for index, cell in enumerate(cells):
        cell.setdefault("id", _stable_id(cell, index))
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
        elif "".join(cell["source"]).startswith(("# ", "## ")):
            cell["metadata"]["slideshow"] = {"slide_type": "slide"}  # RISE: each section starts a slide
    nav = nav_markdown(path)
    notebook["cells"] = [_nav_cell(nav, "nav-top"), *cells, _nav_cell(nav, "nav-bottom")]
    notebook["metadata"].pop("widgets", None)
    notebook["nbformat"], notebook["nbformat_minor"] = 4, 5
    return notebook


def render(notebook: dict) -> str:
    """Return the notebook as the JSON text committed to git."""
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def untidy_notebooks() -> list[Path]:
    """Return the notebooks whose committed text differs from their tidied form."""
    return [p for p in course_notebooks() if p.read_text() != render(tidy(p))]


def tidy_all() -> list[Path]:
    """Tidy every course notebook in place, regenerate the README's contents, and return the files that changed."""
    changed = untidy_notebooks()
    for path in changed:
        path.write_text(render(tidy(path)))
    for document, regenerate in [
        (repo_root() / "README.md", readme_with_contents),
        (repo_root() / "docs" / "instructor_guide.md", guide_with_objectives),
    ]:
        text = document.read_text()
        if regenerate(text) != text:
            document.write_text(regenerate(text))
            changed.append(document)
    return changed


def github_repository() -> str:
    """Return the OWNER/NAME the Binder links use, from `[tool.lessons_src]` in pyproject.toml."""
    config = tomllib.loads((repo_root() / "pyproject.toml").read_text())
    return config["tool"]["lessons_src"]["github_repository"]


def binder_url(path: Path | None = None) -> str:
    """Return the mybinder.org launch link for the course, opening JupyterLab on `path` if given."""
    url = f"https://mybinder.org/v2/gh/{github_repository()}/HEAD"
    return f"{url}?urlpath=lab/tree/notebooks/{path.name}" if path else f"{url}?urlpath=lab/tree/notebooks"


def _minutes(path: Path) -> str:
    """Return "teach + practise" minutes from the lesson card's **Time:** line (its first two numbers)."""
    text = "\n".join(
        "".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"
    )
    match = re.search(r"\*\*Time:\*\*(.+)", text)
    numbers = re.findall(r"\d+", match.group(1)) if match else []
    return f"{numbers[0]} + {numbers[1]} min" if len(numbers) >= 2 else ""


def contents_table() -> str:
    """Return the README's contents table: one row per pair with its lesson, exercises, Binder link and time."""
    rows = [
        "| # | Lesson | Exercises | Binder | Time (teach + practise) |",
        "|---|--------|-----------|--------|------|",
    ]
    for lesson in (p for p in course_notebooks() if not p.stem.endswith("_exercises")):
        exercises = lesson.with_name(f"{lesson.stem}_exercises.ipynb")
        rows.append(
            f"| {lesson.name[:2]} | [{title_of(lesson).split(' · ', 1)[-1]}](notebooks/{lesson.name}) "
            f"| [exercises](notebooks/{exercises.name}) | [launch]({binder_url(lesson)}) | {_minutes(lesson)} |"
        )
    return "\n".join(rows)


def _between(text: str, start_marker: str, end_marker: str, inner: str) -> str:
    start, end = text.index(start_marker) + len(start_marker), text.index(end_marker)
    return f"{text[:start]}\n{inner}\n{text[end:]}"


def readme_with_contents(readme: str) -> str:
    """Return the README text with the generated contents table between its markers."""
    return _between(readme, CONTENTS_START, CONTENTS_END, contents_table())


def objectives_of(path: Path) -> list[str]:
    """Return the bullet lines under **What you will learn** in a lesson's card."""
    card = next(
        "".join(c["source"])
        for c in json.loads(path.read_text())["cells"]
        if "What you will learn" in "".join(c["source"])
    )
    lines = card.split("What you will learn", 1)[1].splitlines()[1:]
    bullets = []
    for line in lines:
        if not line.startswith("- "):
            break
        bullets.append(line)
    return bullets


def objectives_section() -> str:
    """Return the instructor guide's per-lesson objectives, taken from each lesson's card."""
    parts = []
    for lesson in (p for p in course_notebooks() if not p.stem.endswith("_exercises")):
        parts.append(f"**{title_of(lesson)}** ({_minutes(lesson)})\n" + "\n".join(objectives_of(lesson)))
    return "\n\n".join(parts)


def instructor_notes(path: Path) -> str:
    """Return a lesson's instructor notes, kept in the notebook's metadata (JupyterLab does not show them)."""
    return "".join(json.loads(path.read_text())["metadata"].get(NOTES_KEY, [])).strip()


def notes_section() -> str:
    """Return the instructor guide's notes, lesson by lesson, taken from each lesson notebook."""
    parts = []
    for lesson in (p for p in course_notebooks() if not p.stem.endswith("_exercises")):
        parts.append(f"### {title_of(lesson)}\n\n{instructor_notes(lesson) or '(no notes yet)'}")
    return "\n\n".join(parts)


def guide_with_objectives(guide: str) -> str:
    """Return the instructor guide with the generated objectives and instructor notes between their markers."""
    return _between(
        _between(guide, OBJECTIVES_START, OBJECTIVES_END, objectives_section()), NOTES_START, NOTES_END, notes_section()
    )


def write_timings(table: str) -> Path:
    """Put a measured Run All table into the instructor guide between its markers and return the guide's path."""
    guide = repo_root() / "docs" / "instructor_guide.md"
    guide.write_text(_between(guide.read_text(), TIMINGS_START, TIMINGS_END, table))
    return guide


def execute(path: Path, timeout: int = 300) -> tuple[Any, float]:
    """Execute a notebook in a fresh kernel, as Run All does; return it executed and the seconds its cells took.

    A cell tagged `raises-exception` may fail, as it does in the lesson; any other error raises.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    with client.setup_kernel():
        started = time.perf_counter()
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
        return notebook, time.perf_counter() - started


def run_all_seconds(path: Path, timeout: int = 300) -> float:
    """Execute a notebook in a fresh kernel, as Run All does, and return the seconds its cells took."""
    return execute(path, timeout)[1]
