from lessons_src import doctor
from lessons_src.cli import main


def test_pins_are_read_from_requirements_lines_and_ignore_comments(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("-c constraints.txt\n# a comment\nprefect==3.8.8   # why\nJupyter_Server_Proxy==4.6.0\n")
    assert doctor.pinned_versions(requirements) == {"prefect": "3.8.8", "jupyter-server-proxy": "4.6.0"}


def test_the_course_environment_passes_its_own_checks(course_server):
    for check in (
        doctor.check_python,
        doctor.check_pins,
        doctor.check_disk,
        doctor.check_ports,
        doctor.check_server,
        doctor.check_database,
        doctor.check_demo_api,
    ):
        result = check()
        assert result.ok, result.line()


def test_a_wrong_version_fails_with_the_fix(monkeypatch):
    monkeypatch.setattr(doctor, "version", lambda name: "0.0.1")
    result = doctor.check_pins()
    assert not result.ok and f"prefect 0.0.1 (pinned {doctor.pinned_versions()['prefect']})" in result.detail
    assert "fix: run `python course.py install`" in result.line()


def test_a_crashing_check_is_reported_not_raised(monkeypatch, capsys):
    def broken():
        raise OSError("disk on fire")

    monkeypatch.setattr(doctor, "CHECKS", [doctor.check_python, broken])
    results = doctor.run_doctor()
    assert [r.ok for r in results] == [True, False]
    assert "FAIL  broken" in capsys.readouterr().out


def test_cli_exit_code_follows_the_checks(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "CHECKS", [doctor.check_python])
    assert main(["doctor"]) == 0
    assert "1 passed, 0 failed" in capsys.readouterr().out
    monkeypatch.setattr(doctor, "CHECKS", [lambda: doctor.CheckResult("x", False, "seen", "do this")])
    assert main(["doctor"]) == 1


def test_no_free_port_fails_the_ports_check_with_the_fix(monkeypatch):
    monkeypatch.setattr(doctor.server, "running_server", lambda: None)
    monkeypatch.setattr(doctor.server, "_port_free", lambda port: False)
    result = doctor.check_ports()
    assert not result.ok and "No free port between 4200 and 4299" in result.detail
    assert "prefect server stop" in result.line()


def test_a_server_on_sqlite_when_postgresql_was_wanted_fails_the_database_check(monkeypatch):
    fell_back = doctor.server.ServerInfo(pid=1, port=4200, home="/tmp", database="sqlite")
    monkeypatch.setattr(doctor.server, "running_server", lambda: fell_back)
    monkeypatch.delenv(doctor.database.SETTING, raising=False)
    result = doctor.check_database()
    assert not result.ok and "sqlite (set to postgresql)" in result.detail and "COURSE_DATABASE=sqlite" in result.fix
    monkeypatch.setenv(doctor.database.SETTING, "sqlite")
    assert doctor.check_database().ok
