"""The course website: every notebook executed against the course server, rendered to static HTML in `_site/`.

Built with what the course already installs (nbclient runs the notebooks, nbconvert's JupyterLab template renders
them, mistune renders the Markdown pages), so the site needs no toolchain of its own and builds on every Python the
course supports. Figures are embedded in the pages: `_site/` can be copied anywhere, or published as it is.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lessons_src.notebooks import (
    binder_url,
    contents_table,
    course_notebooks,
    execute,
    github_repository,
    title_of,
)
from lessons_src.paths import repo_root

EXECUTE_TIMEOUT_S = 300  # per cell; the slowest lesson cell takes ~20 s on a quiet 2-core machine
EXERCISES_NOTE = (
    "These exercises are shown unsolved, as committed: each check printed ⏳ because no answer was written. "
    "The checks grade your answers from what the Prefect server recorded, so they run only in a live kernel: "
    "open this notebook on Binder, in Codespaces or on your machine (see the course's README) to solve them."
)
STYLE = """
.course-bar { font-family: system-ui, sans-serif; background: #f4f6fb; border-bottom: 1px solid #d0d7e6;
  padding: 0.6em 1.2em; display: flex; flex-wrap: wrap; gap: 0.4em 1.4em; align-items: center; }
.course-bar a { color: #1d4ed8; text-decoration: none; }
.course-bar .course-launch { margin-left: auto; }
.course-note { font-family: system-ui, sans-serif; background: #fff7e0; border: 1px solid #e8c766;
  margin: 1em 1.2em; padding: 0.8em 1em; border-radius: 4px; }
.course-page { font-family: system-ui, sans-serif; max-width: 60em; margin: 1.5em auto; padding: 0 1.2em;
  line-height: 1.5; }
.course-page table { border-collapse: collapse; } .course-page td, .course-page th { border: 1px solid #d0d7e6;
  padding: 0.3em 0.6em; } .course-page pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; }
