"""Who asked: a fanotify event's requesting thread, process and audit session, exactly, even
when the process has exited and been reaped before the event is read.

fanotify reports a pid (a tid with FAN_REPORT_TID) and, with FAN_REPORT_PIDFD, a pidfd made at
``read()`` time. /proc tells the rest, but only while the process lives: a short-lived process
(``echo x > f``) is often reaped before its MODIFY and CLOSE_WRITE events are read, and its pid
may by then belong to another process. :class:`Attributor` answers with one of three
:class:`Attribution` marks, and never with another process's session:

``exact``
    Read from /proc while the requester provably was the process holding the pid: during a
    permission event (the requester is blocked until answered, so it can neither exit nor
    change), or for a notification event whose pidfd still refers to a live (or zombie)
    process after the reads; or, for a notification event without a usable pidfd, when the
    pid cannot have changed hands since the event was queued (see the proof below).
``remembered``
    The requester had gone; the answer is what was read while it lived (every exact answer is
    remembered, per process, in a bounded LRU table), used only when the proof below shows it
    is the same process.
``unidentified``
    Neither: the thread is ``None`` (the model's "no thread": FltGetRequestorSessionId gives
    STATUS_UNSUCCESSFUL, the session is -1).

What is re-read and what is cached: a process's audit session can change while it lives (it
is set by writing /proc/self/loginuid, which pam_loginuid does after fork, in the process that
then runs the session), and exec changes comm and exe, so a live requester's stat, status,
sessionid and exe are read on every event, and its loginuid whenever the sessionid is not the
one remembered for that (pid, start time) (writing loginuid always gives a new sessionid, or
unsets both); its command line is cached per (pid, start time, exe). The remembered entry is
the last exact answer for that process.

When a remembered entry may be used (the proof). Entries are keyed by pid and hold the
latest process seen with it: a newer process with that pid replaces the entry, so a reused pid
never inherits the old process's session. The entry for process S (pid P) is used for an event
of a requester R that is gone only if both hold:

1. **No new holder since S was seen** (R cannot be younger than S). Any other process taking P
   after S needs the kernel to allocate P again, and pids are allocated cyclically: the
   allocation cursor (the last pid, /proc/loadavg's last field) must pass P again.
   :class:`PidCursor` follows the cursor as a position that only grows (counting wraps), and
   the entry keeps the position seen when S was last read alive; if the cursor has since
   passed P, the entry is refused (and dropped). The argument assumes the cursor is sampled
   more often than it can go all the way round: it is sampled on every batch, every lookup and
   at least every poll interval of the reader, so it holds unless more than ``pid_max - 300``
   processes and threads are created between two samples (about 130,000 a second with the
   default minimum pid_max, 32768, and the monitor's 0.25 s poll interval).
2. **The event was queued after S was first seen** (R cannot be older than S). Notification
   events sit in their own queue: an event queued before S existed could be read after a
   permission event of S taught us S. Each time the notification queue is seen empty, the
   queue *epoch* is incremented; events carry the epoch of their read (a
   :class:`NotificationStamp`). An entry learned from a notification event is usable from that
   event's epoch on (the queue is FIFO: events read after it were queued after it); an entry
   learned from a permission event read at epoch ``e`` is usable from ``e + 1`` on, which the
   reader makes true by draining the notification queue (seeing it empty) after reading a
   permission event and before answering it. An event queued before S's permission event is
   then in the queue at every moment until it is read, so it is read before the next empty
   observation: its epoch is at most ``e``, and it is refused.

   A permission event whose requester vanished (killed while blocked) is in the permission
   queue, FIFO with S's own permission events: it may use an entry that was learned from a
   permission event at least once, under rule 1.

The same proof lets a notification event without a pidfd (an older kernel, or FAN_EPIDFD) be
read live: if the cursor has not passed P since the last time the queue was seen empty before
the event was read, the pid cannot have changed hands since the event was queued, so the
current holder is the requester. A thread's own session (a thread that wrote its own loginuid)
is exact for permission events with FAN_REPORT_TID; notification events name the process only
(FAN_REPORT_TID cannot be combined with FAN_REPORT_PIDFD up to at least 6.18), so they carry
the process's session.

Every lookup reads /proc (never a watched filesystem) and resolves no user names (the passwd
database may sit on a watched filesystem): the reader thread of a permission group may call it.
"""

from __future__ import annotations

import enum
import os
import signal
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sessionio.errors import AccessDenied, MalformedEventError, SessionioError
from sessionio.linux.procfs import ProcessSnapshot
from sessionio.model.ids import NO_SESSION, SessionId, Tid
from sessionio.model.process import Process, Thread
from sessionio.protocols.fanotify import FAN_NOPIDFD
from sessionio.protocols.procfs import tty_name
from sessionio.runtime.linux_kernel import LinuxKernel, thread_of

