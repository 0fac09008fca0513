"""What a batch runs its units on: the Engine Protocol (the local pool, a Dask cluster)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol


class Engine(Protocol):
    """Runs calls ``fn(item)`` somewhere and hands back their results as they finish."""

    def submit(self, fn: Callable[[Any], Any], item: Any, name: str = "") -> None:
        """Queue ``fn(item)`` (any time, also while ``results`` is iterated); ``name``
        names the task where the engine shows one (Dask's task key)."""

    def results(self) -> Iterator[tuple[Any, Any, str | None]]:
        """``(item, result, error)`` of every call as it finishes; ``error`` is None, or
        why the engine could not run the call."""

    def close(self) -> None:
        """Let the workers go (after ``results`` is exhausted)."""

    def terminate(self) -> None:
        """Stop the workers now, whatever they are running (on an error or a signal)."""
