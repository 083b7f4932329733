"""Listening ports that belong to one gateway only: refused in one line when already taken.

``serve --workers N`` binds a socket per worker with ``SO_REUSEPORT`` (http_server.py), and
Linux lets any later socket of the same user with that option join the port: a second gateway
started on the same port would silently take half the connections. So before binding with
``SO_REUSEPORT`` the port is probed with a plain socket, which any bound socket refuses, and the
probe and the bind happen under a short start-up claim (an abstract Unix socket, scoped like the
port to the network namespace), so two gateways starting at the same instant cannot both pass.
"""

from __future__ import annotations

import errno
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

_CLAIM_WAIT_SECONDS = 5.0
_CLAIM_RETRY_SECONDS = 0.02


class PortInUseError(RuntimeError):
    """A port the gateway must listen on is taken; the message is one line for the operator."""


def socket_family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


SERVE_PORT_HINT = "choose a free one with --port or PORT"


def ensure_port_free(host: str, port: int, *, hint: str = SERVE_PORT_HINT) -> None:
    """Raises ``PortInUseError`` (naming ``hint``, what to change) when something, with or
    without ``SO_REUSEPORT``, is bound to ``host:port``."""
    probe = socket.socket(socket_family(host), socket.SOCK_STREAM)
    try:
        # Like uvicorn's own socket: connections of a previous run in TIME_WAIT do not count.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} on {host} is already in use (another smsgateway or another "
                f"program); {hint}"
            ) from exc
        if exc.errno == errno.EADDRNOTAVAIL:
            raise PortInUseError(f"{host} is not an address of this machine; {hint}") from exc
        raise
    finally:
        probe.close()


@contextmanager
def start_up_claim(port: int) -> Iterator[None]:
    """Held while one gateway checks and binds ``port``; another waits for it, briefly."""
    if not sys.platform.startswith("linux"):
        # Abstract sockets are Linux's; elsewhere SO_REUSEPORT does not share a port anyway.
        yield
        return
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + _CLAIM_WAIT_SECONDS
    try:
        while True:
            try:
                claim.bind(f"\0smsgateway-port-{port}")
                break
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE or time.monotonic() > deadline:
                    raise
                time.sleep(_CLAIM_RETRY_SECONDS)
        yield
    finally:
        claim.close()
