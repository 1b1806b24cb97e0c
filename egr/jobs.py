"""An ordered map of one function over jobs, in this process or in a pool of worker processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor


def run_jobs(function: Callable, jobs: Sequence, workers: int) -> Iterator[tuple]:
    """(job, function(job)) for each job in order, in a pool of ``workers`` processes when more than one
    (one worker stays in this process, which keeps tracebacks and profiling in place)."""
    if workers <= 1:
        for job in jobs:
            yield job, function(job)
        return
    with ProcessPoolExecutor(max_workers=workers) as pool:
        yield from zip(jobs, pool.map(function, jobs))
