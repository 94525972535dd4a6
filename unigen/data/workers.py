"""DataLoader workers that die with the process that started them.

A worker of a SIGKILLed trainer is not told: its parent never joins it, and a worker blocked
writing a batch into the result pipe (its siblings still hold the read end open) waits forever,
keeping its memory. :func:`exit_with_parent` runs as ``worker_init_fn``: on Linux it asks the
kernel for SIGKILL when the parent dies (``prctl(PR_SET_PDEATHSIG)``), and everywhere it starts a
daemon thread that kills the worker once its parent pid changes (the fallback where ``prctl`` is
missing, and a second line where it is).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from functools import partial
from typing import Callable

PR_SET_PDEATHSIG = 1
WATCH_INTERVAL_S = 1.0


def _death_signal() -> bool:
    """Ask Linux to SIGKILL this process when its parent dies; False where that is unavailable."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(WATCH_INTERVAL_S)
    os.kill(os.getpid(), signal.SIGKILL)


def exit_with_parent(worker_id: int, parent: int) -> None:
    """``worker_init_fn`` body: die with process ``parent``."""
    _death_signal()
    if os.getppid() != parent:  # the parent died before the death signal was armed
        os.kill(os.getpid(), signal.SIGKILL)
    threading.Thread(target=_watch, args=(parent,), name="parent-watchdog", daemon=True).start()


def worker_init() -> Callable[[int], None]:
    """The ``worker_init_fn`` for a DataLoader built in this process (picklable)."""
    return partial(exit_with_parent, parent=os.getpid())
