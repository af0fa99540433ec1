"""The per-sector steps of detection, run by blocks of sectors on a Dask cluster.

The window test and the regions of a sector need only that sector's column and the whole
table's margins (each unit's establishments, the grand total), so blocks of sectors are
independent tasks; put back together, the cells and the regions are those of the
single-machine run, row for row.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.distributed import run_blocks, sector_blocks
from .regions import _REGION_COLUMNS, find_regions
from .window import window_test

#: window cells (units x sectors summed over each unit and its neighbours) above which the
#: window tests are sharded. Their result (one row per nonzero cell) is as large as their
#: work, so below this the transfer costs more than it saves: measured on 2 cores with 2
#: workers, 99 856 cells x 60 sectors (20 million establishments): 3.6 s on the client,
#: 7.4 s sharded. Above it, sharding keeps the window table (about 40 bytes a cell) off the
#: client.
WINDOW_CELLS = 50_000_000


def shard_client(client: Any, x: sp.csr_matrix, adjacency: sp.csr_matrix) -> Any:
    """``client`` when the window table of ``x`` is worth sharding, else None (run here)."""
    if client is None or x.shape[0] == 0:
        return None
    degree = adjacency.nnz / x.shape[0]
    return client if x.nnz * (degree + 1) > WINDOW_CELLS else None


def _margins(x: sp.csr_matrix) -> tuple[np.ndarray, float]:
    # summed as window_test and find_regions sum the whole table
    return np.asarray(x.sum(axis=1)).ravel(), float(np.asarray(x.sum(axis=0)).ravel().sum())


def _slices(x: sp.csr_matrix, client: Any, per_sector: list[np.ndarray | None]) -> list:
    """One task per block: its first column, its columns of ``x`` and of each vector."""
    xc = x.tocsc()
    return [
        (int(b[0]), xc[:, b].tocsr(), *(None if v is None else v[b] for v in per_sector))
        for b in sector_blocks(x.shape[1], client)
    ]


def window_cells(
    x: sp.csr_matrix,
    adjacency: sp.csr_matrix,
    analysed: np.ndarray,
    *,
    client: Any = None,
    dispersion: np.ndarray | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`~clustermap.detect.window.window_test`, by blocks of sectors with ``client``."""
    if client is None:
        return window_test(x, adjacency, analysed, dispersion=dispersion, **kwargs)
    tasks = _slices(x, client, [analysed, dispersion])
    parts = run_blocks(
        client, _window_block, [adjacency], tasks, margins=_margins(x), stacklevel=5, **kwargs
    )
    cells = pd.concat(parts, ignore_index=True)
    order = np.lexsort((cells["_c"].to_numpy(), cells["_r"].to_numpy()))  # row-major, as x
    return cells.iloc[order].reset_index(drop=True)


def _window_block(task: tuple, adjacency: sp.csr_matrix, **kwargs: Any) -> pd.DataFrame:
    start, x, analysed, dispersion = task
    cells = window_test(x, adjacency, analysed, dispersion=dispersion, **kwargs)
    cells["_c"] += start
    return cells


def region_rows(
    cells: pd.DataFrame,
    link: sp.csr_matrix,
    x: sp.csr_matrix,
    *,
    client: Any = None,
    dispersion: np.ndarray | None = None,
    **kwargs: Any,
) -> pd.DataFrame:
    """:func:`~clustermap.detect.regions.find_regions`, by blocks of sectors with ``client``."""
    if client is None:
        return find_regions(cells, link, x, dispersion=dispersion, **kwargs)
    col = cells["_c"].to_numpy()
    tasks = []
    for start, xb, disp in _slices(x, client, [dispersion]):
        sel = (col >= start) & (col < start + xb.shape[1])
        part = cells.loc[sel, ["_r", "_c", "seed", "candidate", "establishments"]]
        part["_c"] -= start
        tasks.append((start, xb, disp, part))  # the cells keep their index: cell_idx
    parts = run_blocks(
        client, _region_block, [link], tasks, margins=_margins(x), stacklevel=5, **kwargs
    )
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=_REGION_COLUMNS)
    return pd.concat(parts, ignore_index=True)


def _region_block(task: tuple, link: sp.csr_matrix, **kwargs: Any) -> pd.DataFrame:
    start, x, dispersion, cells = task
    regions = find_regions(cells, link, x, dispersion=dispersion, **kwargs)
    regions["sec"] += start
    return regions
