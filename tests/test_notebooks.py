import json

from lessons_src import notebooks


def _notebook(tmp_path, name, cells):
    folder = tmp_path / "notebooks"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_tidy_strips_outputs_adds_navigation_ids_and_slides(tmp_path, monkeypatch):
    monkeypatch.setattr(notebooks, "repo_root", lambda: tmp_path)
    lesson = _notebook(
        tmp_path,
        "01_a.ipynb",
        [
            {"cell_type": "markdown", "metadata": {}, "source": ["# 01 · A\n", "text"]},
            {
                "cell_type": "code",
                "metadata": {},
                "source": ["1 + 1"],
                "outputs": [{"output_type": "stream"}],
                "execution_count": 3,
            },
        ],
    )
    _notebook(tmp_path, "01_a_exercises.ipynb", [{"cell_type": "markdown", "metadata": {}, "source": ["# 01 · A: ex"]}])
    assert notebooks.untidy_notebooks() == sorted(notebooks.course_notebooks())
    tidied = notebooks.tidy(lesson)
    first, *body, last = tidied["cells"]
    assert first["metadata"]["tags"] == [notebooks.NAV_TAG] and first == {**last, "id": first["id"]}
    assert "[01 · A: ex](01_a_exercises.ipynb) >" in "".join(first["source"])
    assert body[1]["outputs"] == [] and body[1]["execution_count"] is None
    assert body[0]["metadata"]["slideshow"] == {"slide_type": "slide"}
    assert all("id" in cell for cell in tidied["cells"])
    lesson.write_text(notebooks.render(tidied))
    assert lesson not in notebooks.untidy_notebooks()


def test_contents_table_has_a_row_per_lesson_with_binder_link_and_minutes(tmp_path, monkeypatch):
    monkeypatch.setattr(notebooks, "repo_root", lambda: tmp_path)
    (tmp_path / "pyproject.toml").write_text('[tool.lessons_src]\ngithub_repository = "me/course"\n')
    _notebook(
        tmp_path,
        "02_b.ipynb",
        [
            {
                "cell_type": "markdown",
                "metadata": {},
                "source": ["# 02 · Bees\n", "**Time:** 30 min to teach · 15 min practice"],
            }
        ],
    )
    _notebook(tmp_path, "02_b_exercises.ipynb", [{"cell_type": "markdown", "metadata": {}, "source": ["# ex"]}])
    table = notebooks.contents_table()
    assert "| 02 | [Bees](notebooks/02_b.ipynb) | [exercises](notebooks/02_b_exercises.ipynb) |" in table
    assert "https://mybinder.org/v2/gh/me/course/HEAD?urlpath=lab/tree/notebooks/02_b.ipynb" in table
    assert table.endswith("| 30 + 15 min |")
    readme = f"intro\n{notebooks.CONTENTS_START}\nold\n{notebooks.CONTENTS_END}\nrest"
    assert (
        notebooks.readme_with_contents(readme)
        == f"intro\n{notebooks.CONTENTS_START}\n{table}\n{notebooks.CONTENTS_END}\nrest"
    )


def test_a_notebook_named_by_a_relative_path_gets_the_same_navigation(monkeypatch):
    first = notebooks.course_notebooks()[0]
    monkeypatch.chdir(first.parent.parent)
    assert notebooks.nav_markdown(first.relative_to(first.parent.parent)) == notebooks.nav_markdown(first)
