"""The kernel audit subsystem over ``NETLINK_AUDIT``: its record multicast and its on/off switch.

:class:`AuditMulticast` joins the read-only multicast group (``AUDIT_NLGRP_READLOG``) that every
kernel since 3.16 offers beside the unicast channel to auditd: it works with or without auditd
running and needs only CAP_AUDIT_READ. sessionio reads it for ``AUDIT_LOGIN`` records, the
kernel's notice of each new audit session (:class:`~sessionio.protocols.audit.AuditLogin`).

The kernel writes AUDIT_LOGIN only while ``audit_enabled`` is on, and it is off by default where
no auditd runs. Turning it on is a global change with a cost (without auditd, every record is
also printed to the kernel log, rate-limited), so sessionio never turns it on by itself.
:class:`AuditControl` reads and sets it for whoever decides to (an administrator's command, or a
test that restores the previous value afterwards).

Lost records (``ENOBUFS``) raise :class:`~sessionio.errors.BrokenResourceError`, as the proc
connector does and for the same reason: see :mod:`sessionio.linux.proc_connector`.
"""

from __future__ import annotations

import errno
import itertools
import os
import socket
import time

from sessionio.errors import BrokenResourceError, PrivilegeError
from sessionio.linux.netlink import (
    DEFAULT_RECEIVE_BUFFER,
    NetlinkReader,
    NetlinkSocket,
    open_netlink_socket,
)
from sessionio.protocols.audit import (
    AUDIT_NLGRP_READLOG,
    AuditEnabled,
    AuditLogin,
    AuditMessageType,
    AuditRecord,
    AuditStatus,
    AuditStatusMask,
    decode_status,
    encode_get_request,
    encode_set_request,
    parse_datagram,
    parse_login,
)
from sessionio.protocols.netlink import (
    NetlinkAck,
    NetlinkMessage,
    NetlinkProtocol,
    parse_messages,
)

__all__ = ["AuditControl", "AuditMulticast"]

_DATAGRAM_SIZE = 65536
"""Records reach about 9 KB (MAX_AUDIT_MESSAGE_LENGTH is 8970); a datagram holds one."""


