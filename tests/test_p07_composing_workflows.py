"""The composition helpers read subflow runs and the run graph back from the course server."""

import asyncio

import pytest
from prefect import flow, task

from lessons_src.pairs.p07_composing_workflows import run_graph, subflow_runs


@task
def produce() -> int:
    return 3


@task
def consume(value: int) -> int:
    return value + 1


@flow
async def child(x: int) -> int:
    if x < 0:
        raise ValueError("negative")
    return x


@flow
async def parent() -> int:
    good = await child(1)
    bad = await child(-1, return_state=True)
    assert bad.is_failed()
    return consume(produce.submit()) + good  # consume receives produce's future: an edge in the graph


def test_subflow_runs_and_run_graph(course_server):
    state = asyncio.run(parent(return_state=True))
    assert state.is_completed()
    subflows = subflow_runs(state, expected=2)
    assert [s.flow_name for s in subflows] == ["child", "child"]
    assert sorted(s.state for s in subflows) == ["Completed", "Failed"]
    assert all(s.tracking_task_run and s.tracking_task_state == s.state for s in subflows)
    assert [s.parameters for s in subflows] == [{"x": 1}, {"x": -1}]
    assert [(s.retries, s.retry_delay) for s in subflows] == [(0, 0), (0, 0)]  # child has no retries of its own
    assert len({s.id for s in subflows}) == 2

    graph = run_graph(state)
    consume_node = next(n for n in graph if n.label.startswith("consume"))
    assert len(consume_node.upstream) == 1 and consume_node.upstream[0].startswith("produce")
    assert sum(n.kind == "flow-run" for n in graph) == 2


def test_subflow_runs_rejects_non_runs():
    with pytest.raises(TypeError):
        subflow_runs(42)
