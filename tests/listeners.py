"""Which TCP ports the test processes listen on: every listener a test starts must be on loopback."""

from __future__ import annotations

import ipaddress

import psutil


def listening(root: psutil.Process | None = None) -> list[tuple[int, str, str, int]]:
    """Return ``(pid, name, address, port)`` of every TCP listener of `root` and its descendants.

    Parameters
    ----------
    root : psutil.Process, optional
        The top process (default: this one, the test session: it starts every server and cluster).
    """
    root = root or psutil.Process()
    found = []
    for process in [root, *root.children(recursive=True)]:
        try:
            sockets = process.net_connections("tcp")
            name = process.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        found += [
            (process.pid, name, s.laddr.ip, s.laddr.port) for s in sockets if s.status == psutil.CONN_LISTEN
        ]
    return found


def exposed(root: psutil.Process | None = None) -> list[tuple[int, str, str, int]]:
    """Return the listeners of :func:`listening` not on a loopback address (0.0.0.0, ::, a LAN address)."""
    return [entry for entry in listening(root) if not _loopback(entry[2])]


def _loopback(address: str) -> bool:
    """Whether an IP address (an IPv6 one possibly with a ``%zone``) is a loopback address."""
    return ipaddress.ip_address(address.split("%")[0]).is_loopback
