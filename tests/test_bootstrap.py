"""course.py, the Python-only bootstrap: it finds a supported Python, and reinstalls only when pins change."""

import importlib.util
import os
import sys

import pytest

from lessons_src.course import SUPPORTED_PYTHONS
from lessons_src.paths import repo_root

spec = importlib.util.spec_from_file_location("course_bootstrap", repo_root() / "course.py")
bootstrap = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap)


def test_it_supports_the_pythons_the_package_and_setup_support():
    assert sorted(bootstrap.SUPPORTED) == sorted(SUPPORTED_PYTHONS)
    assert bootstrap.version_of([sys.executable]) == sys.version_info[:2]
    assert bootstrap.candidates()[0] == [sys.executable]


def test_a_python_that_does_not_run_gives_none_and_a_clear_exit():
    assert bootstrap.version_of(["no-such-python-3.99"]) is None
    with pytest.raises(SystemExit, match="winget install Python.Python.3.13"):
        bootstrap.find_python("no-such-python-3.99")


def test_the_current_python_is_found_first():
    assert bootstrap.find_python(None) == [sys.executable]


@pytest.mark.skipif(os.name == "nt", reason="symlinking python.exe needs privileges on Windows")
def test_an_up_to_date_environment_is_reused_without_installing(tmp_path, monkeypatch):
    python = bootstrap.venv_python(tmp_path)
    python.parent.mkdir(parents=True)
    python.symlink_to(sys.executable)
    version = sys.version_info[:2]
    (tmp_path / ".course-installed").write_text(bootstrap.pins_digest(version))
    monkeypatch.setattr(bootstrap.subprocess, "run", _refuse_installs(bootstrap.subprocess.run))
    assert bootstrap.ensure_environment(tmp_path, None) == python
    assert bootstrap.pins_digest(version) != bootstrap.pins_digest((version[0], version[1] + 1))
    # an environment made before the course's JupyterLab settings existed gets them on its next start
    assert (tmp_path / "share/jupyter/lab/settings/overrides.d/prefect-course.json").exists()


def test_jupyterlab_reads_the_course_settings_that_turn_the_news_pop_up_off(tmp_path):
    from jupyterlab_server.settings_utils import _get_overrides

    written = bootstrap.install_lab_settings(tmp_path)
    assert bootstrap.install_lab_settings(tmp_path) == written  # again: unchanged
    overrides, error = _get_overrides(str(tmp_path / "share" / "jupyter" / "lab" / "settings"))
    assert error == "" and overrides["@jupyterlab/apputils-extension:notification"]["fetchNews"] == "false", overrides


def _refuse_installs(run):
    def guarded(command, *args, **kwargs):
        assert "pip" not in command and "venv" not in command, f"an up-to-date environment ran {command}"
        return run(command, *args, **kwargs)

    return guarded


def test_the_environment_lacks_the_package_that_adds_a_second_to_every_prefect_import():
    from importlib.metadata import PackageNotFoundError, version

    for name in bootstrap.UNUSED_SLOW_PACKAGES:
        with pytest.raises(PackageNotFoundError):
            installed = version(name)
            pytest.fail(
                f"{name} {installed} is installed: every process that imports Prefect spends about 1 s "
                "importing it (course.UNUSED_SLOW_PACKAGES); `python course.py install` removes it"
            )
    bootstrap.remove_unused_slow_packages(sys.executable)  # absent: nothing to do, and no error
