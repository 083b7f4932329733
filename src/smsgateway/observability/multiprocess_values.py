"""prometheus_client's multiprocess values, without a system call on every update.

In multiprocess mode each ``inc``/``set``/``observe`` calls ``os.getpid()`` to notice a fork,
and glibc makes that a real system call: 3-4 % of the API and dispatch processes' own CPU
under load. Our processes are spawned (a fresh interpreter each), never forked after a metric
exists, so the pid is read once here, and read again in the child of any ``fork()``
(``os.register_at_fork``), where the library's own check then sees the change and moves the
child to files of its own, as it would with ``os.getpid``.
"""

from __future__ import annotations

import functools
import operator
import os

from prometheus_client import values

# One cell, read by a C-level callable: cheaper than a Python function, and no system call.
_pid = [os.getpid()]
_current_pid = functools.partial(operator.getitem, _pid, 0)


def _remember_pid_after_fork() -> None:
    _pid[0] = os.getpid()


def install_pid_cached_values() -> None:
    """Makes metrics created from now on, in multiprocess mode, check a remembered pid.

    Must run before the first metric is created: two value classes would each open this
    process's files and overwrite each other's entries.
    """
    current: type = values.ValueClass
    if not getattr(current, "_multiprocess", False) or getattr(current, "_pid_cached", False):
        return
    os.register_at_fork(after_in_child=_remember_pid_after_fork)
    _remember_pid_after_fork()
    cached: type = values.MultiProcessValue(process_identifier=_current_pid)  # type: ignore[no-untyped-call]
    cached._pid_cached = True  # type: ignore[attr-defined]
    values.ValueClass = cached
