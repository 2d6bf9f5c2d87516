"""Every exercises notebook, run top to bottom as committed, grades each exercise as unsolved, never as broken."""

import re

import nbformat
import pytest
from nbclient import NotebookClient

from lessons_src.exercises import exercises
from lessons_src.notebooks import course_notebooks

EXERCISE_NOTEBOOKS = [path for path in course_notebooks() if path.stem.endswith("_exercises")]
SPOT_THE_BUG = {"10"}  # pairs whose exercises give working-looking code with one bug, graded ❌ until fixed


def _printed(cell: dict) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("name") == "stdout")


@pytest.mark.parametrize("path", EXERCISE_NOTEBOOKS, ids=lambda path: path.stem)
def test_the_committed_notebook_runs_and_every_check_says_not_solved(course_server, path):
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises on any error, except in cells tagged raises-exception
    printed = "\n".join(_printed(cell) for cell in notebook.cells if cell.cell_type == "code")
    pair = path.name[:2]
    verdict, other = ("❌", "⏳") if pair in SPOT_THE_BUG else ("⏳", "❌")
    unsolved = {int(n) for n in re.findall(rf"{verdict} Exercise {pair}\.(\d+) ", printed)}
    expected = {exercise.number for exercise in exercises(pair).exercises}
    assert unsolved == expected, f"exercises graded {verdict}: {sorted(unsolved)}, expected {sorted(expected)}"
    for mark in ("✅", other, "⚠️", "raised", "Traceback"):
        assert mark not in printed, f"{path.name} printed {mark!r} as committed:\n{printed}"
