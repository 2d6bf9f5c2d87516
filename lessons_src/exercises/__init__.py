"""Exercise sets, one module per notebook pair (`eNN_topic.py`); notebooks call `exercises("NN")`."""

from __future__ import annotations

import importlib
import pkgutil

from lessons_src.checks import TODO, ExerciseSet

__all__ = ["TODO", "exercises", "available_pairs"]


def available_pairs() -> dict[str, str]:
    """Map each pair number ("01", "02", ...) to the module holding its exercises."""
    return {
        info.name[1:3]: f"{__name__}.{info.name}"
        for info in pkgutil.iter_modules(__path__)
        if info.name.startswith("e") and info.name[1:3].isdigit()
    }


def exercises(pair: str) -> ExerciseSet:
    """Return the exercise set of a notebook pair, e.g. `ex = exercises("01")`."""
    modules = available_pairs()
    key = f"{int(pair):02d}" if str(pair).isdigit() else str(pair)
    if key not in modules:
        raise ValueError(f"No exercises for pair {pair!r}; available: {', '.join(sorted(modules))}.")
    return importlib.import_module(modules[key]).EXERCISES
