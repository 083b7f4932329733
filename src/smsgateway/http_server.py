"""uvicorn for the gateway: one process, or several on one port with a socket each.

With one listening socket shared by every worker (uvicorn's own ``--workers``), whichever
process waits in ``accept`` first takes the next connection. Callers keep their connections
alive, so one process ends up holding most of them and answers them on one core while the
others idle (seen here: 64 keep-alive callers, one worker at 80 % of a core, the other idle).
With a socket per worker and ``SO_REUSEPORT`` the kernel spreads new connections over the
workers evenly, by a hash of their addresses. Linux only: elsewhere ``SO_REUSEPORT`` does not
balance, and uvicorn's shared socket is used.

The supervisor restarts a worker that dies after it started, gives up if one fails to start
(bad settings, no database: restarting would not help), and on SIGINT or SIGTERM asks every
worker to finish its requests and shut down, waiting ``SHUTDOWN_SECONDS`` before killing.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from smsgateway.ports import ensure_port_free, start_up_claim
from smsgateway.settings import Settings

logger = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 30.0
_POLL_SECONDS = 0.2
_STEADY_SECONDS = 10.0
_MAX_RESTART_PAUSE_SECONDS = 10.0
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class GracefulServer(uvicorn.Server):
    """Shuts down on SIGINT or SIGTERM and returns, so that what we started can be stopped.

    Stock uvicorn re-raises the signal after its graceful shutdown; SIGTERM's default action
    would then end the process before our ``finally`` could stop the database.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def balances_own_sockets() -> bool:
    """Whether the kernel spreads connections over several ``SO_REUSEPORT`` sockets."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A bound socket that other processes of ours can bind to the same port too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock


def run_single(config: uvicorn.Config) -> None:
    freeze_startup_heap()
    GracefulServer(config).run()


# The cyclic collector's thresholds once start-up is frozen: a young collection after 10,000
# net allocations instead of Python's 700. Sending and dispatching 3,000 messages in one
# process (bench/bench_gc.py) spent 13 % of its CPU in the collector with Python's
# (700, 10, 10) and 5.5 % with these; the few cycles a request makes wait a little longer.
GC_THRESHOLDS = (10_000, 20, 20)


def freeze_startup_heap() -> None:
    """Takes what start-up built (modules, classes, models, validators: ~125,000 objects, most
    of the heap) out of the cyclic collector's reach for good, and collects less often after.

    A full collection walks every tracked object, 32-40 ms for this heap here, and stalls
    every request in flight on that worker; under load they came often enough to set the
    accept latency's p99. None of these objects is ever garbage.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_workers(
    settings: Settings,
    log_config: dict[str, Any],
    dispatcher: Callable[[dict[str, Any], int], None] | None = None,
) -> int:
    """Runs ``settings.workers`` worker processes until SIGINT/SIGTERM; returns an exit code.

    Each worker builds the app from the environment (``app.app_from_environment``), so the
    caller puts what the workers need there first. ``dispatcher``, when given, runs in one
    more process beside them (given ``log_config`` and this process's pid), supervised as
    they are: restarted when it dies, asked to stop (SIGTERM) with them.
    """
    # Bound here first, so that a port in use fails once, loudly, before any worker starts;
    # kept bound (not listening: it takes no connections) so the port stays ours meanwhile.
    # Checked free first: SO_REUSEPORT would let us join another gateway's port unnoticed.
    with start_up_claim(settings.port):
        ensure_port_free(settings.host, settings.port)
        holder = reuse_port_socket(settings.host, settings.port)
    context = multiprocessing.get_context("spawn")
    stopping = threading.Event()

    def start_api() -> BaseProcess:
        process = context.Process(
            target=_worker_main,
            args=(settings.host, settings.port, log_config, os.getpid()),
            name="smsgateway-worker",
        )
        process.start()
        return process

    def start_dispatcher() -> BaseProcess:
        process = context.Process(
            target=dispatcher, args=(log_config, os.getpid()), name="smsgateway-dispatcher"
        )
        process.start()
        return process

    def request_stop(_signum: int, _frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    starters = [start_api] * settings.workers + ([start_dispatcher] if dispatcher else [])
    workers = [start() for start in starters]
    started = [time.monotonic()] * len(workers)
    # A worker that keeps dying soon after it starts is replaced ever more slowly.
    pauses = [0.0] * len(workers)
    exit_code = 0
    try:
        while not stopping.wait(_POLL_SECONDS):
            for index, process in enumerate(workers):
                if process.is_alive():
                    continue
                _forget_metrics_of(process)
                if process.exitcode == STARTUP_FAILURE:
                    logger.error("a worker failed to start; stopping the others")
                    exit_code = STARTUP_FAILURE
                    stopping.set()
                    break
                lived = time.monotonic() - started[index]
                pauses[index] = (
                    min(_MAX_RESTART_PAUSE_SECONDS, max(_POLL_SECONDS, 2 * pauses[index]))
                    if lived < _STEADY_SECONDS
                    else 0.0
                )
                logger.warning(
                    "worker %s exited with %s after %.1f s; starting another in %.1f s",
                    process.pid,
                    process.exitcode,
                    lived,
                    pauses[index],
                )
                if stopping.wait(pauses[index]):
                    break
                workers[index] = starters[index]()
                started[index] = time.monotonic()
    finally:
        _stop_all(workers)
        holder.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return exit_code


def _stop_all(workers: list[BaseProcess]) -> None:
    for process in workers:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    for process in workers:
        process.join(max(0.0, deadline - time.monotonic()))
        if process.is_alive():
            logger.warning("worker %s did not stop in time; killing it", process.pid)
            process.kill()
            process.join()
        _forget_metrics_of(process)


def _forget_metrics_of(process: BaseProcess) -> None:
    """Drops a dead worker's live gauges from the shared metrics (prometheus multiprocess)."""
    if process.pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(process.pid)  # type: ignore[no-untyped-call]


def stop_with_supervisor(supervisor: int) -> None:
    """Has Linux send SIGTERM to this process when its supervisor dies, however it dies
    (``kill -9`` too): a worker left behind would keep the port, or keep dispatching beside
    the gateway started next. Elsewhere, a no-op."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != supervisor:  # it died before we asked
        os.kill(os.getpid(), signal.SIGTERM)


def _worker_main(host: str, port: int, log_config: dict[str, Any], supervisor: int) -> None:
    stop_with_supervisor(supervisor)
    import smsgateway.app  # noqa: F401  (its heap is to be frozen before serving)

    freeze_startup_heap()
    sock = reuse_port_socket(host, port)
    config = uvicorn.Config(
        "smsgateway.app:app_from_environment",
        factory=True,
        log_config=log_config,
        access_log=False,
    )
    server = GracefulServer(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)
