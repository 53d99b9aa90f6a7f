"""A live proc connector subscription: every fork, exec and exit on the machine, as it happens.

The proc connector is a kernel multicast over ``NETLINK_CONNECTOR``; the wire format is parsed by
:mod:`sessionio.protocols.proc_connector`, and this module only owns the socket. Linux 6.18
accepts a subscriber without any capability (older kernels answered EPERM without CAP_NET_ADMIN,
raised here as :class:`~sessionio.errors.PrivilegeError`), but only from the initial user and pid
namespaces: elsewhere the kernel silently ignores the subscription.

Lost events. Multicast delivery drops messages when the socket's receive queue is full, and the
kernel then fails the next ``recv`` with ``ENOBUFS``. The events are gone and a process table
built from them is wrong (a missed EXIT keeps a session alive forever). :meth:`ProcConnector.read`
therefore *raises* :class:`~sessionio.errors.BrokenResourceError` for it, rather than returning a
marker event: a marker is silently skipped by the ordinary ``for event in events: match ...``
loop, an exception cannot be skipped without writing ``except``. The connector stays subscribed
and usable afterwards: catch the error, reconcile by scanning /proc, and keep reading.

The order is exact. The events queued before the loss are returned first, and the error is
raised after them (by the next call if they were returned). By then the queue has been read
empty, which is what makes the kernel deliver again: until then it drops every further message
*silently*, reporting one ENOBUFS per congestion episode. Every event read after the error
therefore postdates the loss, and a /proc scan made when the error is caught sees everything
the gap hid.

The reading discipline (poll, drain, kernel-only senders, ENOBUFS, deferred errors) is the same
for every netlink socket, so it lives here once as :class:`NetlinkReader` and
:class:`NetlinkSocket`, which :mod:`sessionio.linux.audit` reuses.
"""

from __future__ import annotations

import errno
import os
import select
import socket
import time
from collections.abc import Callable
from types import TracebackType
from typing import Generic, Self, TypeVar

from sessionio.errors import (
    BrokenResourceError,
    ClosedResourceError,
    MalformedEventError,
    PrivilegeError,
    UnsupportedPlatformError,
)
from sessionio.protocols.netlink import NetlinkProtocol
from sessionio.protocols.proc_connector import (
    CN_IDX_PROC,
    Ack,
    ProcEvent,
    encode_listen,
    parse_datagram,
)

__all__ = [
    "DEFAULT_RECEIVE_BUFFER",
    "NetlinkReader",
    "NetlinkSocket",
    "ProcConnector",
    "open_netlink_socket",
]

DEFAULT_RECEIVE_BUFFER = 8 * 1024 * 1024
"""Bytes of socket receive queue asked for: about 10,000 queued proc events (each costs about
768 bytes of kernel memory), a few seconds of a fork storm."""

_SO_RCVBUFFORCE = 33
"""SO_RCVBUFFORCE (asm-generic/socket.h): SO_RCVBUF past rmem_max, for CAP_NET_ADMIN."""

_DATAGRAM_SIZE = 4096
"""One proc connector datagram is 76 bytes; anything larger is not a proc event."""

_OVERFLOW_DRAIN_LIMIT = 1 << 20
"""Datagrams read at most after an overflow: far more than any receive queue holds."""

EventT = TypeVar("EventT")


def open_netlink_socket(
    protocol: NetlinkProtocol, type: int, *, feature: str, receive_buffer: int | None = None
) -> socket.socket:
    """A close-on-exec netlink socket of ``protocol``, with a large receive queue if asked.

    The receive queue is set with SO_RCVBUFFORCE, which ignores ``net.core.rmem_max`` but needs
    CAP_NET_ADMIN, falling back to SO_RCVBUF (capped by rmem_max) without it. Raises
    :class:`~sessionio.errors.UnsupportedPlatformError` naming ``feature`` when the platform or
    the kernel lacks the family.
    """
    family = getattr(socket, "AF_NETLINK", None)
    if family is None:
        raise UnsupportedPlatformError("netlink sockets exist only on Linux", feature=feature)
    try:
        sock = socket.socket(family, type, protocol)
    except OSError as err:
        if err.errno in (errno.EPROTONOSUPPORT, errno.EAFNOSUPPORT):
            raise UnsupportedPlatformError(
                f"the kernel has no netlink {protocol.name.lower()} family", feature=feature
            ) from err
        raise
    if receive_buffer is not None:
        try:
            try:
                sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, receive_buffer)
            except PermissionError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        except BaseException:
            sock.close()
            raise
    return sock