"""
FIGURE = re.compile(r'<img[^>]+src="data:image/(?:png|jpeg|svg\+xml)')


@dataclass(frozen=True)
class BuiltSite:
    """What a build wrote: the site folder, its notebook pages and how many figures they hold."""

    folder: Path
    pages: tuple[Path, ...]
    figures: int
    seconds: float


def site_folder() -> Path:
    """Return where `python -m lessons_src site` writes the website (git-ignored)."""
    return repo_root() / "_site"


def executed_folder() -> Path:
    """Return where the executed copies of the notebooks are kept between builds (git-ignored)."""
    return repo_root() / "build" / "executed"


def codespaces_url() -> str:
    """Return the link that opens the course in a new GitHub Codespace."""
    return f"https://codespaces.new/{github_repository()}?quickstart=1"


def pages_url() -> str:
    """Return the address GitHub Pages publishes the site at."""
    owner, name = github_repository().split("/")
    return f"https://{owner}.github.io/{name}/"


def page_name(path: Path) -> str:
    """Return the site page of a notebook or document: `01_flows_and_tasks.ipynb` -> `01_flows_and_tasks.html`."""
    return f"{path.stem}.html"


def execute_notebook(path: Path, into: Path, timeout: int = EXECUTE_TIMEOUT_S) -> Path:
    """Run every cell of a notebook in a fresh kernel (`notebooks.execute`) and write the executed copy into `into`."""
    import nbformat

    notebook, _ = execute(path, timeout)
    into.mkdir(parents=True, exist_ok=True)
    target = into / path.name
    nbformat.write(notebook, target)
    return target


def relink(text: str) -> str:
    """Point the links of a notebook or document at the site's pages instead of the repository's files."""
    text = re.sub(r'href="(?:\.\./)?README\.md#contents"', 'href="index.html#contents"', text)
    text = re.sub(r'href="(?:\.\./)?README\.md"', 'href="index.html"', text)
    text = re.sub(r'href="(?:\.\./)?(?:notebooks/)?([\w-]+)\.ipynb(#[^"]*)?"', r'href="\1.html\2"', text)
    return re.sub(r'href="(?:\.\./)?(?:docs/)?([\w-]+)\.md(#[^"]*)?"', r'href="\1.html\2"', text)


def _bar(path: Path | None) -> str:
    """Return the bar at the top of every page: home, the documents, and launch links for a notebook."""
    links = ['<a href="index.html"><b>Prefect 3, hands-on</b></a>', '<a href="index.html#contents">Contents</a>']
    links += [f'<a href="{page_name(d)}">{html.escape(_document_title(d).split(":")[0])}</a>' for d in _documents()]
    launch = ""
    if path is not None and path.suffix == ".ipynb":
        launch = (
            f'<span class="course-launch">Run it: <a href="{binder_url(path)}">Binder</a> · '
            f'<a href="{codespaces_url()}">Codespaces</a> · '
            f'<a href="https://github.com/{github_repository()}/blob/main/notebooks/{path.name}">source</a></span>'
        )
    return f'<nav class="course-bar">{" · ".join(links)}{launch}</nav>'


def _documents() -> list[Path]:
    """Return the Markdown documents the site publishes as pages (docs/*.md), in name order."""
    return sorted((repo_root() / "docs").glob("*.md"))


def _document_title(path: Path) -> str:
    """Return a document's first heading, or its file name."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return path.stem


def _markdown(text: str) -> str:
    """Render Markdown (with tables) to HTML as the site shows it."""
    import mistune

    return mistune.create_markdown(escape=False, plugins=["table", "strikethrough"])(text)


def _page(title: str, body: str, path: Path | None = None) -> str:
    """Return a whole HTML page around a rendered Markdown body."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f'<body>{_bar(path)}<main class="course-page">{relink(body)}</main></body></html>\n'
    )


def notebook_page(executed: Path) -> str:
    """Render an executed notebook as a site page: the bar with launch links, a note on exercises, its outputs."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
    body = body.replace("<title>Notebook</title>", f"<title>{html.escape(title_of(executed))}</title>", 1)
    note = f'<div class="course-note">{EXERCISES_NOTE}</div>' if executed.stem.endswith("_exercises") else ""
    body = body.replace("</head>", f"<style>{STYLE}</style></head>", 1)
    opening = re.search(r"<body[^>]*>", body)
    if opening is None:
        raise ValueError(f"nbconvert wrote no <body> for {executed.name}")
    return relink(body[: opening.end()] + _bar(executed) + note + body[opening.end() :])


def index_page() -> str:
    """Return the home page: what the course is, the contents table (the README's own) and the documents."""
    readme = (repo_root() / "README.md").read_text(encoding="utf-8")
    intro = readme.split("\n## ", 1)[0]
    documents = "\n".join(f"- [{_document_title(d)}]({d.name})" for d in _documents())
    text = (
        f"{intro}\n\nEvery page below is a notebook as it ran against a real Prefect server when this site was built: "
        f"the figures and numbers are that run's measurements.\n\n"
        f'<h2 id="contents">Contents</h2>\n\n{contents_table()}\n\n## Documents\n{documents}\n'
    )
    return _page("Prefect 3, hands-on", _markdown(text))


def count_figures(page: Path) -> int:
    """Return how many embedded figures a page holds."""
    return len(FIGURE.findall(page.read_text(encoding="utf-8")))


def figures_drawn(executed: Path) -> int:
    """Return how many images the outputs of an executed notebook hold."""
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    outputs = [output for cell in cells if cell["cell_type"] == "code" for output in cell["outputs"]]
    return sum(1 for output in outputs if {"image/png", "image/jpeg", "image/svg+xml"} & set(output.get("data", {})))


def build_site(
    pairs: Sequence[str] = (),
    folder: Path | None = None,
    executed: Path | None = None,
    say: Callable[[str], None] = print,
) -> BuiltSite:
    """Execute the notebooks (of `pairs`, or all), render them and the documents into `folder`; return what it wrote."""
    started = time.monotonic()
    folder = folder or site_folder()
    executed = executed or executed_folder()
    chosen = [p for p in course_notebooks() if not pairs or p.name[:2] in pairs]
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    pages = []
    for notebook in chosen:
        began = time.monotonic()
        copy = execute_notebook(notebook, executed)
        page = folder / page_name(notebook)
        page.write_text(notebook_page(copy), encoding="utf-8")
        shown, drawn = count_figures(page), figures_drawn(copy)
        if shown != drawn:
            raise RuntimeError(f"{page.name} shows {shown} figures; the executed notebook drew {drawn}")
        pages.append(page)
        say(
            f"{notebook.name}: executed and rendered in {time.monotonic() - began:.1f} s, {count_figures(page)} figures"
        )
    for document in _documents():
        text = document.read_text(encoding="utf-8")
        (folder / page_name(document)).write_text(
            _page(_document_title(document), _markdown(text), document), encoding="utf-8"
        )
    for attachments in (d for d in (repo_root() / "docs").iterdir() if d.is_dir()):
        shutil.copytree(attachments, folder / attachments.name)  # files the documents link to, e.g. classroom/*.yaml
    (folder / "index.html").write_text(index_page(), encoding="utf-8")
    (folder / ".nojekyll").write_text("")  # GitHub Pages serves the files as they are
    return BuiltSite(folder, tuple(pages), sum(count_figures(p) for p in pages), time.monotonic() - started)
