"""Where the course keeps its files: the repository, its data, and the course-local state folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root() -> Path:
    """Return the course repository folder (the parent of this package in an editable install)."""
    candidate = PACKAGE_DIR.parent
    if (candidate / "pyproject.toml").exists() and (candidate / "notebooks").is_dir():
        return candidate
    raise RuntimeError(
        "lessons_src is not installed from a course checkout. From the repository folder run: pip install -e ."
    )


def course_home() -> Path:
    """Return the folder for course state (server database, logs, pid files), creating it if needed.

    `COURSE_HOME` overrides the default `<repo>/.course`.
    """
    override = os.environ.get("COURSE_HOME")
    home = Path(override).expanduser() if override else repo_root() / ".course"
    home.mkdir(parents=True, exist_ok=True)
    return home


def data_dir() -> Path:
    """Return the repository's `data/` folder."""
    return repo_root() / "data"


@contextmanager
def course_home_at(path: Path) -> Iterator[Path]:
    """Use `path` as the course home (`COURSE_HOME`) inside the block, then restore the one before."""
    previous = os.environ.get("COURSE_HOME")
    os.environ["COURSE_HOME"] = str(path)
    try:
        yield course_home()
    finally:
        if previous is None:
            os.environ.pop("COURSE_HOME", None)
        else:
            os.environ["COURSE_HOME"] = previous
