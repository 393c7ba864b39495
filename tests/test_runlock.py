"""One writer per run directory: the lock is taken, refused to a second process with a message naming the holder,
taken over from a process that is gone, and given up on release and when its process ends."""

from __future__ import annotations

import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from rnntui.core import runlock
from rnntui.errors import UserError
from rnntui.core.runlock import LOCK_NAME, RunLock, RunLockedError, holder, process_start_time, read_holder

HOLDER = """
import os, sys
from rnntui.core.runlock import RunLock
lock = RunLock(sys.argv[1], "rnntui train").acquire()
print("locked", flush=True)
how = sys.stdin.readline().strip()
if how == "release":
    lock.release()
    print("released", flush=True)
    sys.stdin.readline()
elif how == "exit":
    sys.exit(0)  # the normal way out: atexit gives the lock up
else:
    os._exit(0)  # no cleanup at all: only the kernel drops the flock
"""


@pytest.fixture(params=["flock", "exclusive file"])
def mode(request, monkeypatch):
    """Every behaviour with flock, and with the O_EXCL file used where the filesystem cannot flock."""
    if request.param == "exclusive file":
        monkeypatch.setattr(runlock, "fcntl", None)
    return request.param


def spawn_holder(run_dir, mode: str) -> subprocess.Popen:
    code = HOLDER if mode == "flock" else "import rnntui.core.runlock as r; r.fcntl = None\n" + HOLDER
    child = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "locked"
    return child


def finish(child: subprocess.Popen, how: str) -> None:
    child.stdin.write(how + "\n")
    child.stdin.flush()
    if how == "release":
        assert child.stdout.readline().strip() == "released"
        return
    child.wait(timeout=60)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_acquire_writes_who_holds_it_and_release_removes_it(tmp_path, mode):
    with RunLock(tmp_path, "rnntui train") as lock:
        assert lock.held
        found = read_holder(tmp_path)
        assert (found.pid, found.host, found.command) == (os.getpid(), socket.gethostname(), "rnntui train")
        assert found.started == process_start_time(os.getpid()) and abs(found.since - time.time()) < 3600
        assert holder(tmp_path) == found
        with pytest.raises(RunLockedError, match=f"process {os.getpid()} \\(rnntui train\\) on "):
            RunLock(tmp_path).acquire()  # a second writer in the same process is refused too
    assert not lock.held and not (tmp_path / LOCK_NAME).exists() and holder(tmp_path) is None
    RunLock(tmp_path).acquire().release()


def test_a_second_process_is_refused_with_a_message_naming_the_holder(tmp_path, mode):
    child = spawn_holder(tmp_path, mode)
    try:
        with pytest.raises(RunLockedError) as refused:
            RunLock(tmp_path).acquire()
        message = str(refused.value)
        assert f"in use by process {child.pid} (rnntui train) on {socket.gethostname()} since " in message
        assert f"kill {child.pid}" in message and "\n" not in message
        assert isinstance(refused.value, UserError)
        assert holder(tmp_path).pid == child.pid  # reading who holds it needs no lock
        finish(child, "release")
        RunLock(tmp_path).acquire().release()
    finally:
        child.kill()
        child.wait()


@pytest.mark.parametrize("how", ["exit", "os._exit", "SIGKILL"])
def test_the_lock_is_given_up_when_its_process_ends(tmp_path, mode, how):
    child = spawn_holder(tmp_path, mode)
    if how == "SIGKILL":
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
    else:
        finish(child, how)
    if how == "exit":
        assert not (tmp_path / LOCK_NAME).exists()
    else:
        assert read_holder(tmp_path).pid == child.pid  # the file stays, naming a process that is gone
        assert holder(tmp_path) is None
    with RunLock(tmp_path) as lock:
        assert read_holder(tmp_path).pid == os.getpid() and lock.held


def write_lock(run_dir, pid: int, host: str | None = None, started: str | None = None) -> None:
    (run_dir / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname(),
                                                 "started": started, "since": time.time() - 60,
                                                 "command": "rnntui train"}))


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, mode):
    write_lock(tmp_path, dead_pid())
    assert holder(tmp_path) is None
    with RunLock(tmp_path):
        assert read_holder(tmp_path).pid == os.getpid()


def test_a_reused_pid_is_told_apart_by_its_start_time(tmp_path, mode):
    """A lock naming a live PID whose process started at another time (the PID was reused) is stale."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started = process_start_time(sleeper.pid)
        if started is None:
            pytest.skip("no process start times here (/proc)")
        write_lock(tmp_path, sleeper.pid, started="another boot:123")
        with RunLock(tmp_path):
            assert read_holder(tmp_path).pid == os.getpid()
        write_lock(tmp_path, sleeper.pid, started=started)
        if mode == "flock":  # a free flock on this host proves the holder gone, whatever its PID is doing now
            RunLock(tmp_path).acquire().release()
        else:
            with pytest.raises(RunLockedError, match=f"process {sleeper.pid} .*delete .*{LOCK_NAME}"):
                RunLock(tmp_path).acquire()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_lock_held_on_another_host_is_refused_with_the_way_out(tmp_path, mode):
    write_lock(tmp_path, 4242, host="elsewhere.example")
    with pytest.raises(RunLockedError) as refused:
        RunLock(tmp_path).acquire()
    assert "process 4242 (rnntui train) on elsewhere.example since" in str(refused.value)
    assert f"delete {tmp_path / LOCK_NAME}" in str(refused.value)
    assert holder(tmp_path) is not None  # cannot be shown gone from here


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_run_directory_is_one_clear_line(tmp_path, mode):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(UserError, match="cannot write its lock file .*writable run directory"):
            RunLock(tmp_path).acquire()
    finally:
        tmp_path.chmod(0o755)


@pytest.mark.parametrize("code", [errno.EROFS, errno.EACCES])
def test_a_lock_file_that_cannot_be_written_is_one_clear_line(tmp_path, mode, monkeypatch, code):
    real_open = os.open

    def refusing_open(path, flags, *args):
        if str(path).endswith(LOCK_NAME):
            raise OSError(code, os.strerror(code), str(path))
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(UserError) as refused:
        RunLock(tmp_path).acquire()
    assert str(refused.value) == (f"{tmp_path}: cannot write its lock file ({os.strerror(code)}); training needs a "
                                  "writable run directory")
