"""Running the heavy calls on a Dask cluster (the optional ``clustermap[dask]`` extra).

Every heavy call that takes ``client=`` accepts a :class:`distributed.Client`, the address
of a running scheduler (``"tcp://host:8786"``) or ``"local"`` (a
:class:`distributed.LocalCluster` of worker processes on this machine, started once and
reused). ``client=None``, the default, runs on this machine and never imports Dask.

The work is cut into independent tasks, each calling the single-machine code of the
package: blocks of sectors for the statistics (a unit's random stream does not depend on the
sectors it serves, so the p-values are the same on any number of workers), partitions of the
registry for reading and aggregating. The shared inputs (graph, units, points) are sent to
each worker once.
"""

from __future__ import annotations

import atexit
import socket
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..errors import SchedulerError

_EXTRA = "pip install 'clustermap[dask]'"

#: how long to wait for a scheduler given by its address
CONNECT_TIMEOUT = "20s"

#: clients this process started (by scheduler address, or "local"), closed at exit
_STARTED: dict[str, Any] = {}


def _distributed() -> Any:
    try:
        import distributed
    except ImportError as err:  # pragma: no cover - the extra is installed in the tests
        raise ImportError(
            f"client= needs Dask's distributed scheduler, an optional extra: {_EXTRA}"
        ) from err
    return distributed


def resolve_client(client: Any, *, name: str = "client") -> Any:
    """The :class:`distributed.Client` that ``client=`` designates, or None.

    Parameters
    ----------
    client : distributed.Client, str or None
        A client, a scheduler address, or ``"local"`` for a local cluster of worker
        processes (one per core, one thread each; started once per Python process).
    name : str
        The argument's name in the caller's vocabulary (``"--scheduler"`` for the CLI).

    Returns
    -------
    distributed.Client or None

    Examples
    --------
    >>> resolve_client(None) is None
    True
    """
    if client is None:
        return None
    distributed = _distributed()
    if isinstance(client, distributed.Client):
        return client
    if not isinstance(client, str) or not client:
        raise TypeError(
            f"{name} must be a dask.distributed Client, a scheduler address such as "
            f"'tcp://10.0.0.1:8786', or 'local'; got {client!r}."
        )
    if client in _STARTED:
        return _STARTED[client]
    if client == "local":
        cluster = distributed.LocalCluster(
            threads_per_worker=1, processes=True, dashboard_address=None
        )
        started = distributed.Client(cluster)
    else:
        try:
            _reachable(client)  # a Client that cannot connect keeps retrying in the background
            started = distributed.Client(client, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError) as err:
            raise SchedulerError(
                f"{name} {client!r}: no Dask scheduler answers at that address ({err}). Give "
                "the address the scheduler prints (tcp://host:8786), or 'local' for a "
                "cluster on this machine."
            ) from err
    _STARTED[client] = started
    return started


def _reachable(address: str) -> None:
    """Raise OSError (or ValueError) unless a TCP scheduler listens at ``address``."""
    from distributed.comm import get_address_host_port

    if address.split("://")[0] not in ("tcp", "tls") and "://" in address:
        return  # other transports: let the client try
    host, port = get_address_host_port(address if "://" in address else f"tcp://{address}")
    seconds = float(CONNECT_TIMEOUT.rstrip("s"))
    with socket.create_connection((host, port), timeout=seconds):
        pass


@atexit.register
def close_started() -> None:
    """Close the clients (and local clusters) that ``client="..."`` started in this process."""
    for started in _STARTED.values():
        try:
            cluster = started.cluster
            started.close()
            if cluster is not None:
                cluster.close()
        except Exception:
            pass
    _STARTED.clear()


def is_dask_frame(obj: Any) -> bool:
    """True for a Dask (or dask-geopandas) frame, without importing Dask.

    Examples
    --------
    >>> import pandas as pd
    >>> is_dask_frame(pd.DataFrame())
    False
    """
    module = type(obj).__module__.split(".")[0]
    return module in ("dask", "dask_geopandas", "dask_expr") and hasattr(obj, "to_delayed")


def current_client() -> Any:
    """The client Dask would use now (the last one made), or None without one."""
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def n_workers(client: Any) -> int:
    """Number of workers of ``client`` (at least 1)."""
    return max(len(client.scheduler_info(n_workers=-1).get("workers", {})), 1)


def sector_blocks(n_sectors: int, client: Any, *, per_worker: int = 2) -> list[np.ndarray]:
    """Column positions cut into contiguous blocks, a few per worker.

    Examples
    --------
    >>> [b.tolist() for b in sector_blocks(5, None)]
    [[0, 1, 2, 3, 4]]
    """
    if client is None or n_sectors == 0:
        return [np.arange(n_sectors)]
    n_blocks = min(n_sectors, n_workers(client) * per_worker)
    return [b for b in np.array_split(np.arange(n_sectors), n_blocks) if b.size]


def worker_threads() -> int | None:
    """Threads of the worker running the current task (None outside a worker)."""
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None


def captured(func: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, list]:
    """Run ``func`` on a worker; return its result and the warnings it raised.

    ``n_jobs=None`` becomes the worker's threads, so the numba kernels of two workers on one
    machine do not compete for the same cores.
    """
    if kwargs.get("n_jobs", "absent") is None:
        kwargs = {**kwargs, "n_jobs": worker_threads()}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = func(*args, **kwargs)
    return out, [(str(w.message), w.category) for w in caught]


def _task(func: Callable[..., Any], args: tuple, kwargs: dict[str, Any]) -> tuple[Any, list]:
    return captured(func, *args, **kwargs)


def replay(caught: Sequence[list], *, stacklevel: int) -> None:
    """Raise the warnings of the tasks here, each distinct one once (as one call would)."""
    seen = set()
    for task in caught:
        for message, category in task:
            if (message, category) not in seen:
                seen.add((message, category))
                warnings.warn(message, category, stacklevel=stacklevel + 1)


def run_blocks(
    client: Any,
    func: Callable[..., Any],
    shared: Sequence[Any],
    blocks: Sequence[Any],
    *,
    stacklevel: int = 4,
    **kwargs: Any,
) -> list[Any]:
    """``[func(block, *shared, **kwargs) for block in blocks]``, one task per block.

    ``shared`` is sent to every worker once (not once per task); results come back in the
    order of ``blocks``. The tasks' warnings are raised here, each distinct one once.
    """
    shared_f = [client.scatter(obj, broadcast=True, hash=False) for obj in shared]
    futures = [  # arguments in a tuple and a dict: none can clash with submit's own keywords
        client.submit(_task, func, (block, *shared_f), kwargs, pure=False) for block in blocks
    ]
    try:
        done = client.gather(futures)
    finally:
        for fut in [*futures, *shared_f]:
            fut.release()
    replay([c for _, c in done], stacklevel=stacklevel)
    return [out for out, _ in done]
