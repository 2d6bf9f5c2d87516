import os
import signal
import subprocess
import sys
import time

import pytest

from lessons_src.processes import ServiceStartError, listens_on, log_tail, pid_alive, start_service, terminate


def test_a_service_that_exits_at_start_is_reported_with_its_log(tmp_path):
    log = tmp_path / "service.log"
    command = [sys.executable, "-c", "import sys; print('port already in use'); sys.exit(3)"]
    with pytest.raises(ServiceStartError, match=r"exited at start \(code 3\)[\s\S]*port already in use"):
        start_service(command, log, lambda pid: False, timeout=10)


def test_a_service_that_never_answers_is_stopped_after_the_timeout(tmp_path):
    log = tmp_path / "service.log"
    started = time.monotonic()
    with pytest.raises(ServiceStartError, match="did not answer within 0.5 s"):
        start_service([sys.executable, "-c", "import time; time.sleep(60)"], log, lambda pid: False, timeout=0.5)
    assert time.monotonic() - started < 15


def test_a_ready_service_is_returned_running_and_can_be_terminated(tmp_path):
    process = start_service(
        [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "s.log", lambda pid: True, 5
    )
    assert pid_alive(process.pid)
    terminate(process, grace=5)
    assert not pid_alive(process.pid)
    assert process.returncode == -signal.SIGTERM, "the Popen keeps the real exit status: killed by SIGTERM"
    assert "no log" in log_tail(tmp_path / "missing.log")


def test_a_bare_pid_is_stopped_and_reaped(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    terminate(process.pid, grace=5)
    assert not pid_alive(process.pid)
    with pytest.raises(ChildProcessError):  # already reaped by terminate: no zombie left behind
        os.waitpid(process.pid, os.WNOHANG)


def test_a_process_ignoring_sigterm_is_killed_after_the_grace(tmp_path):
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert process.stdout.readline().strip() == b"ready"
    started = time.monotonic()
    terminate(process, grace=0.5)
    assert process.returncode == -signal.SIGKILL
    assert 0.5 <= time.monotonic() - started < 5


def test_listens_on_names_the_process_that_accepts_connections_on_a_port():
    code = (
        "import socket, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); "
        "print(s.getsockname()[1], flush=True); time.sleep(60)"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        port = int(process.stdout.readline())
        assert listens_on(process.pid, port)
        assert not listens_on(process.pid, port + 1) and not listens_on(bystander.pid, port)
        assert listens_on(os.getpid(), port), "a process started by this one counts as this one's"
    finally:
        terminate(process, grace=5)
        terminate(bystander, grace=5)
