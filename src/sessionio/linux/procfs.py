"""Reading processes from /proc: who a process is, and which audit session it belongs to.

Every OSError of every read goes through one choke point (``_translate``, psutil's
``wrap_exceptions``): ENOENT / ESRCH become ``NoSuchProcess``, EACCES / EPERM ``AccessDenied``,
so a process that exits while we look is never reported with half of another's data. Reads use
``os.open`` / ``os.read`` rather than ``open()``: a session lookup sits on the fanotify
permission path, where a buffered file object costs more than the read itself.

The /proc root and the function that opens files are injected (``ProcFS(root, opener=...)``),
so tests run against a fake tree and inject the failures root cannot provoke.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sessionio.errors import AccessDenied, NoSuchProcess, UnsupportedPlatformError
from sessionio.protocols.procfs import (
    ProcStat,
    ProcStatus,
    parse_boot_time,
    parse_cgroup,
    parse_cmdline,
    parse_id,
    parse_stat,
    parse_status,
    tty_name,
)

__all__ = ["Opener", "ProcFS", "ProcessSnapshot"]

Opener = Callable[[str, int], int]
"""``opener(path, flags) -> fd``, as ``os.open`` (and the ``opener=`` of ``open()``)."""

_O_FLAGS: Final = os.O_RDONLY | os.O_CLOEXEC
_READ_SIZE: Final = 8192
_GONE: Final = frozenset({errno.ENOENT, errno.ESRCH})
_DENIED: Final = frozenset({errno.EACCES, errno.EPERM})


@dataclass(frozen=True, slots=True)
class ProcessSnapshot:
    """One process, every field read from the same process (the pid was not reused meanwhile).

    ``uid`` / ``euid`` are the real and effective uid; ``login_uid`` and ``session_id`` are the
    audit loginuid and session id, ``None`` when unset. ``exe`` is ``None`` for kernel threads
    and zombies, and also when the kernel's ptrace access check hides it (a more privileged
    process; ``ProcFS.exe`` raises ``AccessDenied`` then). ``thread_session_ids`` lists
    ``(tid, session_id)`` for the threads whose audit session differs from the process's (a
    thread that wrote its own loginuid), sorted by tid.
    """

    pid: int
    ppid: int
    start_ticks: int
    comm: str
    state: str
    exe: str | None
    cmdline: tuple[str, ...]
    uid: int
    euid: int
    login_uid: int | None
    session_id: int | None
    tty: str | None
    thread_session_ids: tuple[tuple[int, int | None], ...] = ()


class ProcFS:
    """A /proc tree (``/proc`` by default). Stateless but for the cached boot time."""

    def __init__(
        self,
        root: str | os.PathLike[str] = "/proc",
        *,
        opener: Opener = os.open,
        clock_ticks: int | None = None,
    ) -> None:
        self._root = os.fspath(root)
        self._opener = opener
        self._clock_ticks = clock_ticks or os.sysconf("SC_CLK_TCK")
        self._boot_time: int | None = None

    @property
    def root(self) -> str:
        return self._root

    # -- the choke point --------------------------------------------------------------------------

    def _translate(self, err: OSError, pid: int, tid: int | None, path: str) -> Exception | None:
        """The sessionio error an OSError on ``path`` means, or None to re-raise it as it is."""
        if err.errno in _DENIED:
            return AccessDenied(pid)
        if err.errno not in _GONE:
            return None
        owner = self._dir(pid, tid)
        if err.errno == errno.ENOENT and os.path.isdir(owner) and not os.path.lexists(path):
            # The process is still there: this kernel does not provide the file.
            name = os.path.relpath(path, owner)
            return UnsupportedPlatformError(f"{path} does not exist on this kernel", feature=name)
        if tid is not None and os.path.isdir(self._dir(pid, None)):
            return NoSuchProcess(pid, msg=f"thread {tid} no longer exists")
        return NoSuchProcess(pid)

    def _dir(self, pid: int, tid: int | None) -> str:
        if tid is None:
            return f"{self._root}/{pid}"
        return f"{self._root}/{pid}/task/{tid}"

    def _read(self, pid: int, tid: int | None, name: str) -> bytes:
        path = f"{self._dir(pid, tid)}/{name}"
        try:
            fd = self._opener(path, _O_FLAGS)
            try:
                data = os.read(fd, _READ_SIZE)
                if len(data) == _READ_SIZE:  # /proc files end at the first short read
                    chunks = [data]
                    while len(chunk := os.read(fd, _READ_SIZE)) == _READ_SIZE:
                        chunks.append(chunk)
                    chunks.append(chunk)
                    data = b"".join(chunks)
            finally:
                os.close(fd)
        except OSError as err:
            translated = self._translate(err, pid, tid, path)
            if translated is None:
                raise
            raise translated from err
        return data

    def _readlink(self, pid: int, name: str) -> str | None:
        """A symlink's target; None when the link is empty (kernel threads, zombies)."""
        path = f"{self._dir(pid, None)}/{name}"
        try:
            return os.readlink(path)
        except OSError as err:
            if err.errno == errno.ENOENT and os.path.isdir(self._dir(pid, None)):
                return None
            translated = self._translate(err, pid, None, path)
            if translated is None:
                raise
            raise translated from err

    def _listdir(self, pid: int, name: str) -> list[str]:
        path = f"{self._dir(pid, None)}/{name}"
        try:
            return os.listdir(path)
        except OSError as err:
            translated = self._translate(err, pid, None, path)
            if translated is None:
                raise
            raise translated from err

    # -- the machine ------------------------------------------------------------------------------

    def pids(self) -> list[int]:
        """Every process id, ascending (threads are under ``tids``)."""
        return sorted(int(n) for n in os.listdir(self._root) if n.isascii() and n.isdigit())

    def boot_time(self) -> int:
        """Boot time, seconds since the epoch (/proc/stat ``btime``); read once, then cached."""
        if self._boot_time is None:
            fd = self._opener(f"{self._root}/stat", _O_FLAGS)
            try:
                chunks = []
                while chunk := os.read(fd, 65536):
                    chunks.append(chunk)
            finally:
                os.close(fd)
            self._boot_time = parse_boot_time(b"".join(chunks))
        return self._boot_time

    # -- one process ------------------------------------------------------------------------------

    def stat(self, pid: int, tid: int | None = None) -> ProcStat:
        """/proc/PID/stat, or a thread's /proc/PID/task/TID/stat."""
        return parse_stat(self._read(pid, tid, "stat"))

    def status(self, pid: int) -> ProcStatus:
        return parse_status(self._read(pid, None, "status"))

    def session_id(self, pid: int, tid: int | None = None) -> int | None:
        """The audit session id (/proc/PID/sessionid), ``None`` when unset.

        It is per thread: with ``tid``, the thread's own (task/TID/sessionid), which differs
        from the process's when that thread wrote its loginuid.
        """
        return parse_id(self._read(pid, tid, "sessionid"))

    def login_uid(self, pid: int, tid: int | None = None) -> int | None:
        """The audit loginuid (/proc/PID/loginuid), ``None`` when unset."""
        return parse_id(self._read(pid, tid, "loginuid"))

    def exe(self, pid: int) -> str | None:
        """The executable's path, ``None`` for kernel threads and zombies (empty link)."""
        return self._readlink(pid, "exe")

    def cmdline(self, pid: int) -> list[str]:
        return parse_cmdline(self._read(pid, None, "cmdline"))

    def cgroup_session(self, pid: int) -> str | None:
        """The systemd-logind session id of the process's cgroup scope, ``None`` outside one."""
        return parse_cgroup(self._read(pid, None, "cgroup"))

    def tids(self, pid: int) -> list[int]:
        """The process's thread ids, ascending (the first is ``pid`` itself)."""
        return sorted(int(n) for n in self._listdir(pid, "task") if n.isascii() and n.isdigit())

    def start_time(self, pid: int) -> float:
        """When the process started, seconds since the epoch (the same figure as psutil's)."""
        return self.epoch_of(self.stat(pid).starttime)

    def epoch_of(self, start_ticks: int) -> float:
        """A stat ``starttime`` (clock ticks since boot) as seconds since the epoch."""
        return self.boot_time() + start_ticks / self._clock_ticks

    def process(self, pid: int) -> ProcessSnapshot:
        """A consistent snapshot of one process.

        stat is read first and again last: if the start time changed, the pid was reused by
        another process while we read, and ``NoSuchProcess`` is raised rather than a mix of
        the two processes. Threads that exit during the walk are left out.
        """
        first = self.stat(pid)
        status = self.status(pid)
        session_id = self.session_id(pid)
        login_uid = self.login_uid(pid)
        try:
            exe = self.exe(pid)
        except AccessDenied:
            exe = None  # the only field a ptrace access check guards; the rest is still true
        cmdline = self.cmdline(pid)
        differing: list[tuple[int, int | None]] = []
        for tid in self.tids(pid):
            if tid == pid:
                continue
            try:
                thread_session = self.session_id(pid, tid)
            except NoSuchProcess:
                continue  # the thread exited; whether the process did is checked below
            if thread_session != session_id:
                differing.append((tid, thread_session))
        last = self.stat(pid)
        if last.starttime != first.starttime:
            raise NoSuchProcess(pid, first.comm, msg="process exited and its pid was reused")
        return ProcessSnapshot(
            pid=pid,
            ppid=first.ppid,
            start_ticks=first.starttime,
            comm=first.comm,
            state=last.state,
            exe=exe,
            cmdline=tuple(cmdline),
            uid=status.uids.real,
            euid=status.uids.effective,
            login_uid=login_uid,
            session_id=session_id,
            tty=tty_name(first.tty_nr),
            thread_session_ids=tuple(differing),
        )