__all__ = [
    "DEFAULT_CAPACITY",
    "Attribution",
    "Attributor",
    "NotificationStamp",
    "PidCursor",
    "Requester",
    "parse_last_pid",
    "pidfd_alive",
]

DEFAULT_CAPACITY: Final = 8192
"""Processes remembered at most; the least recently used is forgotten first."""

_UNREADABLE: Final = (SessionioError, OSError)
"""Why /proc can fail us: NoSuchProcess, AccessDenied, or (never seen) bytes that do not parse."""
_RESERVED_PIDS: Final = 300  # the kernel's RESERVED_PIDS: where the cursor restarts after a wrap


class Attribution(enum.StrEnum):
    """How sure the requester of an operation is (see the module docstring)."""

    EXACT = "exact"
    REMEMBERED = "remembered"
    UNIDENTIFIED = "unidentified"


@dataclass(frozen=True, slots=True)
class Requester:
    """The requester of one operation as the model needs it.

    ``pid`` and ``tid`` are what the event said (``tid`` equals ``pid`` when the event named
    a process); ``thread`` is None only when ``attribution`` is UNIDENTIFIED. ``euid`` and
    ``login_uid`` are the requesting thread's effective uid and audit loginuid (None when unset
    or unknown); names are left to the caller, off the reader thread.
    """

    pid: int
    tid: int
    thread: Thread | None
    attribution: Attribution
    euid: int | None = None
    login_uid: int | None = None

    @property
    def process(self) -> Process | None:
        return None if self.thread is None else self.thread.process

    @property
    def session_id(self) -> SessionId:
        """The thread's session; NO_SESSION (-1) when it has none or is unidentified."""
        return NO_SESSION if self.thread is None else self.thread.session_id

    @classmethod
    def unidentified(cls, pid: int, tid: int | None = None) -> Requester:
        return cls(pid, pid if tid is None else tid, None, Attribution.UNIDENTIFIED)


@dataclass(frozen=True, slots=True)
class NotificationStamp:
    """When a batch of notification events was read, in the terms of the proof: ``epoch`` is
    how many times the queue had been seen empty before, ``cursor`` the pid cursor's position
    sampled just before the last of those observations (every event of the batch was queued
    after it)."""

    epoch: int
    cursor: int


def parse_last_pid(data: bytes) -> int:
    """The last allocated pid, the fifth field of /proc/loadavg (``"0.00 0.01 0.05 1/87 4242"``).

    Raises :class:`~sessionio.errors.MalformedEventError` for anything else.
    """
    fields = data.split()
    if len(fields) != 5 or b"/" not in fields[3]:
        raise MalformedEventError(f"/proc/loadavg: {data[:80]!r} is not five fields")
    last = fields[4]
    if not last.isdigit() or not last.isascii() or len(last) > 10:
        raise MalformedEventError(f"/proc/loadavg: last pid {last[:20]!r} is not a number")
    return int(last)


def _read_small(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 256)
    finally:
        os.close(fd)


class PidCursor:
    """The kernel's pid allocation cursor as a position that only grows.

    ``read_last_pid()`` returns the last allocated pid (the live default reads /proc/loadavg,
    present on every kernel, unlike ns_last_pid); a smaller value than the previous sample
    means the cursor wrapped. Positions are ``cycles * pid_max + last``. If the cursor is ever
    seen at or above ``pid_max`` (pid_max was raised), positions jump past every earlier
    ``since`` value, so everything remembered before becomes unusable, never wrong.
    """

    def __init__(self, read_last_pid: Callable[[], int], pid_max: int) -> None:
        if pid_max <= _RESERVED_PIDS:
            raise ValueError(f"pid_max {pid_max} is not above {_RESERVED_PIDS}")
        self._read = read_last_pid
        self._pid_max = pid_max
        self._base = 0
        self._cycles = 0
        self._last = read_last_pid()
        self._floor = 0

    @classmethod
    def live(cls, proc_root: str = "/proc") -> PidCursor:
        """The running kernel's cursor (in the reader's pid namespace)."""
        pid_max = int(_read_small(f"{proc_root}/sys/kernel/pid_max"))
        loadavg = f"{proc_root}/loadavg"
        return cls(lambda: parse_last_pid(_read_small(loadavg)), pid_max)

    @property
    def pid_max(self) -> int:
        return self._pid_max

    def sample(self) -> int:
        """The cursor's position now."""
        last = self._read()
        if last >= self._pid_max:
            # pid_max was raised: old positions no longer compare; start above all of them.
            self._base = self._position() + 2 * max(self._pid_max, last + 1)
            self._floor = self._base
            self._pid_max = max(self._pid_max, last + 1)
            self._cycles = 0
        elif last < self._last:
            self._cycles += 1
        self._last = last
        return self._position()

    def _position(self) -> int:
        return self._base + self._cycles * self._pid_max + self._last

    def swept(self, pid: int, since: int, until: int) -> bool:
        """True when the cursor may have allocated ``pid`` after position ``since`` and up to
        ``until``: the next position after ``since`` that stands for ``pid`` is not beyond
        ``until``. Positions from before a pid_max change count as swept."""
        if since < self._floor:
            return True
        start = since + 1
        first = start + (pid - start) % self._pid_max
        return first <= until


