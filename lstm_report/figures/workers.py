"""Where figures are drawn: two forked worker processes (the CLI), or this process."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from lstm_report.figures.layer import layer_figures
from lstm_report.figures.training import comparison_figures, series_figures
from lstm_report.model import Comparison, LayerAnalysis, Series
from lstm_report.pools import terminate, worker_init


class Workers:
    """Two drawing processes, forked early: before TensorFlow is imported (forking after
    is unsafe) and before the analysis, so that they are ready when the figures are.

    Falls back to drawing in this process where fork is not available or not safe.
    """

    def __init__(self, enabled: bool = True) -> None:
        import multiprocessing
        import os
        import sys
        import threading

        self.pool: Any = None
        # Forking is only safe in a process we own: the CLI, before TensorFlow's threads
        # and without any other thread that could hold a lock at the fork.
        if not enabled or (os.cpu_count() or 1) < 2 or "tensorflow" in sys.modules:
            return
        if threading.active_count() > 1:
            return
        if "fork" not in multiprocessing.get_all_start_methods():
            return
        from concurrent.futures import ProcessPoolExecutor

        self.pool = ProcessPoolExecutor(
            2,
            mp_context=multiprocessing.get_context("fork"),
            initializer=worker_init,
            initargs=(os.getpid(),),
        )
        # Each submit forks a worker now; the workers import matplotlib while we analyse.
        for _ in range(2):
            self.pool.submit(_warm_up)

    def submit(self, kind: str, item: Any) -> Any:
        """Start drawing one job (``layer``, ``compare`` or ``series``); returns a future."""
        if self.pool is None:
            from concurrent.futures import Future

            done: Future[Any] = Future()
            done.set_result(_draw((kind, item)))
            return done
        return self.pool.submit(_draw, (kind, item))

    def close(self) -> None:
        """Wait for the jobs still running, then let the workers go."""
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None

    def terminate(self) -> None:
        """Stop the workers now, whatever they are drawing (on an error or a signal)."""
        pool, self.pool = self.pool, None
        if pool is not None:
            terminate(pool)

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()


def _warm_up() -> None:
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


def _draw(job: tuple[str, Any]) -> Any:
    kind, item = job
    if kind == "layer":
        return layer_figures(item)
    if kind == "compare":
        return comparison_figures(item)
    return series_figures(item)


def draw_figures(
    layers: Sequence[LayerAnalysis],
    comparisons: Sequence[Comparison] = (),
    series: Sequence[Series] = (),
    workers: Workers | None = None,
) -> dict[str, Any]:
    """Figures of every layer, compared layer and series, keyed by anchor."""
    jobs: list[tuple[str, Any]] = [("layer", la) for la in layers]
    jobs += [("compare", ld) for c in comparisons for ld in c.layers]
    jobs += [("series", s) for s in series]
    if workers is None:
        return {item.anchor: _draw((kind, item)) for kind, item in jobs}
    # Largest first, so the two workers finish at about the same time.
    futures = {
        item.anchor: workers.submit(kind, item)
        for kind, item in sorted(jobs, key=lambda job: -_cost(job))
    }
    return {anchor: f.result() for anchor, f in futures.items()}


def _cost(job: tuple[str, Any]) -> float:
    kind, item = job
    if kind == "layer":
        return 2.0 + item.weights.params / 1e5 + (2.0 if item.activity is not None else 0.0)
    return 1.0
