import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from lessons_src.processes import (
    ServiceFiles,
    ServiceStartError,
    free_port,
    listens_on,
    log_tail,
    pid_alive,
    port_is_free,
    start_service,
    terminate,
)


@dataclass(frozen=True)
class _Record:
    pid: int
    port: int


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


def test_service_files_write_read_and_forget_a_record(tmp_path):
    files = ServiceFiles(tmp_path, "thing")
    assert (files.state, files.log, files.lock) == (
        tmp_path / "thing.json",
        tmp_path / "thing.log",
        tmp_path / "thing.lock",
    )
    assert files.read(_Record) is None
    files.write(_Record(pid=12, port=34))
    assert files.read(_Record) == _Record(pid=12, port=34)
    files.forget()
    files.forget()  # forgetting twice is fine
    assert files.read(_Record) is None and not files.state.exists()


@pytest.mark.parametrize("text", ["not json", '{"pid": 1}', '{"pid": 1, "port": 2, "other": 3}'])
def test_an_unreadable_record_reads_as_none(tmp_path, text):
    files = ServiceFiles(tmp_path, "thing")
    files.state.write_text(text)
    assert files.read(_Record) is None


def test_a_free_port_is_free_until_something_listens_on_it():
    port = free_port()
    assert port_is_free("127.0.0.1", port)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        assert not port_is_free("127.0.0.1", port)
