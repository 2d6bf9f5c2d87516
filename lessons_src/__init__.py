"""Helpers for the executable Prefect 3 course; notebooks start with `from lessons_src import setup; setup()`."""

from lessons_src.course import setup

__all__ = ["setup"]
