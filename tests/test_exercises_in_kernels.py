"""Each pair's exercises notebook in a real kernel (an event loop runs, heartbeats on): run as committed, every check
grades its exercise as not solved (spot-the-bug pairs: ❌ with the evidence), never as broken; then, in the same
kernel, every reference solution passes twice in a row (whatever the first run left behind).

One class per pair, so parallel workers take the pairs one by one (`--dist=loadscope`).
"""

from __future__ import annotations

import re

import nbformat
import pytest
from nbclient import NotebookClient

from lessons_src.exercises import available_pairs, exercises
from lessons_src.notebooks import course_notebooks

SPOT_THE_BUG = {"10"}  # pairs whose exercises give working-looking code with one bug, graded ❌ until fixed
REFERENCES = (
    "for _ in range(2):\n    for exercise in ex.exercises:\n        ex.check(exercise.number, exercise.answer())\n"
)


def _printed(cell: dict) -> str:
    return "".join(output.get("text", "") for output in cell.get("outputs", []) if output.get("name") == "stdout")


@pytest.fixture(scope="class")
def run(request: pytest.FixtureRequest) -> nbformat.NotebookNode:
    """Run the committed exercises notebook of the class's pair, then its reference solutions, in one kernel."""
    from lessons_src import setup

    pair = request.cls.pair
    setup(quiet=True)
    path = next(p for p in course_notebooks() if p.name.startswith(pair) and p.stem.endswith("_exercises"))
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(REFERENCES))
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()  # raises on any error, except in cells tagged raises-exception
    return notebook


class _PairInAKernel:
    """The committed exercises notebook of `pair`, then its reference solutions, in one notebook kernel."""

    pair: str

    def test_the_committed_notebook_grades_every_exercise_unsolved(self, run):
        printed = "\n".join(_printed(cell) for cell in run.cells[:-1] if cell.cell_type == "code")
        verdict, other = ("❌", "⏳") if self.pair in SPOT_THE_BUG else ("⏳", "❌")
        graded = {int(n) for n in re.findall(rf"{verdict} Exercise {self.pair}\.(\d+) ", printed)}
        expected = {exercise.number for exercise in exercises(self.pair).exercises}
        assert graded == expected, f"exercises graded {verdict}: {sorted(graded)}, expected {sorted(expected)}"
        for mark in ("✅", other, "⚠️", "raised", "Traceback"):
            assert mark not in printed, f"pair {self.pair} printed {mark!r} as committed:\n{printed}"

    def test_every_reference_solution_passes_twice_in_the_kernel(self, run):
        printed = _printed(run.cells[-1])
        passed = printed.count("✅")
        assert passed == 2 * len(exercises(self.pair).exercises) and "❌" not in printed and "⚠️" not in printed, printed


for _pair in sorted(available_pairs()):
    globals()[f"TestPair{_pair}"] = type(f"TestPair{_pair}", (_PairInAKernel,), {"pair": _pair})
