"""Thread settings of the numba kernels, shared by the statistics modules."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..errors import SchemaError


@contextmanager
def numba_threads(n_jobs: int | None) -> Iterator[None]:
    """Run the enclosed kernels on ``n_jobs`` numba threads.

    ``None`` keeps numba's thread count, ``-1`` uses all of them. No result depends on it:
    every kernel fixes its blocks and its summation order independently of the threads.
    """
    import numba

    if n_jobs is not None and (
        not isinstance(n_jobs, (int, np.integer)) or n_jobs == 0 or n_jobs < -1
    ):
        raise SchemaError(f"n_jobs must be None, -1 or a positive int; got {n_jobs!r}.")
    old = numba.get_num_threads()
    if n_jobs is not None:
        top = numba.config.NUMBA_NUM_THREADS
        numba.set_num_threads(top if n_jobs == -1 else min(int(n_jobs), top))
    try:
        yield
    finally:
        numba.set_num_threads(old)
