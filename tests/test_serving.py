"""The serving helpers start a real serve process, see its deployments on the server, and always stop it."""

import pytest

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
    spec = DeploymentSpec("served_pipeline.py:add_up", "test-serving-sum", {"parameters": {"numbers": [2, 3]}})
    with serving.serve_deployments(spec, limit=1) as process:
        assert process.running
        deployments = process.wait_until_ready()
        assert deployments["add-up/test-serving-sum"].parameters == {"numbers": [2, 3]}
    assert not process.running and process.process.returncode is not None
    assert process not in serving.running_serve_processes()
    assert serving.delete_deployments("add-up/test-serving-sum") == 1
    assert serving.delete_deployments("add-up/test-serving-sum") == 0


def test_a_serve_process_that_dies_is_reported_with_its_log(course_server):
    process = serving.serve_script("no_such_file.py", ["nothing/here"], wait=False)
    with pytest.raises(RuntimeError, match="serve process exited"):
        process.wait_until_ready(timeout=30)
    assert process.stop() is not None and not process.running