class NetlinkReader(Generic[EventT]):
    """Reads and parses what the kernel sends to one non-blocking netlink socket.

    ``parse`` turns one datagram into values; datagrams from any sender but the kernel (port 0)
    are dropped, because another process cannot speak for it. ``lost`` is the message of the
    :class:`~sessionio.errors.BrokenResourceError` raised on ``ENOBUFS``. The reader does not
    own the socket.
    """

    def __init__(
        self,
        sock: socket.socket,
        parse: Callable[[bytes], list[EventT]],
        *,
        lost: str,
        datagram_size: int,
        max_datagrams: int,
    ) -> None:
        self._sock = sock
        self._parse = parse
        self._lost = lost
        self._datagram_size = datagram_size
        self._max_datagrams = max_datagrams
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._pending: list[EventT] = []
        self._deferred: Exception | None = None

    def unread(self, values: list[EventT], error: Exception | None = None) -> None:
        """Give values (and an error to raise after them) back, for the next :meth:`read`."""
        self._pending.extend(values)
        if error is not None and self._deferred is None:
            self._deferred = error

    def read(self, timeout: float | None) -> list[EventT]:
        """Return what is available, waiting up to ``timeout`` seconds (``None``: forever) for
        the first value; ``[]`` when the time runs out. At most ``max_datagrams`` are drained.

        Raises :class:`~sessionio.errors.BrokenResourceError` on ENOBUFS (the socket stays
        usable) and :class:`~sessionio.errors.MalformedEventError` for a datagram that does not
        parse. An error met after some values were taken from the socket is raised by the next
        call instead, after those values are returned: nothing read is dropped.
        """
        if self._pending:
            values, self._pending = self._pending, []
            return values
        if self._deferred is not None:
            error, self._deferred = self._deferred, None
            raise error
        values = []
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                self._drain(values)
            except (BrokenResourceError, MalformedEventError) as error:
                if not values:
                    raise
                self._deferred = error
            if values:
                return values
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                return values
            self._poller.poll(None if wait is None else wait * 1000)

    def _drain(self, values: list[EventT]) -> None:
        """Append what is queued, up to the bound; raise after draining if something was wrong.

        After ENOBUFS the kernel marks the socket congested and drops further messages
        *silently* until the queue has been read empty, so the queue is then drained to the end
        (past the bound): the caller's reconciliation starts from a socket that delivers again.
        """
        overflow: OSError | None = None
        malformed: MalformedEventError | None = None
        budget = self._max_datagrams
        while budget > 0:
            try:
                data, (sender, _groups) = self._sock.recvfrom(self._datagram_size)
            except BlockingIOError:
                break
            except OSError as err:
                if err.errno != errno.ENOBUFS:
                    raise
                overflow, budget = err, _OVERFLOW_DRAIN_LIMIT
                continue
            budget -= 1
            if sender != 0:
                continue
            try:
                values.extend(self._parse(data))
            except MalformedEventError as error:
                malformed = malformed or error
        if overflow is not None:
            raise BrokenResourceError(self._lost) from overflow
        if malformed is not None:
            raise malformed


