"""Every reference solution passes its check inside a real notebook kernel (an event loop runs), twice in a row."""

import nbformat
import pytest
from nbclient import NotebookClient

from lessons_src.exercises import available_pairs, exercises


@pytest.mark.parametrize("pair", sorted(available_pairs()))
def test_reference_solutions_pass_in_a_notebook_kernel(course_server, pair):
    code = (
        "from lessons_src import setup\n"
        "from lessons_src.exercises import exercises\n"
        "setup(quiet=True)\n"
        f"ex = exercises({pair!r})\n"
        "for attempt in (1, 2):  # the same verdict on a first and a second run, whatever the first left behind\n"
        "    results = {e.number: ex.check(e.number, e.answer()) for e in ex.exercises}\n"
        "    assert all(results.values()), (attempt, results)\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs if o.get("name") == "stdout")
    passed = printed.count("✅")
    assert passed == 2 * len(exercises(pair).exercises) and "❌" not in printed and "⚠️" not in printed, printed
