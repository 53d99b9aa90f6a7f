"""Netlink sockets as sessionio reads them: opening, the reading discipline, the lifecycle.

Every netlink socket of sessionio (the proc connector, the audit multicast group, the audit
control channel) is read the same way: poll, drain what is queued up to a bound, keep only what
the kernel sent (port 0), turn ``ENOBUFS`` into :class:`~sessionio.errors.BrokenResourceError`
after returning what was read before it, and defer any error met after some values were taken.
That discipline lives here once (:class:`NetlinkReader`), with the lifecycle the sockets share
(:class:`NetlinkSocket`) and the way they are opened (:func:`open_netlink_socket`); the wire
formats are in :mod:`sessionio.protocols.netlink` and the protocols above it. Why ENOBUFS is an
exception rather than a marker event is explained in :mod:`sessionio.linux.proc_connector`.
"""

from __future__ import annotations

import errno
import select
import socket
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from sessionio.errors import (
    BrokenResourceError,
    ClosedResourceError,
    MalformedEventError,
    UnsupportedPlatformError,
)
from sessionio.linux.resource import Resource
from sessionio.protocols.netlink import NetlinkProtocol

__all__ = [
    "DEFAULT_RECEIVE_BUFFER",
    "NetlinkReader",
    "NetlinkSocket",
    "open_netlink_socket",
]

DEFAULT_RECEIVE_BUFFER = 8 * 1024 * 1024
"""Bytes of socket receive queue asked for: about 10,000 queued proc events (each costs about
768 bytes of kernel memory), a few seconds of a fork storm."""

_SO_RCVBUFFORCE = 33
"""SO_RCVBUFFORCE (asm-generic/socket.h): SO_RCVBUF past rmem_max, for CAP_NET_ADMIN."""

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


class NetlinkSocket(Resource):
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

    def _socket(self) -> socket.socket:
        if self._sock is None:
            raise ClosedResourceError(f"{self._name} is closed")
        return self._sock