class NetlinkSocket:
    """The lifecycle every netlink socket of sessionio shares: ``fileno``, ``close``, ``with``.

    Using it after :meth:`close` raises :class:`~sessionio.errors.ClosedResourceError`.
    """

    _name = "the netlink socket"

    def __init__(self, sock: socket.socket) -> None:
        self._sock: socket.socket | None = sock

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._sock is None

    def fileno(self) -> int:
        """The socket's descriptor, for ``select``, ``poll`` or an event loop."""
        return self._socket().fileno()

    def close(self) -> None:
        """Close the socket; idempotent."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise ClosedResourceError(f"{self._name} is closed")
        return self._sock


class ProcConnector(NetlinkSocket):
    """A subscription to the proc connector, opened and subscribed on construction.

    Usable with ``select``/``poll``/``loop.add_reader`` through :meth:`fileno`, and as a context
    manager. :meth:`read` returns the parsed events (see
    :mod:`sessionio.protocols.proc_connector`), including the :class:`Ack` events the kernel
    multicasts when *other* sockets subscribe or unsubscribe. This socket's own ack is consumed
    by the constructor, which waits for it: once the constructor returns no event is missed, and
    a namespace where the connector is silent fails loudly instead of reading nothing forever.

    Not thread-safe: one reader.

    Raises, on construction: :class:`~sessionio.errors.UnsupportedPlatformError` (not Linux, no
    connector, or no ack within ``ack_timeout``: not in the initial pid and user namespaces, or
    no CONFIG_PROC_EVENTS), :class:`~sessionio.errors.PrivilegeError` (an old kernel wanting
    CAP_NET_ADMIN), ``OSError`` otherwise.
    """

    _name = "the proc connector"

    def __init__(
        self,
        *,
        receive_buffer: int = DEFAULT_RECEIVE_BUFFER,
        ack_timeout: float = 5.0,
        max_datagrams: int = 4096,
    ) -> None:
        """``receive_buffer`` is the socket receive queue to ask for, in bytes; ``max_datagrams``
        bounds how much one :meth:`read` drains, so that a fork storm cannot keep it looping.
        """
        sock = open_netlink_socket(
            NetlinkProtocol.CONNECTOR,
            socket.SOCK_DGRAM,
            feature="proc connector",
            receive_buffer=receive_buffer,
        )
        super().__init__(sock)
        self._listening = False
        try:
            try:
                sock.bind((0, CN_IDX_PROC))
            except PermissionError as err:
                raise PrivilegeError(
                    "joining the proc connector multicast group was refused",
                    capability="CAP_NET_ADMIN",
                ) from err
            sock.setblocking(False)
            self._reader = NetlinkReader(
                sock,
                parse_datagram,
                lost="the kernel dropped proc connector events (ENOBUFS): reconcile the "
                "process table by scanning /proc",
                datagram_size=_DATAGRAM_SIZE,
                max_datagrams=max_datagrams,
            )
            self._subscribe(sock, ack_timeout)
        except BaseException:
            self.close()
            raise

    @property
    def port_id(self) -> int:
        """The socket's netlink port id, also the ``cn_msg.ack`` of its LISTEN and IGNORE
        requests, so that their :class:`Ack` carries ``port_id + 1``."""
        port: int = self._socket().getsockname()[0]
        return port

    @property
    def receive_buffer(self) -> int:
        """The receive queue the kernel granted, in bytes (it doubles what was asked for)."""
        size: int = self._socket().getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        return size

    def read(self, timeout: float | None = None) -> list[ProcEvent]:
        """Return the events available, waiting up to ``timeout`` seconds for the first one.

        ``None`` waits until there is one; 0 does not wait. Returns ``[]`` when the time runs
        out.

        Raises :class:`~sessionio.errors.BrokenResourceError` when the kernel dropped events
        (``ENOBUFS``: reconcile with /proc and read on, the subscription holds),
        :class:`~sessionio.errors.MalformedEventError` when a datagram does not parse, and
        :class:`~sessionio.errors.ClosedResourceError` after :meth:`close`. An error met after
        some events were taken from the socket is raised by the next call, after those events.
        """
        self._socket()
        return self._reader.read(timeout)

    def close(self) -> None:
        """Unsubscribe and close; idempotent.

        Unsubscribing matters: the kernel counts listeners and builds events while the count is
        above zero, and closing a socket does not decrement it. IGNORE is sent only after a
        LISTEN the kernel accepted (on kernels before 6.6 the count is global, and an unmatched
        IGNORE would silence every other listener); failing to send it is ignored.
        """
        sock, self._sock = self._sock, None
        if sock is None:
            return
        try:
            if self._listening:
                port = sock.getsockname()[0]
                sock.sendto(encode_listen(port, False, ack=port), (0, 0))
        except OSError:
            pass
        finally:
            sock.close()

    def _subscribe(self, sock: socket.socket, timeout: float) -> None:
        """Send LISTEN and wait for its ack, keeping every other event for the first read."""
        port = self.port_id
        expected = (port + 1) & 0xFFFFFFFF
        sock.sendto(encode_listen(port, True, ack=port), (0, 0))
        self._listening = True
        deadline = time.monotonic() + timeout
        kept: list[ProcEvent] = []
        first_error: Exception | None = None
        while True:
            wait = deadline - time.monotonic()
            try:
                events = self._reader.read(max(wait, 0.0))
            except (BrokenResourceError, MalformedEventError) as error:
                # Raised by the first read; our ack may still be queued behind it.
                first_error = first_error or error
                events = []
            for event in events:
                if isinstance(event, Ack) and event.ack == expected:
                    self._listening = event.err == 0
                    _check_ack(event)
                    kept.extend(e for e in events if e is not event)
                    self._reader.unread(kept, first_error)
                    return
            kept.extend(events)
            if wait <= 0:
                raise UnsupportedPlatformError(
                    f"the proc connector did not acknowledge the subscription within {timeout} s: "
                    "it answers only in the initial pid and user namespaces, and needs "
                    "CONFIG_PROC_EVENTS",
                    feature="proc connector",
                )


def _check_ack(ack: Ack) -> None:
    if ack.err == 0:
        return
    if ack.err == errno.EPERM:
        raise PrivilegeError(
            "the proc connector refused the subscription", capability="CAP_NET_ADMIN"
        )
    raise OSError(ack.err, f"proc connector subscription failed: {os.strerror(ack.err)}")