def pidfd_alive(pidfd: int) -> bool:
    """Whether the process a pidfd refers to has not been reaped (a zombie counts as alive:
    it still holds its pid, and /proc still shows its session)."""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists; we may only not signal it
    return True


@dataclass(frozen=True, slots=True)
class _Entry:
    """What was last read about one process while it lived."""

    process: Process
    start_ticks: int
    euid: int | None
    cursor: int  # position sampled at the latest exact read
    usable_from: int  # first notification epoch this entry may answer for
    via_permission: bool  # ever read during one of its permission events


class Attributor:
    """Attribution with memory; one per reader (it is not thread-safe: the reader owns it).

    The reader tells it about the notification queue (:meth:`queue_empty`, :meth:`stamp`)
    and about permission batches (:meth:`permission_token`), and asks :meth:`blocked` for a
    permission event's requester and :meth:`notified` for a notification event's.
    ``pidfd_alive`` is injectable for tests; ``cursor`` too (the live one by default).
    """

    def __init__(
        self,
        kernel: LinuxKernel,
        *,
        capacity: int = DEFAULT_CAPACITY,
        cursor: PidCursor | None = None,
        is_alive: Callable[[int], bool] = pidfd_alive,
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._kernel = kernel
        self._procfs = kernel.procfs
        self._capacity = capacity
        self._cursor = cursor if cursor is not None else PidCursor.live(kernel.procfs.root)
        self._is_alive = is_alive
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._epoch = 0
        self._empty_cursor = self._cursor.sample()

    # -- the clock of the notification queue ------------------------------------------------

    @property
    def cursor(self) -> PidCursor:
        return self._cursor

    @property
    def epoch(self) -> int:
        """How many times the notification queue has been seen empty."""
        return self._epoch

    def sample(self) -> int:
        """Sample the pid cursor (the reader calls it at least every poll interval)."""
        return self._cursor.sample()

    def queue_empty(self, sampled_before: int) -> None:
        """The notification queue was seen empty; ``sampled_before`` is a :meth:`sample` taken
        before the read or poll that saw it."""
        self._epoch += 1
        self._empty_cursor = sampled_before

    def stamp(self) -> NotificationStamp:
        """The stamp of a notification batch being read now."""
        return NotificationStamp(self._epoch, self._empty_cursor)

    def permission_token(self) -> int:
        """The token of a permission batch being read now: the epoch from which what its
        events teach may answer notification events (one more empty observation is needed)."""
        return self._epoch + 1

    # -- lookups ----------------------------------------------------------------------------

    def blocked(self, pid: int, token: int, *, is_tid: bool = False) -> Requester:
        """The requester of a permission event: ``pid`` is the event's pid (a tid when the
        group reports tids, ``is_tid``), ``token`` the batch's :meth:`permission_token`."""
        if pid <= 0:
            return Requester.unidentified(pid)
        try:
            requester, start_ticks = self._read_live(pid, is_tid=is_tid)
        except _UNREADABLE:
            # Killed while blocked (a fatal signal wakes it): FIFO with its own permission
            # events, so an entry once learned from one is safe under rule 1.
            return self._remembered(pid, lambda entry: entry.via_permission)
        # Blocked until answered: it holds its pid at any sample taken now.
        self._learn(
            requester, start_ticks, self._cursor.sample(), usable_from=token, via_permission=True
        )
        return requester

    def notified(self, pid: int, pidfd: int | None, stamp: NotificationStamp) -> Requester:
        """The requester of a notification event: ``pidfd`` is the event's pidfd record
        (None without FAN_REPORT_PIDFD), ``stamp`` its batch's :meth:`stamp`."""
        if pid <= 0:
            return Requester.unidentified(pid)
        if pidfd is None or pidfd != FAN_NOPIDFD:
            try:
                requester, start_ticks = self._read_live(pid, is_tid=False)
            except _UNREADABLE:
                pass
            else:
                # A position sampled while the requester provably held the pid.
                cursor = self._cursor.sample()
                if pidfd is not None and pidfd >= 0:
                    # Alive after the reads (and the sample): the pid had no other holder.
                    proven = self._is_alive(pidfd)
                else:
                    # No pidfd to prove identity (none reported, or FAN_EPIDFD): the live
                    # holder is the requester if the pid cannot have been allocated since the
                    # event was queued.
                    proven = not self._cursor.swept(pid, stamp.cursor, cursor)
                if proven:
                    self._learn(
                        requester,
                        start_ticks,
                        cursor,
                        usable_from=stamp.epoch,
                        via_permission=False,
                    )
                    return requester
        return self._remembered(pid, lambda entry: entry.usable_from <= stamp.epoch)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def capacity(self) -> int:
        return self._capacity

    # -- internals --------------------------------------------------------------------------

    def _remembered(self, pid: int, usable: Callable[[_Entry], bool]) -> Requester:
        entry = self._entries.get(pid)
        if entry is None:
            return Requester.unidentified(pid)
        if self._cursor.swept(pid, entry.cursor, self._cursor.sample()):
            del self._entries[pid]  # the pid may have a new holder: never answer with it again
            return Requester.unidentified(pid)
        if not usable(entry):
            return Requester.unidentified(pid)
        self._entries.move_to_end(pid)
        return Requester(
            pid,
            pid,
            Thread(Tid(pid), entry.process),
            Attribution.REMEMBERED,
            entry.euid,
            entry.process.login_uid,
        )

    def _learn(
        self,
        requester: Requester,
        start_ticks: int,
        cursor: int,
        *,
        usable_from: int,
        via_permission: bool,
    ) -> None:
        """Remember an exact answer; ``cursor`` was sampled while the process held its pid."""
        process = requester.process
        if process is None:
            return
        pid = int(process.pid)
        old = self._entries.get(pid)
        if old is not None and old.start_ticks == start_ticks:
            usable_from = min(usable_from, old.usable_from)
            via_permission = via_permission or old.via_permission
        # Remembered answers name the process, so they keep its main thread's euid.
        euid = requester.euid if requester.tid == pid else None
        if euid is None and old is not None and old.start_ticks == start_ticks:
            euid = old.euid
        self._entries[pid] = _Entry(process, start_ticks, euid, cursor, usable_from, via_permission)
        self._entries.move_to_end(pid)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def _read_live(self, task: int, *, is_tid: bool) -> tuple[Requester, int]:
        """Read ``task`` (a tid, or a pid) from /proc now, with its process's start time in
        ticks; the caller proves it is the requester. NoSuchProcess / AccessDenied when it
        cannot be read."""
        procfs = self._procfs
        stat = procfs.stat(task)
        status = procfs.status(task)
        tgid = status.tgid if is_tid else task
        session = procfs.session_id(task)
        old = self._entries.get(tgid)
        if (
            tgid == task
            and old is not None
            and old.start_ticks == stat.starttime
            and old.process.session_id == (NO_SESSION if session is None else session)
        ):
            # Writing loginuid always changes the sessionid (a fresh one, or unset with it):
            # the same process in the same session still has the loginuid read before.
            login = old.process.login_uid
        else:
            login = procfs.login_uid(task)
        if tgid == task:
            main_stat, main_session, main_login = stat, session, login
        else:
            main_stat = procfs.stat(tgid)
            main_session = procfs.session_id(tgid)
            main_login = procfs.login_uid(tgid)
        try:
            exe = procfs.exe(tgid)
        except AccessDenied:
            exe = None
        same = old is not None and old.start_ticks == main_stat.starttime
        cmdline: tuple[str, ...] | None = None
        if same and old is not None:
            if exe is None and main_stat.state == "Z":
                exe = old.process.exe  # a zombie's exe link is empty; it is the same process
            if exe == old.process.exe:
                cmdline = old.process.cmdline
        if cmdline is None:
            cmdline = tuple(procfs.cmdline(tgid))
            if not cmdline and same and old is not None:
                cmdline = old.process.cmdline  # a zombie's cmdline is empty too
        snapshot = ProcessSnapshot(
            pid=tgid,
            ppid=main_stat.ppid,
            start_ticks=main_stat.starttime,
            comm=main_stat.comm,
            state=main_stat.state,
            exe=exe,
            cmdline=cmdline,
            uid=status.uids.real,
            euid=status.uids.effective,
            login_uid=main_login,
            session_id=main_session,
            tty=tty_name(main_stat.tty_nr),
        )
        process = self._kernel.process_from_snapshot(snapshot)
        thread = thread_of(process, task, session)
        requester = Requester(tgid, task, thread, Attribution.EXACT, status.uids.effective, login)
        return requester, main_stat.starttime
