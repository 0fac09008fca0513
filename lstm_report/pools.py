"""Worker processes that end with the run (the batch's local pool): workers leave signals
to the parent and die with it; the parent can stop them at once."""

from __future__ import annotations

from typing import Any


def terminate(pool: Any) -> None:
    """Stop a ProcessPoolExecutor's workers now, whatever they are doing (on an error or a
    signal): terminate, then kill what is still alive after 2 s."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for p in processes:
        p.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    for p in processes:
        p.join(2.0)
        if p.is_alive():
            p.kill()
            p.join(1.0)


def worker_init(parent: int) -> None:
    """In each worker: leave signals to the parent, and die with it."""
    import os
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _die_with_parent():
        import threading

        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before we could ask
        os._exit(1)


def _die_with_parent() -> bool:
    """Ask Linux to kill this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """Elsewhere: a thread that ends the worker once its parent is gone."""
    import os
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)
