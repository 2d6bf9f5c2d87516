"""Measure wall-clock time of a call, so lessons state only timings measured in the same run."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Timed(Generic[T]):
    """A call's return value and how many wall-clock seconds it took."""

    value: T
    seconds: float


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Timed[T]:
    """Call `fn(*args, **kwargs)` and return its value with the elapsed wall time."""
    if not callable(fn):
        raise TypeError(f"timed() needs something to call (a function, task or flow), got {type(fn).__name__}")
    if inspect.iscoroutinefunction(fn):
        raise TypeError("timed() runs sync callables; for an async flow use `await timed_async(flow, ...)`")
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return Timed(value, time.perf_counter() - start)


async def timed_async(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Timed[Any]:
    """Await `fn(*args, **kwargs)` and return its value with the elapsed wall time."""
    if not callable(fn):
        raise TypeError(f"timed_async() needs an async callable, got {type(fn).__name__}")
    start = time.perf_counter()
    value = await fn(*args, **kwargs)
    return Timed(value, time.perf_counter() - start)
