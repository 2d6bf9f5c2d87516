"""Every reference solution passes its check inside a real notebook kernel, where an event loop is running."""

import nbformat
import pytest
from nbclient import NotebookClient

from lessons_src.exercises import available_pairs


@pytest.mark.parametrize("pair", sorted(available_pairs()))
def test_reference_solutions_pass_in_a_notebook_kernel(course_server, pair):
    code = (
        "from lessons_src import setup\n"
        "from lessons_src.exercises import exercises\n"
        "setup(quiet=True)\n"
        f"ex = exercises({pair!r})\n"
        "results = {e.number: ex.check(e.number, e.answer()) for e in ex.exercises}\n"
        "assert all(results.values()), results\n"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    NotebookClient(notebook, timeout=300, kernel_name="python3").execute()
    printed = "".join(o.get("text", "") for o in notebook.cells[0].outputs if o.get("name") == "stdout")
    assert printed.count("✅") >= 4 and "❌" not in printed, printed
