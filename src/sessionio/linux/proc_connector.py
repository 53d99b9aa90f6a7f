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
for every netlink socket, so it lives once in :mod:`sessionio.linux.netlink`
(:class:`~sessionio.linux.netlink.NetlinkReader`, :class:`~sessionio.linux.netlink.NetlinkSocket`),
which this module and :mod:`sessionio.linux.audit` use.
"""

from __future__ import annotations

import errno
import os
import socket
import time

from sessionio.errors import (
    BrokenResourceError,
    MalformedEventError,
    PrivilegeError,
    UnsupportedPlatformError,
)
from sessionio.linux.netlink import (
    DEFAULT_RECEIVE_BUFFER,
    NetlinkReader,
    NetlinkSocket,
    open_netlink_socket,
)
from sessionio.protocols.netlink import NetlinkProtocol
from sessionio.protocols.proc_connector import (
    CN_IDX_PROC,
    Ack,
    ProcEvent,
    encode_listen,
    parse_datagram,
)

__all__ = ["ProcConnector"]

_DATAGRAM_SIZE = 4096
"""One proc connector datagram is 76 bytes; anything larger is not a proc event."""


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