class AuditMulticast(NetlinkSocket):
    """A member of the audit record multicast group, joined on construction.

    Usable with ``select``/``poll`` through :meth:`fileno`, and as a context manager. Records
    arrive only while ``audit_enabled`` is on (see :class:`AuditControl`), a few configuration
    records excepted. Not thread-safe: one reader.

    Raises, on construction: :class:`~sessionio.errors.PrivilegeError` with capability
    ``CAP_AUDIT_READ`` when the kernel refuses the group,
    :class:`~sessionio.errors.UnsupportedPlatformError` without audit support (not Linux, or no
    CONFIG_AUDIT), ``OSError`` otherwise.
    """

    _name = "the audit multicast socket"

    def __init__(
        self, *, receive_buffer: int = DEFAULT_RECEIVE_BUFFER, max_datagrams: int = 1024
    ) -> None:
        """``receive_buffer`` is the socket receive queue to ask for, in bytes; ``max_datagrams``
        bounds how much one :meth:`read` drains.
        """
        sock = open_netlink_socket(
            NetlinkProtocol.AUDIT, socket.SOCK_RAW, feature="audit", receive_buffer=receive_buffer
        )
        super().__init__(sock)
        try:
            try:
                sock.bind((0, 1 << (AUDIT_NLGRP_READLOG - 1)))
            except PermissionError as err:
                raise PrivilegeError(
                    "joining the audit multicast group needs CAP_AUDIT_READ",
                    capability="CAP_AUDIT_READ",
                ) from err
            sock.setblocking(False)
        except BaseException:
            self.close()
            raise
        self._reader = NetlinkReader(
            sock,
            parse_datagram,
            lost="the kernel dropped audit records (ENOBUFS): sessions created meanwhile must "
            "be found by scanning /proc",
            datagram_size=_DATAGRAM_SIZE,
            max_datagrams=max_datagrams,
        )

    def read(self, timeout: float | None = None) -> list[AuditRecord]:
        """Return the records available, waiting up to ``timeout`` seconds for the first one.

        ``None`` waits until there is one; 0 does not wait; ``[]`` when the time runs out.
        Raises :class:`~sessionio.errors.BrokenResourceError` when the kernel dropped records
        (the socket stays usable), :class:`~sessionio.errors.MalformedEventError` for a datagram
        that does not parse and :class:`~sessionio.errors.ClosedResourceError` after
        :meth:`close`; an error met after some records were read is raised by the next call,
        after those records.
        """
        self._socket()
        return self._reader.read(timeout)

    def read_logins(self, timeout: float | None = None) -> list[AuditLogin]:
        """Return the AUDIT_LOGIN records among those that arrive, typed, waiting up to
        ``timeout`` seconds for the first one. Other records are read and discarded.

        Raises what :meth:`read` raises, and :class:`~sessionio.errors.MalformedEventError` for
        an AUDIT_LOGIN record that does not type.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            records = self.read(wait)
            logins = [parse_login(r) for r in records if r.type == AuditMessageType.LOGIN]
            if logins or wait == 0:
                return logins


class AuditControl(NetlinkSocket):
    """The audit control channel: read ``struct audit_status`` and switch auditing on or off.

    Every request needs CAP_AUDIT_CONTROL and the initial pid namespace; without them the kernel
    answers EPERM, raised as :class:`~sessionio.errors.PrivilegeError` with that capability.
    ``timeout`` bounds the wait for each answer (a silent kernel raises
    :class:`~sessionio.errors.BrokenResourceError`).
    """

    _name = "the audit control socket"

    def __init__(self, *, timeout: float = 5.0) -> None:
        sock = open_netlink_socket(NetlinkProtocol.AUDIT, socket.SOCK_RAW, feature="audit")
        super().__init__(sock)
        try:
            sock.bind((0, 0))
            sock.setblocking(False)
        except BaseException:
            self.close()
            raise
        self._timeout = timeout
        self._seq = itertools.count(1)
        self._reader = NetlinkReader(
            sock,
            parse_messages,
            lost="the kernel dropped audit control answers (ENOBUFS)",
            datagram_size=_DATAGRAM_SIZE,
            max_datagrams=64,
        )

    def status(self) -> AuditStatus:
        """AUDIT_GET: the kernel's audit status (``enabled``, ``pid`` of auditd, ``lost``, ...)."""
        seq = next(self._seq)
        answer = self._request(encode_get_request(seq), seq, "AUDIT_GET")
        if isinstance(answer, NetlinkAck) or answer.type != AuditMessageType.GET:
            raise BrokenResourceError("the kernel answered AUDIT_GET without its status")
        return decode_status(answer.payload)

    def set_enabled(self, enabled: int) -> int:
        """Set ``audit_enabled`` (:class:`~sessionio.protocols.audit.AuditEnabled`) and return
        the value it had, so that the caller can restore it.

        ``AuditEnabled.LOCKED`` (2) cannot be undone before reboot. A locked configuration
        refuses every change: that raises ``PermissionError`` (EPERM) naming the lock. The read
        and the write are two requests; a concurrent change between them is not detected.
        """
        if enabled not in tuple(AuditEnabled):
            raise ValueError(f"audit_enabled must be 0, 1 or 2, not {enabled}")
        previous = self.status().enabled
        if previous == AuditEnabled.LOCKED:
            raise PermissionError(
                errno.EPERM, "the audit configuration is locked (enabled=2) until reboot"
            )
        seq = next(self._seq)
        status = AuditStatus(mask=AuditStatusMask.ENABLED, enabled=enabled)
        self._request(encode_set_request(seq, status), seq, "AUDIT_SET")
        return previous

    def _request(self, request: bytes, seq: int, name: str) -> NetlinkMessage | NetlinkAck:
        """Send ``request`` and return its answer: the reply, or the successful ACK."""
        sock = self._socket()
        sock.sendto(request, (0, 0))
        deadline = time.monotonic() + self._timeout
        while True:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise BrokenResourceError(f"the kernel did not answer {name} in {self._timeout} s")
            for item in self._reader.read(wait):
                if isinstance(item, NetlinkAck):
                    if item.request is None or item.request.seq != seq:
                        continue  # a late answer to an earlier request
                    if item.errno == errno.EPERM:
                        raise PrivilegeError(
                            f"{name} needs CAP_AUDIT_CONTROL (and the initial pid namespace)",
                            capability="CAP_AUDIT_CONTROL",
                        )
                    if item.errno:
                        raise OSError(item.errno, f"{name} failed: {os.strerror(item.errno)}")
                    return item
                if item.seq == seq:
                    return item
