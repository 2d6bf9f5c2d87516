import asyncio
import time

import pytest

from lessons_src.timing import timed, timed_async


def test_timed_returns_value_and_elapsed_seconds():
    result = timed(lambda x: (time.sleep(0.05), x * 2)[1], 21)
    assert result.value == 42
    assert 0.04 < result.seconds < 1.0


def test_timed_rejects_non_callables_and_async_functions():
    with pytest.raises(TypeError, match="needs something to call"):
        timed(42)

    async def coroutine_function():
        return 1

    with pytest.raises(TypeError, match="timed_async"):
        timed(coroutine_function)


def test_timed_async_awaits_and_measures():
    async def slow(x):
        await asyncio.sleep(0.05)
        return x

    result = asyncio.run(timed_async(slow, "done"))
    assert result.value == "done"
    assert 0.04 < result.seconds < 1.0
