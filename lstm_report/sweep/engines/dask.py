"""The distributed engine: a batch's units on a Dask cluster (``distributed.Client``)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from lstm_report.errors import ConfigError, shorten

CONNECT_TIMEOUT = "20s"
"""How long to wait for the Dask scheduler (a busy one can be slow to answer)."""


class DaskEngine:
    """The same units on a Dask cluster. A worker that dies is Dask's to handle (it reruns
    the task elsewhere, and gives up on a task that killed three workers)."""

    def __init__(self, address: str) -> None:
        try:
            # optional and heavy: only ``batch --scheduler`` needs it (lstm-report[dask])
            from distributed import Client, as_completed
        except ImportError:
            raise ConfigError(
                f"--scheduler {address}: Dask is not installed; pip install 'lstm-report[dask]'"
            ) from None
        try:
            self.client = Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise ConfigError(
                f"--scheduler {address}: cannot connect to a Dask scheduler "
                f"({shorten(str(exc), 120)})"
            ) from None
        self._done = as_completed([], loop=self.client.loop)
        self._futures: dict[Any, Any] = {}
        self._token = os.urandom(6).hex()

    def submit(self, fn: Callable[[Any], Any], item: Any, name: str = "") -> None:
        """Queue ``fn(item)`` as the task ``lstm-report-NAME-TOKEN``."""
        future = self.client.submit(fn, item, key=f"lstm-report-{name}-{self._token}")
        self._futures[future] = item
        self._done.add(future)

    def results(self) -> Iterator[tuple[Any, Any, str | None]]:
        """``(item, result, error)`` of every task as it finishes."""
        for future in self._done:
            item = self._futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # the worker died, or could not import lstm-report
                yield (
                    item,
                    None,
                    f"on the Dask cluster: {type(exc).__name__}: {shorten(str(exc), 200)}",
                )
            else:
                yield item, result, None
            future.release()

    def close(self) -> None:
        """Cancel what is left and disconnect from the scheduler."""
        if self._futures:
            with contextlib.suppress(Exception):
                self.client.cancel(list(self._futures))
        with contextlib.suppress(Exception):
            self.client.close()

    terminate = close
