"""Worker processes that end with the run (the batch's local pool): workers leave signals
to the parent and die with it; the parent can stop them at once."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any


def terminate(pool: ProcessPoolExecutor) -> None:
    """Stop a ProcessPoolExecutor's workers now, whatever they are doing (on an error or a
    signal): terminate, then kill what is still alive after 2 s."""
    # the workers, by a private attribute: the executor offers no way to kill them
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
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C reaches the whole process group
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if not _die_with_parent():
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # the parent died before we could ask
        os._exit(1)


def _die_with_parent() -> bool:
    """Ask Linux to kill this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(1, signal.SIGKILL, 0, 0, 0) == 0)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int) -> None:
    """Elsewhere: a thread that ends the worker once its parent is gone."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def cores() -> int:
    """The cores this process may run on (its affinity, e.g. under taskset or a container's
    cpuset), else the machine's."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def pool_context() -> multiprocessing.context.BaseContext:
    """fork where it is safe (no TensorFlow, no other thread),
    else spawn."""
    if (
        "fork" in multiprocessing.get_all_start_methods()
        and "tensorflow" not in sys.modules
        and threading.active_count() == 1
    ):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


WORKER_DIED = (
    "its worker process died twice while running it (killed by a signal, or out of memory)"
)


class LocalPool:
    """A process pool on this machine that survives its workers: the engine (engines.base)
    of ``build``'s checkpoint units and of ``batch --jobs``.

    ``submit(fn, item)`` queues a call (any time, also while ``results`` is iterated);
    ``results()`` yields ``(item, result, error)`` as calls finish, ``error`` being None or
    why the pool could not run the call. When a worker dies (SIGKILL, the OOM killer),
    concurrent.futures breaks the whole pool: the pool is started again and every call
    that was in it is run again, alone, so that the call that kills its worker is known; a
    call that kills its worker twice while alone is given up with ``WORKER_DIED``. The
    others are unaffected. At most ``2 * jobs`` calls are in the pool at a time, so a
    broken pool costs at most that many calls run alone.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self._pool: ProcessPoolExecutor | None = None
        self._queue: deque[tuple[Any, Any]] = deque()
        self._alone: deque[list[Any]] = deque()
        """Calls that were in the pool when it broke: each runs alone next."""

    def _start(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # No more workers than calls waiting (fork starts them all at once).
            waiting = len(self._queue) + len(self._alone)
            self._pool = ProcessPoolExecutor(
                max(1, min(self.jobs, waiting)) if waiting else self.jobs,
                mp_context=pool_context(),
                initializer=worker_init,
                initargs=(os.getpid(),),
            )
        return self._pool

    def submit(self, fn: Callable[[Any], Any], item: Any, name: str = "") -> None:
        """Queue ``fn(item)`` (``name``: unused, tasks here have none)."""
        self._queue.append((fn, item))

    def warm(self, fn: Any) -> None:
        """Start the workers now, each calling ``fn`` (imports), while this process works."""
        pool = self._start()
        for _ in range(self.jobs):
            pool.submit(fn)

    def results(self) -> Iterator[tuple[Any, Any, str | None]]:
        """Yield (item, result, error) for every call submitted, as each finishes."""
        flight: dict[Any, list[Any]] = {}  # future -> [fn, item, deaths while alone]
        while self._queue or self._alone or flight:
            if self._alone:  # a suspect runs with nothing beside it
                if not flight:
                    pool = self._start()
                    call = self._alone.popleft()
                    flight[pool.submit(call[0], call[1])] = call
            else:
                while self._queue and len(flight) < 2 * self.jobs:
                    pool = self._start()
                    fn, item = self._queue.popleft()
                    flight[pool.submit(fn, item)] = [fn, item, 0]
            done, _ = wait(flight, return_when=FIRST_COMPLETED)
            lost = []
            for future in done:
                call = flight.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    lost.append(call)
                except Exception as exc:  # e.g. an item that cannot be pickled
                    yield call[1], None, f"worker process failed: {type(exc).__name__}: {exc}"
                else:
                    yield call[1], result, None
            if not lost:
                continue
            # The pool is gone, with every call still in it: start again. Only a call that
            # was alone in the pool is known to have killed its worker.
            lost += flight.values()
            flight.clear()
            self.terminate()
            if len(lost) == 1:
                lost[0][2] += 1
                if lost[0][2] >= 2:
                    yield lost[0][1], None, WORKER_DIED
                    continue
            self._alone.extend(lost)

    def close(self) -> None:
        """Let the workers go (after ``results`` is exhausted)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def terminate(self) -> None:
        """Stop the workers now, whatever they are running (on an error or a signal)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            terminate(pool)
