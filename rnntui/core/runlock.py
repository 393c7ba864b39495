"""One writer per run directory: the process that trains a run (or resumes it, or deletes it) holds its lock.

The lock is the file ``run.lock`` in the run directory, holding JSON that says who holds it: PID, host, the
process's start time (so a PID reused after a crash is not taken for the holder) and since when. Where the
filesystem supports it, the holder also keeps an exclusive ``flock`` on the file for as long as it runs: the
kernel drops it when the process ends however it ends, so a lock left by a crash is recognised at once. Where
``flock`` is missing (some network filesystems, Windows), the file is created with O_CREAT|O_EXCL and a lock whose
holder is gone (same host, PID not alive or started at another time) is taken over.

Reading a run (sample, score, inspect, the Runs screen) takes no lock.
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rnntui.errors import UserError

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

LOCK_NAME = "run.lock"
NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)  # the filesystem cannot flock


class RunLockedError(UserError):
    """Another process writes to this run directory; the message names it and says what to do."""


@dataclass
class Holder:
    """Who holds a run's lock, as its lock file says."""

    pid: int
    host: str
    started: str | None  # the process's start time, as process_start_time gives it
    since: float  # seconds since the epoch when the lock was taken
    command: str = ""

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.since))
        what = f" ({self.command})" if self.command else ""
        return f"process {self.pid}{what} on {self.host} since {when}"

    def gone(self) -> bool:
        """Whether the holder has certainly ended: only knowable on the same host."""
        if self.host != socket.gethostname():
            return False
        if not pid_alive(self.pid):
            return True
        started = process_start_time(self.pid)
        return started is not None and self.started is not None and started != self.started


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    except OSError:
        return False
    return True


def process_start_time(pid: int) -> str | None:
    """An identity for the process now running as ``pid`` (boot and start time on Linux); None where unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # the command name, in parentheses, may hold spaces
    return f"{boot}:{fields[19]}"  # field 22 of stat: start time in clock ticks after boot


def read_holder(run_dir: Path) -> Holder | None:
    """The holder named in a run's lock file (None if there is none or it cannot be read), live or not."""
    try:
        data = json.loads((Path(run_dir) / LOCK_NAME).read_text())
        return Holder(int(data["pid"]), str(data["host"]), data.get("started"), float(data["since"]),
                      str(data.get("command", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def holder(run_dir: Path) -> Holder | None:
    """The process that writes to a run now, or None; for showing a run as in use (this takes no lock)."""
    found = read_holder(run_dir)
    return found if found is not None and not found.gone() else None


class RunLock:
    """``with RunLock(run_dir, "rnntui train"):`` holds the run directory's lock, or raises RunLockedError."""

    def __init__(self, run_dir: Path, command: str = ""):
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.command = command
        self._fd: int | None = None
        self._owner = os.getpid()  # a forked child inherits the object, not the lock's ownership
        self._flock = fcntl is not None  # False once this filesystem refused flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> RunLock:
        if self._fd is not None:
            return self
        for _ in range(10):  # another process may take over or release the file between our steps: try again
            fd = self._acquire_with_flock() if self._flock else None
            if fd is None:
                fd = self._acquire_exclusive()
            if fd is not None:
                self._fd, self._owner = fd, os.getpid()
                _held.add(self)
                return self
        raise RunLockedError(f"{self.run_dir}: could not take its lock ({self.path}) after several tries; "
                             "another process keeps taking it, try again")

    def _acquire_with_flock(self) -> int | None:
        """The lock by flock; None to try again, or to fall back where the filesystem cannot flock."""
        fd = self._open(os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            self._refuse(read_holder(self.run_dir), certain=True)
        except OSError as e:
            os.close(fd)
            if e.errno in NO_FLOCK:
                self._flock = False
                return None
            raise
        try:
            if os.fstat(fd).st_ino != os.stat(self.path).st_ino:  # released and deleted while we waited
                raise FileNotFoundError
        except FileNotFoundError:
            os.close(fd)
            return None
        previous = read_holder(self.run_dir)
        if previous is not None and previous.host != socket.gethostname():
            # a free flock proves the holder gone only on this host (a network filesystem may not share flocks)
            os.close(fd)
            self._refuse(previous, certain=False)
        self._write(fd)
        return fd

    def _open(self, flags: int) -> int:
        try:
            return os.open(self.path, flags, 0o644)
        except (FileExistsError, FileNotFoundError):
            raise
        except OSError as e:
            raise UserError(f"{self.run_dir}: cannot write its lock file ({e.strerror}); training needs a "
                            "writable run directory") from None

    def _acquire_exclusive(self) -> int | None:
        """The lock as a file created with O_EXCL, a gone holder's taken over; None to try again."""
        try:
            fd = self._open(os.O_RDWR | os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            previous = read_holder(self.run_dir)
            if previous is None:
                if time.time() - _mtime(self.path) < 5:  # being written now
                    time.sleep(0.05)
                    return None
            elif not previous.gone():
                self._refuse(previous, certain=False)
            self.path.unlink(missing_ok=True)  # left by a process that is gone
            return None
        self._write(fd)
        return fd

    def _write(self, fd: int) -> None:
        me = Holder(os.getpid(), socket.gethostname(), process_start_time(os.getpid()), time.time(), self.command)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps(asdict(me)) + "\n").encode())
        os.fsync(fd)

    def _refuse(self, found: Holder | None, certain: bool) -> None:
        if found is None:
            raise RunLockedError(f"{self.run_dir} is in use by another process (it is starting); wait for it to "
                                 "finish, or stop it first")
        if found.host != socket.gethostname():
            raise RunLockedError(f"{self.run_dir} is in use by {found.describe()}; stop it there first, or if it "
                                 f"is gone, delete {self.path}")
        how = f"stop it first (e.g. `kill {found.pid}`)"
        if not certain:
            how += f", or if it is not an rnntui process, delete {self.path}"
        raise RunLockedError(f"{self.run_dir} is in use by {found.describe()}; wait for it to finish or {how}")

    def release(self) -> None:
        """Give the lock up: the file goes first, while still held, so no one locks a file about to vanish."""
        fd, self._fd = self._fd, None
        _held.discard(self)
        if fd is None or os.getpid() != self._owner:
            return
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only or vanished directory: the flock below still ends, and the file names a gone PID
        os.close(fd)


_held: set[RunLock] = set()


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


@atexit.register
def _release_all() -> None:
    for lock in list(_held):
        lock.release()
