"""A plain `pytest` run (not `python -m lessons_src test`) keeps away from the learner's course and leaves nothing."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from lessons_src.cli import TEST_HOMES, stop_course_services
from lessons_src.processes import pid_alive

PROBE = """
import json
import os


def test_probe(demo_api, course_server):
    record = {"home": os.environ["COURSE_HOME"], "pids": [course_server.pid, course_server.database_pid, demo_api.pid]}
    with open(os.environ["PROBE_RECORD"], "w") as out:
        json.dump(record, out)
"""


def test_a_plain_pytest_run_uses_a_home_of_its_own_and_stops_what_it_started(tmp_path):
    """The probe starts a course server and demo API; the learner's COURSE_HOME stays empty and nothing outlives it."""
    learners_home, scratch, record = tmp_path / "learners-course", tmp_path / "tmp", tmp_path / "record.json"
    learners_home.mkdir()
    scratch.mkdir()
    probe_dir = tmp_path / "probe"
    probe_dir.mkdir()
    shutil.copy(Path(__file__).with_name("conftest.py"), probe_dir / "conftest.py")
    (probe_dir / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != TEST_HOMES}
    env.update(COURSE_HOME=str(learners_home), TMPDIR=str(scratch), PROBE_RECORD=str(record))
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", str(probe_dir)],
            cwd=probe_dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:  # should the probe have used the learner's home, stop what it left there
        stop_course_services(learners_home)
    output = f"{run.stdout[-3000:]}\n{run.stderr[-2000:]}"
    assert run.returncode == 0, f"the probe run failed (exit {run.returncode}):\n{output}"
    probe = json.loads(record.read_text())
    assert Path(probe["home"]).is_relative_to(scratch), (
        f"the probe's course home was {probe['home']}; expected a temporary folder under {scratch}, not the "
        f"learner's {learners_home}"
    )
    assert not any(learners_home.iterdir()), f"the learner's course home got {sorted(learners_home.iterdir())}"
    alive = [pid for pid in probe["pids"] if pid and pid_alive(pid)]
    assert not alive, f"processes {alive} of the probe's server, database and demo API still run after pytest ended"
    homes = Path(probe["home"]).parent
    assert not homes.exists(), f"the temporary course homes were left behind: {sorted(homes.iterdir())}"
