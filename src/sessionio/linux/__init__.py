"""The only code that touches the Linux kernel: libc via ctypes, fanotify groups, netlink
sockets, /proc reads and the D-Bus system bus.

Inside this package, failures are stdlib ``OSError``; they become sessionio errors at one choke
point per resource (psutil's ``wrap_exceptions``).
"""
