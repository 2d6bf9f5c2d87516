"""The serving helpers start a real serve process, see its deployments on the server, and always stop it."""

from datetime import timedelta

import pytest
from prefect.schedules import Interval

from lessons_src import serving
from lessons_src.serving import DeploymentSpec


def test_spec_names_its_flow_function():
    spec = DeploymentSpec("served_pipeline.py:add_up", "x", {"interval": 5})
    assert spec.flow_function == "add_up"
    assert spec == DeploymentSpec("served_pipeline.py:add_up", "x", {"interval": 5})


def test_served_flows_load_from_the_flows_folder():
    flow = serving.load_served_flow("say_hello")
    assert flow.name == "say-hello" and flow.fn("Ada") == "Hello, Ada!"


def test_a_serve_process_registers_its_deployments_and_stops(course_server):
    options = {"parameters": {"numbers": [2, 3]}, "schedules": [Interval(timedelta(hours=6))]}
    spec = DeploymentSpec("served_pipeline.py:add_up", "test-serving-sum", options)
    with serving.serve_deployments(spec, limit=1) as process:
        assert process.running
        deployments = process.wait_until_ready()
        recorded = deployments["add-up/test-serving-sum"]
        assert recorded.parameters == {"numbers": [2, 3]}
        assert recorded.schedules[0].schedule.interval == timedelta(hours=6)  # a timedelta arrives as one
        assert process.flow_run_pids() == set(), "no run was started, so no flow-run process runs"
        assert process.wait_for_flow_runs() < 1.0, "with no flow run in flight there is nothing to wait for"
    # Prefect's runner catches SIGTERM, stops and exits normally: the real status, kept by processes.terminate
    assert not process.running and process.process.returncode == 0, serving.exit_status_meaning(
        process.process.returncode
    )
    assert process not in serving.running_serve_processes()
    assert serving.delete_deployments("add-up/test-serving-sum") == 1
    assert serving.delete_deployments("add-up/test-serving-sum") == 0


def test_a_serve_process_that_dies_is_reported_with_its_log(course_server):
    process = serving.serve_script("no_such_file.py", ["nothing/here"], wait=False)
    with pytest.raises(RuntimeError, match="serve process exited"):
        process.wait_until_ready(timeout=30)
    assert process.stop() is not None and not process.running


def test_exit_statuses_are_explained():
    assert "catches SIGTERM" in serving.exit_status_meaning(0)
    assert serving.exit_status_meaning(-15).startswith("SIGTERM ended it")
    assert serving.exit_status_meaning(-9).startswith("SIGKILL")
    assert "error" in serving.exit_status_meaning(1) and serving.exit_status_meaning(None) == "it has not exited"
