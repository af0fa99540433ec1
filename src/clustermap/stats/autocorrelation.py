"""Spatial autocorrelation for every sector at once, with conditional permutation inference.

:func:`local_moran` (LISA), :func:`local_getis_ord` (Gi and Gi*) and :func:`local_geary` take a
units x sectors table and a graph and return a :class:`LocalResult` holding one statistic,
p-value and label per cell. :func:`global_moran` returns a :class:`GlobalResult` with one row
per sector.

How the p-values are defined
----------------------------
For unit i, the values of its k_i neighbours are replaced by k_i values drawn without
replacement from the other n - 1 units (conditional randomisation; the unit's own value,
and for Gi* its self term, stay fixed). One draw of neighbours serves every sector. With P
draws, ``M_ge`` draws give a statistic at least as large as observed and ``M_le`` at most as
large (ties count on both sides, which is conservative), and

* ``p_greater = (M_ge + 1) / (P + 1)``, ``p_lesser = (M_le + 1) / (P + 1)``;
* ``alternative="two-sided"``: ``min(1, 2 min(p_greater, p_lesser))``;
* ``"greater"`` / ``"lesser"``: one tail; ``"directed"``: ``min(p_greater, p_lesser)``
  (the smaller tail, not doubled);
* ``"esda"``: esda's and GeoDa's fold ``c = min(M_ge, P - M_ge)``, ``(c + 1) / (P + 1)``,
  for reproducing those libraries (on tie-free data it equals ``"directed"``).

Observed and simulated statistics are compared with identical arithmetic (the part of the
statistic that changes under permutation, e.g. the neighbour sum for Moran and Gi*).
**What counts as a tie**: a draw whose sum equals the observed sum exactly in float64 (or
in the integer or float32 storage below, which is exact). For integer values (counts) on
rows of equal weights every mathematically tied draw is a tie, which matters for sparse
counts. For non-integer values a draw tied in decimal arithmetic may not be one in float64:
sums of different decimals round differently (0.1 + 0.2 != 0.3), so it counts on one side
only, and p-values can differ from exact decimal arithmetic by the share of such draws (up
to 0.006 on Georgia's ``PctBach``, one decimal). Values with d decimals multiplied by
10**d (which changes no statistic's p-value) are integers, whose ties are then exact.
Integer columns on graphs with equal weights per row (kNN, contiguity, row-standardised or
binary) are summed in integers or float32, which is exact and cuts memory traffic (the
kernels are bound by it); other columns are summed in float64, or gathered as float32 with
a bound on the rounding error, the few draws too close to call being summed again in
float64: the counts are float64's in every case.

With ``early_stop`` or ``adaptive=True`` cells may use different numbers of draws ``n``
(``LocalResult.n_permutations``); every p-value is then ``(M + 1) / (n + 1)`` with the
cell's own ``n``. ``adaptive=True`` is Besag and Clifford's (1991) sequential test: draw
until the tail count reaches ``h`` (the count at which ``permutations`` draws give a
p-value above the stop level, 0.05 by default) or until ``max_permutations``; small
p-values thus reach a resolution of ``1 / (max_permutations + 1)``, which Benjamini-Hochberg
over tens of thousands of communes needs.

The draws come from a counter-based stream keyed by ``(random_state, unit, draw)``: results
are identical for any number of threads. ``permutation_method="table"`` instead uses one
shared table of draws built by esda's ``vec_permutations`` with ``random_state`` as esda's
``seed``, which reproduces esda's p-values (``alternative="esda"``) on tie-free data.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ..core.display import format_ids
from ..core.parallel import numba_threads
from ..core.schema import LABEL, P_VALUE, QUADRANT, SECTOR, STATISTIC, UNIT_ID
from ..errors import ClustermapWarning, SchemaError
from ..graph import GraphArrays, graph_arrays
from . import _kernels as K
from .inference import adjust_pvalues

__all__ = [
    "GlobalResult",
    "LocalResult",
    "global_moran",
    "local_geary",
    "local_getis_ord",
    "local_moran",
]

_ALTERNATIVES = ("two-sided", "greater", "lesser", "directed", "esda")
# Passes over tiles of sectors for all units, sized to stay in the shared cache while a block
# of units gathers from them (the gathers, N * P * k * S values, are bound by memory traffic).
# Measured on a 2-core VM (N = 35 000, 240 float64 sectors, P = 999): one 67 MB tile and
# blocks of 32 units 40 s; 6.7 MB tiles and blocks of 128-256 units 19-24 s (13 MB tiles
# were as slow as one: two of them and the draw caches no longer fit the shared cache).
_TILE_BYTES = 6 * 2**20
# Units per parallel task: their draws are made once and reused for every tile, so larger
# blocks re-read each tile fewer times; small inputs get smaller blocks to keep every
# thread busy. Results never depend on it (each unit has its own random stream).
_BLOCK_MIN, _BLOCK_MAX = 16, 256
_CHECK = 16

ISOLATE = "isolate"
CONSTANT = "constant"
NOT_SIGNIFICANT = "ns"
_QUADRANTS = ("HH", "LH", "LL", "HL")


# --------------------------------------------------------------------------------------
# input handling


def _as_table(
    values: Any, ga: GraphArrays, name: str = "values"
) -> tuple[np.ndarray, pd.Index, bool]:
    """Align ``values`` on the graph's ids; return X (n, S) float64 C-order, columns, 1-D flag."""
    ids = ga.ids
    one_d = False
    if isinstance(values, pd.Series):
        one_d = True
        values = values.to_frame(values.name if values.name is not None else 0)
    if isinstance(values, pd.DataFrame):
        idx = values.index
        if idx.has_duplicates:
            dup = idx[idx.duplicated()].unique()
            raise SchemaError(
                f"{name} has duplicated unit ids in its index: {format_ids(dup)}. Aggregate to "
                "one row per unit first."
            )
        missing = ids.difference(idx, sort=False)
        extra = idx.difference(ids, sort=False)
        if len(missing) or len(extra):
            parts = []
            if len(missing):
                parts.append(
                    f"{len(missing)} graph unit(s) missing from {name}: {format_ids(missing)}"
                )
            if len(extra):
                parts.append(
                    f"{len(extra)} unit(s) of {name} not in the graph: {format_ids(extra)}"
                )
            raise SchemaError(
                "The index of "
                + name
                + " must hold the graph's unit ids; "
                + "; ".join(parts)
                + ". Build the graph from the same units (clustermap.build_graph(units)), or "
                "reindex the table, e.g. values.reindex(graph.unique_ids, fill_value=0)."
            )
        frame = values.reindex(ids) if not idx.equals(ids) else values
        bad = [
            c
            for c in frame.columns
            if not (pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c]))
        ]
        if bad:
            raise SchemaError(
                f"{name} columns must be numeric; non-numeric column(s): {bad[:5]}. Drop them "
                "or convert with pd.to_numeric."
            )
        X = np.ascontiguousarray(frame.to_numpy(dtype=np.float64))
        columns = pd.Index(frame.columns)
    else:
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim == 1:
            one_d = True
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] != len(ids):
            raise SchemaError(
                f"{name} must have one row per graph unit ({len(ids)}); got shape "
                f"{np.shape(values)}. Pass a DataFrame indexed by unit id to align by label."
            )
        X = np.ascontiguousarray(arr)
        columns = pd.RangeIndex(X.shape[1]) if not one_d else pd.Index([0])
    nan = np.isnan(X)
    if nan.any():
        cols = columns[nan.any(axis=0)]
        rows = ids[nan.any(axis=1)]
        raise SchemaError(
            f"{name} holds missing values (NaN) in column(s) {list(cols[:5])} for unit(s) "
            f"{format_ids(rows)}. Fill them (e.g. values.fillna(0) for counts) or drop the units "
            "from both the table and the graph."
        )
    if not np.isfinite(X).all():
        cols = columns[(~np.isfinite(X)).any(axis=0)]
        raise SchemaError(f"{name} holds infinite values in column(s) {list(cols[:5])}.")
    return X, columns, one_d


def _resolve_seed(random_state: Any) -> int:
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise SchemaError(f"random_state must be a non-negative integer; got {random_state}.")
        return int(random_state)
    raise SchemaError(
        "random_state must be None, a non-negative int or a numpy Generator; got "
        f"{type(random_state).__name__}."
    )


def _seed_key(seed: int) -> np.uint64:
    return np.uint64(seed % 2**64)


def _check_alternative(alternative: str) -> None:
    if alternative not in _ALTERNATIVES:
        raise SchemaError(f"alternative must be one of {_ALTERNATIVES}; {alternative!r} was given.")


def _stop_count(alpha: float, permutations: int, alternative: str) -> int:
    """Smallest tail count m at which p (computed with all P draws) exceeds alpha."""
    if alternative == "two-sided":
        # 2 (m + 1) / (P + 1) > alpha
        m = math.floor(alpha * (permutations + 1) / 2.0 - 1.0) + 1
    else:
        m = math.floor(alpha * (permutations + 1) - 1.0) + 1
    return max(m, 1)


def _tail_code(alternative: str) -> int:
    return {"greater": K.TAIL_GREATER, "lesser": K.TAIL_LESSER}.get(alternative, K.TAIL_BOTH)


# --------------------------------------------------------------------------------------
# permutation driver


def _permutation_counts(
    kind: str,
    X: np.ndarray,
    center: np.ndarray | None,
    ga: GraphArrays,
    *,
    permutations: int,
    seed: int,
    permutation_method: str,
    alternative: str,
    early_stop: float | None,
    adaptive: bool,
    max_permutations: int,
    skip: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, S = X.shape
    ge = np.zeros((n, S), dtype=np.int32)
    le = np.zeros((n, S), dtype=np.int32)
    nperm = np.zeros((n, S), dtype=np.int32)
    if permutations == 0 or n < 2:
        return ge, le, nperm
    if permutation_method == "table":
        from esda.crand import vec_permutations

        kmax = int(ga.cardinalities.max()) if n else 0
        table = np.ascontiguousarray(
            vec_permutations(max(kmax, 1), n, permutations, seed), dtype=np.int64
        )
    else:
        table = np.empty((0, 0), dtype=np.int64)
    key = _seed_key(seed)
    tail = _tail_code(alternative)
    if adaptive and early_stop is None:
        early_stop = 0.05
    h = _stop_count(early_stop, permutations, alternative) if early_stop is not None else 0
    common = (ga.indptr, ga.indices, ga.weights, ga.equal, key, table)
    run = np.nonzero(~skip.all(axis=0))[0]  # constant sectors need no draws
    store = _storage_dtypes(kind, X if run.size == S else X[:, run], ga)
    store, exact, budget = _merge_float32(store, n, ga)
    # one kernel call: each storage group is cut into tiles, and one draw of neighbours
    # per (unit, permutation) serves every tile of every group
    groups = [run[store == code] for code in range(len(_STORAGE))]
    exact_a = exact[store == _APPROX]  # columns of group A compared exactly
    widths, starts = _tile_widths(
        n, [g.size for g in groups], [np.dtype(d).itemsize for d in _STORAGE], budget
    )
    arrays: list[np.ndarray] = []
    for code, (group, tile, dtype) in enumerate(zip(groups, widths, _STORAGE)):
        approx = code == _APPROX
        n_tiles = -(-group.size // tile) if group.size else 0
        shape = (n_tiles, n + 1, max(tile, 1))  # row n: zeros, for padding
        X3 = np.zeros(shape, dtype=dtype)
        S3 = np.zeros((n_tiles, n, shape[2]), dtype=np.int8)  # orientation: sign
        C3 = np.full(n_tiles * shape[2], -1, dtype=np.int64)
        C3[: group.size] = group
        X64 = np.zeros(shape if approx else (0, n + 1, 1))  # exact values of group A
        M3 = np.zeros(n_tiles * shape[2])  # max |x| of each column of group A
        for tt in range(n_tiles):
            for c0 in range(0, min(tile, group.size - tt * tile), 64):  # small temporaries
                sel = group[tt * tile + c0 : tt * tile + min(tile, c0 + 64)]
                block = X[:, sel]
                X3[tt, :n, c0 : c0 + sel.size] = block
                if approx:
                    X64[tt, :n, c0 : c0 + sel.size] = block
                    at = slice(tt * tile + c0, tt * tile + c0 + sel.size)
                    # -1: an integer column whose float32 sums are exact (compared exactly)
                    M3[at] = np.where(exact_a[at], -1.0, np.abs(block).max(axis=0))
                if kind != "geary":
                    S3[tt, :, c0 : c0 + sel.size] = (
                        1 if center is None else np.sign(block - center[sel])
                    )
        arrays += [X3, S3, C3.reshape(n_tiles, shape[2])]
        if approx:
            arrays += [X64, M3.reshape(n_tiles, shape[2])]
    if run.size:
        K.tiled_counts(
            tuple(arrays),
            np.array(starts, dtype=np.int64),
            kind == "geary",
            *common,
            0,
            permutations,
            tail,
            h,
            _CHECK,
            _block_size(n),
            ge,
            le,
            nperm,
        )
    del arrays
    if adaptive and max_permutations > permutations:
        if tail == K.TAIL_BOTH:
            m = np.minimum(ge, le)
        elif tail == K.TAIL_GREATER:
            m = ge
        else:
            m = le
        need = (m < h) & (nperm > 0) & ~skip
        cptr = np.zeros(n + 1, dtype=np.int64)
        cptr[1:] = np.cumsum(need.sum(axis=1))
        cols = np.ascontiguousarray(np.nonzero(need)[1], dtype=np.int64)
        if cols.size:
            geary = kind == "geary"
            if geary:
                sgn = X
            elif center is None:
                sgn = np.ones_like(X)
            else:
                sgn = np.sign(X - center)
            K.subset_counts(
                X,
                sgn,
                geary,
                *common,
                permutations,
                max_permutations,
                tail,
                h,
                _CHECK,
                cptr,
                cols,
                ge,
                le,
                nperm,
            )
    return ge, le, nperm


# storage dtype of each group of X in the kernel (memory traffic is the bottleneck; integer
# groups sum in int32); the last, _APPROX, is float64 values gathered as float32 with an
# error bound
_STORAGE = (np.uint8, np.uint16, np.float32, np.float64, np.float32)
_APPROX = 4
_APPROX_MIN_BYTES = 2**20


def _storage_dtypes(kind: str, X: np.ndarray, ga: GraphArrays) -> np.ndarray:
    """Per column, the index in ``_STORAGE`` of the smallest exact storage.

    Integer values with equal weights in every row sum exactly in integers (uint8 up to 255,
    uint16 up to 65 535) or in float32 (sums below 2**24). Other non-integer values are
    gathered as float32 with an error bound (``_APPROX``; when max |x| times the row weight
    sums stays between 1e-30 and 1e30, so float32 neither overflows nor underflows); any
    other column, and local Geary, stays float64. Every choice gives the same counts as
    float64 arithmetic. (Integer columns on unequal weights stay float64: their sums tie
    often, and a tie would always be summed twice.)
    """
    S = X.shape[1]
    out = np.full(S, 3, dtype=np.int8)
    if kind == "geary" or X.size == 0:
        return out
    integer = np.ones(S, dtype=bool)
    for c0 in range(0, S, 64):  # in chunks: no full-size temporary
        block = X[:, c0 : c0 + 64]
        integer[c0 : c0 + 64] = np.equal(np.rint(block), block).all(axis=0)
    lo = X.min(axis=0)
    hi = X.max(axis=0)
    big = np.maximum(hi, -lo)
    linked = ga.cardinalities > 0
    rows = np.repeat(np.arange(ga.cardinalities.size), ga.cardinalities)
    w1 = np.bincount(rows, weights=np.abs(ga.weights), minlength=ga.cardinalities.size)
    w1 = np.where(ga.equal, ga.cardinalities, w1)  # equal rows sum the raw values
    w1min, w1max = (float(w1[linked].min()), float(w1[linked].max())) if linked.any() else (1, 1)
    # float32 halves the bytes gathered; it pays once the float64 values outgrow a core's
    # private cache (measured: one column of 35 000 units is faster in float64)
    approx = ~integer & (big * min(w1min, 1.0) > 1e-30) & (big * max(w1max, 1.0) < 1e30)
    if approx.sum() * X.shape[0] * 8 > _APPROX_MIN_BYTES:
        out[approx] = _APPROX
    if not ga.equal[linked].all():
        return out
    kmax = max(int(ga.cardinalities.max()), 1)
    nonneg = lo >= 0
    out[integer & (big * kmax < 2**24)] = 2
    out[integer & nonneg & (hi <= 65535)] = 1
    out[integer & nonneg & (hi <= 255)] = 0
    return out


def _merge_float32(
    store: np.ndarray, n: int, ga: GraphArrays
) -> tuple[np.ndarray, np.ndarray, int]:
    """Move integer columns into group A when that makes one cheaper pass.

    A draw pays a fixed cost per storage group (its loops over the sectors: about 25 ns
    per group and draw, against 0.4 ns per sector), so when float64 values are gathered as
    float32 (group A), integer columns whose raw sums are exact in float32 join them and
    are compared exactly there (no error bound). That widens uint8 / uint16 values to four
    bytes, so it is done only when one pass still holds everything within twice the tile
    budget and the rows at most double. Measured at N = 35 000, one pass (uint8 + group A
    columns): 33 + 17 columns 0.81x the time, 10 + 40 0.85x, 4 + 4 0.80x; 60 + 4 (rows x 3.4)
    1.10x and 100 + 40 (19.6 MB) 1.50x, which the rule leaves apart.

    Returns the new codes, the mask of columns compared exactly in group A, and the byte
    budget of one pass for :func:`_tile_widths`.
    """
    exact = np.zeros(store.size, dtype=bool)
    if not (store == _APPROX).any():
        return store, exact, _TILE_BYTES
    kmax = max(int(ga.cardinalities.max()), 1) if ga.cardinalities.size else 1
    # integer groups exist only for equal row weights (raw sums); code 2 is exact by its
    # definition, uint8 / uint16 sums while their largest possible sum stays below 2**24
    fits = {0: 255 * kmax < 2**24, 1: 65535 * kmax < 2**24}
    exact = (store == 2) | ((store == 0) & fits[0]) | ((store == 1) & fits[1])
    if not exact.any():
        return store, exact, _TILE_BYTES
    size = np.array([np.dtype(d).itemsize for d in _STORAGE])
    merged = np.where(exact, _APPROX, store)
    row_now, row_merged = int(size[store].sum()), int(size[merged].sum())
    if row_merged <= 2 * row_now and n * row_merged <= 2 * _TILE_BYTES:
        return merged, exact, 2 * _TILE_BYTES
    return store, np.zeros(store.size, dtype=bool), _TILE_BYTES


def _tile_widths(
    n: int, counts: list[int], itemsizes: list[int], budget: int | None = None
) -> tuple[list[int], list[int]]:
    """Columns per tile of each storage group, and the first pass of each group.

    When all the groups' values for all units fit ``budget`` bytes (``_TILE_BYTES``, or
    twice that after :func:`_merge_float32` merged groups), they run in one pass
    (one draw per unit and permutation for everything; no draw is stored). Otherwise each
    group is cut into tiles of about ``_TILE_BYTES`` (at least one 64-byte cache line per
    row), run one group after the other: measured at N = 35 000 with 488 one-byte and 244
    float64 sectors, passes mixing both groups took 1.16x the time of the earlier
    one-group passes in float64, one group after the other (float32 gathers) 0.78x. A
    group's tiles have equal widths, so its last tile is barely padded.
    """
    if budget is None:
        budget = _TILE_BYTES
    if n * sum(c * size for c, size in zip(counts, itemsizes)) <= budget:
        return [int(c) for c in counts], [0] * len(counts)
    widths, starts, first = [], [], 0
    for c, size in zip(counts, itemsizes):
        width = max(64 // size, _TILE_BYTES // max(1, n * size))
        width = int(-(-c // -(-c // width))) if c else 0
        widths.append(width)
        starts.append(first)
        first += -(-c // width) if c else 0
    return widths, starts


def _block_size(n: int) -> int:
    """Units per parallel task: about 4 tasks per thread, within the block bounds."""
    import numba

    threads = max(1, numba.get_num_threads())
    return int(min(_BLOCK_MAX, max(_BLOCK_MIN, n // (4 * threads))))


def _denominator(nperm):
    """P + 1 of each cell: a scalar when every cell used the same number of draws."""
    n_max = nperm.max() if nperm.size else 0
    if nperm.size and nperm.min() == n_max:
        return float(n_max) + 1.0
    return nperm + 1.0


def _local_p(ge, le, nperm, alternative):
    """The chosen p-value from the tail counts, with few full-size temporaries."""
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = _denominator(nperm)
        if alternative == "greater":
            p = ge + 1.0
        elif alternative == "lesser":
            p = le + 1.0
        elif alternative == "esda":
            p = np.minimum(ge, nperm - ge) + 1.0
        else:
            p = np.minimum(ge, le) + 1.0
        p /= denom
        if alternative == "two-sided":
            p *= 2.0
            np.minimum(p, 1.0, out=p)
    return p


def _p_values(ge, le, nperm, alternative):
    """p_greater, p_lesser and the chosen p-value from the tail counts (few temporaries)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = _denominator(nperm)
        pg = ge + 1.0
        pg /= denom
        pl = le + 1.0
        pl /= denom
        if alternative == "greater":
            p = pg.copy()
        elif alternative == "lesser":
            p = pl.copy()
        elif alternative == "directed":
            p = np.minimum(pg, pl)
        elif alternative == "esda":
            p = np.minimum(ge, nperm - ge) + 1.0
            p /= denom
        else:
            p = np.minimum(pg, pl)
            p *= 2.0
            np.minimum(p, 1.0, out=p)
    return pg, pl, p


# --------------------------------------------------------------------------------------
# results


@dataclass(repr=False)
class LocalResult:
    """Local statistics for every unit x sector cell, with permutation p-values.

    Every table is a DataFrame indexed by unit id (in the graph's order) with the input's
    columns (sectors). Cells that cannot be tested are NaN and labelled ``"isolate"`` (unit
    without neighbours) or ``"constant"`` (sector with zero variance).

    Attributes
    ----------
    statistic : pandas.DataFrame
        Local Moran's I_i, Gi / Gi*, or local Geary c_i.
    p_value : pandas.DataFrame
        Pseudo p-value for ``parameters["alternative"]`` (see the module notes).
    label : pandas.DataFrame
        ``"HH"``, ``"LH"``, ``"LL"``, ``"HL"`` (Moran), ``"hot"`` / ``"cold"`` (Gi*),
        ``"HH"`` / ``"LL"`` / ``"negative"`` (Geary), ``"ns"`` when ``p_value > alpha``
        (uncorrected, ``parameters["alpha"]``), ``"isolate"`` / ``"constant"`` when NaN.
    count_greater, count_lesser : pandas.DataFrame
        Draws at least as large / at most as large as observed (ties count in both), int32.
    p_greater, p_lesser : pandas.DataFrame
        One-sided pseudo p-values ``(M + 1) / (n + 1)``, computed from the counts on access.
    n_permutations : pandas.DataFrame
        Draws used per cell (less than ``permutations`` after an early stop, more in the
        adaptive mode).
    quadrant : pandas.DataFrame or None
        Moran scatter-plot quadrant of every cell (HH, LH, LL, HL), significant or not.
    z : pandas.DataFrame or None
        Analytic z-score where cheap (Getis-Ord: Ord & Getis 1995 moments for any weights);
        a different test from the permutation p.
    parameters : dict
        Everything needed to reproduce the result (the seed actually used included).

    Examples
    --------
    Ten units on a line, a high-value block at the start; with 2 nearest neighbours the
    block's units are "HH" and the counts give the one-sided p-values:

    >>> import geopandas as gpd
    >>> y = pd.DataFrame({"a": [5.0, 4, 6, 0, 1, 0, 0, 1, 0, 0]})
    >>> pts = gpd.GeoSeries.from_xy(np.cumsum(np.arange(1.0, 11)), np.zeros(10))
    >>> r = cm.local_moran(y, cm.build_graph(pts, method="knn", k=2), permutations=199,
    ...                    random_state=42)
    >>> r.quadrant["a"].tolist()[:3]
    ['HH', 'HH', 'HH']
    >>> bool((r.p_greater == (r.count_greater + 1) / (r.n_permutations + 1)).all().all())
    True
    """

    statistic: pd.DataFrame
    p_value: pd.DataFrame
    label: pd.DataFrame
    count_greater: pd.DataFrame
    count_lesser: pd.DataFrame
    n_permutations: pd.DataFrame
    quadrant: pd.DataFrame | None = None
    z: pd.DataFrame | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    def _one_sided(self, counts: pd.DataFrame) -> pd.DataFrame:
        n = self.n_permutations.to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (counts.to_numpy() + 1.0) / (n + 1.0)
        out[n == 0] = np.nan
        return _frame(out, self.statistic.index, self.statistic.columns)

    @property
    def p_greater(self) -> pd.DataFrame:
        """``(count_greater + 1) / (n_permutations + 1)``: upper-tail pseudo p-value."""
        return self._one_sided(self.count_greater)

    @property
    def p_lesser(self) -> pd.DataFrame:
        """``(count_lesser + 1) / (n_permutations + 1)``: lower-tail pseudo p-value."""
        return self._one_sided(self.count_lesser)

    def __repr__(self) -> str:
        n, s = self.statistic.shape
        stat = self.parameters.get("statistic", "local")
        alpha = self.parameters.get("alpha", 0.05)
        n_sig = int(
            sum(
                (~self.label[c].isin([NOT_SIGNIFICANT, ISOLATE, CONSTANT])).sum()
                for c in self.label.columns
            )
        )
        n_iso = int(np.isnan(self.p_value.to_numpy()).all(axis=1).sum()) if s else 0
        return (
            f"<LocalResult {stat}: {n} units x {s} sectors, "
            f"{self.parameters.get('permutations')} permutations "
            f"({self.parameters.get('alternative')}), {n_sig} cells with p <= {alpha:g} "
            f"(uncorrected), {n_iso} units without a test>"
        )

    def significant(
        self,
        alpha: float = 0.05,
        correction: str | None = "fdr_bh",
        family: str = "sector",
    ) -> pd.DataFrame:
        """Boolean table of cells significant at ``alpha`` after a multiple-testing correction.

        Parameters
        ----------
        alpha : float, default 0.05
            Level (FDR level ``q`` for the FDR corrections).
        correction : {"fdr_bh", "fdr_by", "bonferroni", None}, default "fdr_bh"
            See :func:`clustermap.adjust_pvalues`.
        family : {"sector", "all"}, default "sector"
            Correct within each sector (over its units) or over the whole table. NaN cells
            (islands, constant sectors) are outside every family and never significant.

        Returns
        -------
        pandas.DataFrame
            Booleans, same index and columns as :attr:`p_value`.

        Examples
        --------
        >>> import geopandas as gpd
        >>> y = pd.DataFrame({"a": [5.0, 4, 6, 0, 1, 0, 0, 1, 0, 0]})
        >>> pts = gpd.GeoSeries.from_xy(np.cumsum(np.arange(1.0, 11)), np.zeros(10))  # on a line
        >>> g = cm.build_graph(pts, method="knn", k=2)
        >>> r = cm.local_moran(y, g, permutations=99, random_state=1)
        >>> r.significant(alpha=0.05, correction=None).shape
        (10, 1)
        """
        if family not in ("sector", "all"):
            raise SchemaError(f"family must be 'sector' or 'all'; {family!r} was given.")
        adj = adjust_pvalues(
            self.p_value, method=correction, axis=0 if family == "sector" else None
        )
        return (adj <= alpha).fillna(False).astype(bool)

    def tidy(self) -> pd.DataFrame:
        """Long table, one row per unit x sector, for joins and maps.

        Returns
        -------
        pandas.DataFrame
            Columns ``unit_id``, ``sector``, ``statistic``, ``p_value``, ``label``,
            ``p_greater``, ``p_lesser``, ``n_permutations`` and, when available,
            ``quadrant`` and ``z``.

        Examples
        --------
        >>> import geopandas as gpd
        >>> y = pd.Series([5.0, 4, 6, 0, 1, 0, 0, 1, 0, 0], name="a")
        >>> pts = gpd.GeoSeries.from_xy(np.cumsum(np.arange(1.0, 11)), np.zeros(10))  # on a line
        >>> g = cm.build_graph(pts, method="knn", k=2)
        >>> t = cm.local_getis_ord(y, g, permutations=99, random_state=1).tidy()
        >>> list(t.columns[:5])
        ['unit_id', 'sector', 'statistic', 'p_value', 'label']
        """
        frames = {
            STATISTIC: self.statistic,
            P_VALUE: self.p_value,
            LABEL: self.label,
            "p_greater": self.p_greater,
            "p_lesser": self.p_lesser,
            "n_permutations": self.n_permutations,
        }
        if self.quadrant is not None:
            frames[QUADRANT] = self.quadrant
        if self.z is not None:
            frames["z"] = self.z
        n, s = self.statistic.shape
        out = pd.DataFrame(
            {
                UNIT_ID: np.repeat(self.statistic.index.to_numpy(), s),
                SECTOR: np.tile(self.statistic.columns.to_numpy(), n),
            }
        )
        for name, frame in frames.items():
            out[name] = frame.to_numpy().ravel()
        return out


@dataclass(repr=False)
class GlobalResult:
    """Global Moran's I per sector, with normal-approximation and permutation inference.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per sector: ``I``, ``expected_I`` (-1 / (n - 1)), ``z_norm`` and ``p_norm``
        (normality assumption, two-sided, as esda), ``p_sim`` (permutation pseudo p-value for
        ``parameters["alternative"]``), ``p_greater``, ``p_lesser``, ``mean_sim``, ``z_sim``.
    parameters : dict
        Everything needed to reproduce the result.

    Examples
    --------
    An alternating column has perfect negative autocorrelation on a line of units (each
    unit's two neighbours hold the other value):

    >>> import geopandas as gpd
    >>> y = pd.DataFrame({"b": [0.0, 1, 0, 1, 0, 1, 0, 1, 0, 1]})
    >>> pts = gpd.GeoSeries.from_xy(np.arange(10.0), np.zeros(10))
    >>> g = cm.build_graph(pts, method="distance", threshold=1.0)
    >>> r = cm.global_moran(y, g, permutations=99, random_state=0)
    >>> round(float(r.I["b"]), 3), round(float(r.table.loc["b", "expected_I"]), 3)
    (-1.0, -0.111)
    """

    table: pd.DataFrame
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def I(self) -> pd.Series:  # noqa: E743 - the statistic's name
        """Moran's I per sector."""
        return self.table["I"]

    @property
    def p_sim(self) -> pd.Series:
        """Permutation pseudo p-value per sector."""
        return self.table["p_sim"]

    @property
    def z(self) -> pd.Series:
        """z-score under the normality assumption per sector."""
        return self.table["z_norm"]

    def __repr__(self) -> str:
        return (
            f"<GlobalResult moran: {len(self.table)} sectors, "
            f"{self.parameters.get('permutations')} permutations>\n{self.table!r}"
        )


# --------------------------------------------------------------------------------------
# helpers shared by the statistics


def _sparse(ga: GraphArrays, self_weights: np.ndarray | None = None) -> sp.csr_matrix:
    mat = sp.csr_matrix((ga.weights, ga.indices, ga.indptr), shape=(ga.n, ga.n))
    if self_weights is not None and np.any(self_weights):
        mat = mat + sp.diags(self_weights)
    return mat.tocsr()


def _frame(arr: np.ndarray, ids: pd.Index, columns: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(arr, index=ids.copy(), columns=columns.copy(), copy=False)


def _validate_common(
    permutations,
    alternative,
    permutation_method,
    random_state,
    adaptive,
    max_permutations,
    early_stop,
    alpha,
):
    _check_alternative(alternative)
    if not isinstance(permutations, (int, np.integer)) or permutations < 0:
        raise SchemaError(f"permutations must be a non-negative int; got {permutations!r}.")
    if permutation_method not in ("rng", "table"):
        raise SchemaError(
            f"permutation_method must be 'rng' or 'table'; {permutation_method!r} was given."
        )
    if permutation_method == "table":
        if random_state is None or not isinstance(random_state, (int, np.integer)):
            raise SchemaError(
                "permutation_method='table' reproduces esda's permutation table for an esda "
                "seed: pass random_state=<int> (the seed given to esda)."
            )
        if adaptive:
            raise SchemaError(
                "adaptive=True continues each unit's own stream; it is not available with "
                "permutation_method='table'. Use permutation_method='rng'."
            )
    if adaptive and max_permutations < permutations:
        raise SchemaError(
            f"max_permutations ({max_permutations}) must be at least permutations ({permutations})."
        )
    if early_stop is not None and not 0 < early_stop < 1:
        raise SchemaError(f"early_stop must be None or a level in (0, 1); got {early_stop!r}.")
    if not 0 < alpha < 1:
        raise SchemaError(f"alpha must be in (0, 1); got {alpha!r}.")


def _warn_islands(ga: GraphArrays, stacklevel: int = 3) -> None:
    iso = ga.isolates
    if iso.any():
        warnings.warn(
            f"{int(iso.sum())} unit(s) have no neighbours in the graph (islands): "
            f"{format_ids(ga.ids[iso])}. Their statistics and p-values are NaN with the label "
            "'isolate'. Use build_graph(..., islands='knn') to link them.",
            ClustermapWarning,
            stacklevel=stacklevel,
        )


def _constant_columns(X: np.ndarray) -> np.ndarray:
    if X.shape[0] == 0:
        return np.zeros(X.shape[1], dtype=bool)
    return (X.max(axis=0) - X.min(axis=0)) == 0


def _significant_tail(ge, le, p, alpha, alternative):
    """+1 where the upper tail is significant, -1 the lower tail, 0 otherwise."""
    sig = p <= alpha
    if alternative == "greater":
        upper = np.ones_like(sig)
    elif alternative == "lesser":
        upper = np.zeros_like(sig)
    else:
        upper = ge <= le  # p_greater <= p_lesser (same number of draws)
    return np.where(sig, np.where(upper, 1, -1), 0)


def _cat_frame(codes: np.ndarray, categories: list[str], ids: pd.Index, cols: pd.Index):
    """DataFrame of categorical columns from int8 codes (-1 = missing): 1 byte per cell."""
    dtype = pd.CategoricalDtype(categories)
    data = {j: pd.Categorical.from_codes(codes[:, j], dtype=dtype) for j in range(codes.shape[1])}
    out = pd.DataFrame(data, index=ids.copy())
    out.columns = cols.copy()
    return out


def _finish(
    stat,
    ge,
    le,
    p,
    nperm,
    codes,
    categories,
    nan_mask,
    iso,
    const,
    ga,
    columns,
    params,
    quadrant=None,
    z=None,
):
    """Assemble a LocalResult; ``codes`` index ``categories`` + ["ns", "isolate", "constant"]."""
    for arr in (stat, p):
        arr[nan_mask] = np.nan
    for arr in (ge, le):
        arr[nan_mask] = 0
    cats = [*categories, NOT_SIGNIFICANT, ISOLATE, CONSTANT]
    codes = codes.astype(np.int8)
    codes[:, const] = len(cats) - 1
    codes[iso, :] = len(cats) - 2
    nperm = nperm.astype(np.int32, copy=False)
    nperm[nan_mask] = 0
    ids = pd.Index(ga.ids, name=UNIT_ID)
    cols = pd.Index(columns, name=SECTOR)
    q = None
    if quadrant is not None:
        quadrant = quadrant.astype(np.int8)
        quadrant[iso, :] = -1
        q = _cat_frame(quadrant, list(_QUADRANTS), ids, cols)
    return LocalResult(
        statistic=_frame(stat, ids, cols),
        p_value=_frame(p, ids, cols),
        label=_cat_frame(codes, cats, ids, cols),
        count_greater=_frame(ge, ids, cols),
        count_lesser=_frame(le, ids, cols),
        n_permutations=_frame(nperm, ids, cols),
        quadrant=q,
        z=None if z is None else _frame(z, ids, cols),
        parameters=params,
    )


def _run_local(
    kind,
    values,
    graph,
    *,
    permutations,
    random_state,
    alternative,
    alpha,
    permutation_method,
    early_stop,
    adaptive,
    max_permutations,
    n_jobs,
    star=None,
):
    _validate_common(
        permutations,
        alternative,
        permutation_method,
        random_state,
        adaptive,
        max_permutations,
        early_stop,
        alpha,
    )
    ga = graph_arrays(graph)
    X, columns, _ = _as_table(values, ga)
    n, S = X.shape
    seed = _resolve_seed(random_state)
    _warn_islands(ga, stacklevel=4)
    iso = ga.isolates
    const = _constant_columns(X)
    nan_mask = iso[:, None] | const[None, :]
    return ga, X, columns, n, S, seed, iso, const, nan_mask


def _params(kind, **kw):
    out = {"statistic": kind}
    out.update(kw)
    return out


# --------------------------------------------------------------------------------------
# public functions


def local_moran(
    values: Any,
    graph: Any,
    permutations: int = 999,
    random_state: Any = None,
    *,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    permutation_method: str = "rng",
    early_stop: float | None = None,
    adaptive: bool = False,
    max_permutations: int = 9999,
    n_jobs: int | None = None,
) -> LocalResult:
    r"""Local Moran's I (LISA) for every sector, with conditional permutation inference.

    Parameters
    ----------
    values : pandas.DataFrame, pandas.Series or array-like
        Units x sectors table (e.g. counts or location quotients), indexed by unit id. The
        index is aligned on the graph's ids; missing or extra ids raise a SchemaError.
    graph : libpysal.graph.Graph or libpysal.weights.W
        Spatial weights (see :func:`clustermap.build_graph`). Never modified.
    permutations : int, default 999
        Conditional permutations per unit (0 gives statistics only, p-values NaN).
    random_state : int, numpy.random.Generator or None
        Seed of the per-unit streams (or esda's seed with ``permutation_method="table"``).
        The seed actually used is stored in ``parameters["random_state"]``.
    alternative : {"two-sided", "greater", "lesser", "directed", "esda"}, default "two-sided"
        Which p-value ``p_value`` holds (module notes). Two-sided because LISA looks for
        both clusters (HH, LL: large I) and outliers (HL, LH: small I).
    alpha : float, default 0.05
        Level for the labels (uncorrected; use :meth:`LocalResult.significant` for FDR).
    permutation_method : {"rng", "table"}, default "rng"
        Per-unit counter-based streams, or esda's shared permutation table.
    early_stop : float, optional
        Besag-Clifford early stop: a unit stops drawing once, for every sector run with it,
        enough draws are as extreme as observed for its p-value (with all ``permutations``
        draws) to exceed ``early_stop``. Decisions at any level ``<= early_stop`` are
        unchanged; larger p-values are estimates from fewer draws (``n_permutations``). A
        unit's sectors share its draws, so with many sectors a unit stops only when all of
        them are clearly non-significant: the saving is largest for few sectors.
    adaptive : bool, default False
        Sequential Monte Carlo for meaningful FDR at commune scale: after ``permutations``
        draws (with ``early_stop``, default 0.05), cells whose tail count is still below the
        stop count keep drawing on the same per-unit stream until they reach it or reach
        ``max_permutations``. Every p-value is ``(M + 1) / (n + 1)`` with ``n`` the cell's
        ``n_permutations``; small p-values get resolution ``1 / (max_permutations + 1)``.
    max_permutations : int, default 9999
        Cap of the adaptive mode.
    n_jobs : int, optional
        Threads (numba); None keeps numba's setting, -1 uses all. Results do not depend on it.

    Returns
    -------
    LocalResult
        ``statistic`` (I_i), ``p_value``, ``label`` (HH / LH / LL / HL when significant in
        the tail matching the quadrant, else "ns"), ``quadrant``, ...

    Notes
    -----
    With :math:`z = (y - \bar y) / s` (ddof 0) and weights :math:`w_{ij}`,
    :math:`I_i = (n - 1)\, z_i \sum_j w_{ij} z_j / \sum_j z_j^2` (esda's ``Moran_Local``).
    Islands and constant sectors get NaN (labels "isolate", "constant").

    Examples
    --------
    Ten units on a line, each linked to its two nearest neighbours; high values at one end.

    >>> y = pd.DataFrame({"a": [5.0, 4, 6, 0, 1, 0, 0, 1, 0, 0],
    ...                   "b": [0.0, 1, 0, 1, 0, 1, 0, 1, 0, 1]})
    >>> import geopandas as gpd
    >>> pts = gpd.GeoSeries.from_xy(np.cumsum(np.arange(1.0, 11)), np.zeros(10))  # on a line
    >>> g = cm.build_graph(pts, method="knn", k=2)
    >>> r = cm.local_moran(y, g, permutations=199, random_state=42)
    >>> r.statistic.round(2)["a"].tolist()[:3]
    [1.96, 1.57, 0.23]
    >>> r.quadrant["a"].tolist()[:4]
    ['HH', 'HH', 'HH', 'LH']
    """
    ga, X, columns, n, S, seed, iso, const, nan_mask = _run_local(
        "moran",
        values,
        graph,
        permutations=permutations,
        random_state=random_state,
        alternative=alternative,
        alpha=alpha,
        permutation_method=permutation_method,
        early_stop=early_stop,
        adaptive=adaptive,
        max_permutations=max_permutations,
        n_jobs=n_jobs,
    )
    mean = X.mean(axis=0) if n else np.zeros(S)
    sd = X.std(axis=0) if n else np.zeros(S)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = X - mean
        z /= np.where(sd > 0, sd, np.nan)
        lag = _sparse(ga, ga.self_weights) @ z
        # 0 HH, 1 LH, 2 LL, 3 HL (esda's q minus one)
        zp = z > 0
        lp = lag > 0
        quadrant = np.where(zp, np.where(lp, 0, 3), np.where(lp, 1, 2)).astype(np.int8)
        del zp, lp
        den = np.einsum("ij,ij->j", z, z)
        stat = lag  # in place: I_i = (n - 1) z_i lag_i / sum z^2
        stat *= z
        stat *= n - 1
        stat /= den
        del z, lag
    with numba_threads(n_jobs):
        ge, le, nperm = _permutation_counts(
            "moran",
            X,
            mean,
            ga,
            permutations=permutations,
            seed=seed,
            permutation_method=permutation_method,
            alternative=alternative,
            early_stop=early_stop,
            adaptive=adaptive,
            max_permutations=max_permutations,
            skip=nan_mask,
        )
    del X  # our float64 copy of the input
    p = _local_p(ge, le, nperm, alternative)
    if permutations == 0:
        p[:] = np.nan
    tail = _significant_tail(ge, le, p, alpha, alternative)
    positive = (quadrant == 0) | (quadrant == 2)
    match = ((tail == 1) & positive) | ((tail == -1) & ~positive)
    codes = np.where(match, quadrant, 4).astype(np.int8)
    del tail, positive, match
    params = _params(
        "moran",
        permutations=permutations,
        random_state=seed,
        alternative=alternative,
        alpha=alpha,
        permutation_method=permutation_method,
        early_stop=early_stop,
        adaptive=adaptive,
        max_permutations=max_permutations if adaptive else permutations,
        transform=ga.transform,
        n_units=n,
        n_sectors=S,
        n_isolates=int(iso.sum()),
        constant_sectors=list(columns[const]),
    )
    return _finish(
        stat,
        ge,
        le,
        p,
        nperm,
        codes,
        list(_QUADRANTS),
        nan_mask,
        iso,
        const,
        ga,
        columns,
        params,
        quadrant=quadrant,
    )


def _star_self_weights(ga: GraphArrays, star: Any) -> tuple[np.ndarray, np.ndarray]:
    """Self weights and row scale for Gi* (esda's convention, see local_getis_ord)."""
    n = ga.n
    rows_w = np.zeros(n)
    if ga.weights.size:
        rows = np.repeat(np.arange(n), ga.cardinalities)
        np.maximum.at(rows_w, rows, ga.weights)
    if star is True:
        if np.any(ga.self_weights):
            selfw = ga.self_weights.copy()
        elif ga.transform == "b":
            selfw = np.ones(n)
        else:
            selfw = rows_w
    else:
        selfw = np.broadcast_to(np.asarray(star, dtype=np.float64), (n,)).copy()
    scale = np.ones(n)
    if ga.transform == "r":
        row_sum = (
            np.bincount(np.repeat(np.arange(n), ga.cardinalities), weights=ga.weights, minlength=n)
            + selfw
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            scale = np.where(row_sum > 0, 1.0 / row_sum, 0.0)
    return selfw, scale


def local_getis_ord(
    values: Any,
    graph: Any,
    star: bool | float = True,
    permutations: int = 999,
    random_state: Any = None,
    *,
    alternative: str = "greater",
    alpha: float = 0.05,
    permutation_method: str = "rng",
    early_stop: float | None = None,
    adaptive: bool = False,
    max_permutations: int = 9999,
    n_jobs: int | None = None,
) -> LocalResult:
    r"""Local Getis-Ord Gi* (or Gi) hot spots for every sector, with permutation inference.

    Parameters
    ----------
    values : pandas.DataFrame, pandas.Series or array-like
        Units x sectors table of non-negative values (counts, employment, LQ), indexed by
        unit id (aligned on the graph's ids).
    graph : libpysal.graph.Graph or libpysal.weights.W
        Spatial weights; never modified.
    star : bool or float, default True
        ``True``: Gi*, the unit itself counts in its neighbourhood, with esda's self-weight
        convention: the graph's own diagonal if it has one; otherwise 1 for binary weights,
        and for row-standardised weights the row maximum followed by re-standardisation
        (1/(k+1) for each of the k neighbours and the unit with kNN). ``False``: Gi (unit
        excluded). A float: that self weight (re-standardised for row-standardised graphs).
    permutations, random_state, alpha, permutation_method, early_stop, adaptive
        As in :func:`local_moran`.
    max_permutations, n_jobs
        As in :func:`local_moran`.
    alternative : {"greater", "two-sided", "lesser", "directed", "esda"}, default "greater"
        "greater" tests for hot spots only (the use in cluster detection); pass
        "two-sided" to find cold spots too.

    Returns
    -------
    LocalResult
        ``statistic`` (Gi* or Gi), ``z`` (analytic z-score under total randomisation with
        the general moments of Ord & Getis 1995, valid for any weights: rescaling a row
        leaves it unchanged; equal to esda's ``Zs`` for 0/1 weights), ``label``
        ("hot" / "cold" / "ns").

    Notes
    -----
    :math:`G^*_i = \sum_j w^*_{ij} y_j / \sum_j y_j` with the self weight on the diagonal;
    :math:`G_i = \sum_{j \ne i} w_{ij} y_j / (\sum_j y_j - y_i)`. Under conditional
    randomisation the self term and denominator are fixed, so the neighbour sum decides.

    Examples
    --------
    >>> y = pd.Series([5.0, 4, 6, 0, 1, 0, 0, 1, 0, 0], name="a")
    >>> import geopandas as gpd
    >>> pts = gpd.GeoSeries.from_xy(np.cumsum(np.arange(1.0, 11)), np.zeros(10))  # on a line
    >>> g = cm.build_graph(pts, method="knn", k=2)
    >>> r = cm.local_getis_ord(y, g, permutations=199, random_state=0)
    >>> r.statistic["a"].round(3).tolist()[:3]
    [0.294, 0.294, 0.196]
    >>> r.label["a"].tolist()[:3]
    ['hot', 'hot', 'ns']
    """
    ga, X, columns, n, S, seed, iso, const, nan_mask = _run_local(
        "getis_ord",
        values,
        graph,
        permutations=permutations,
        random_state=random_state,
        alternative=alternative,
        alpha=alpha,
        permutation_method=permutation_method,
        early_stop=early_stop,
        adaptive=adaptive,
        max_permutations=max_permutations,
        n_jobs=n_jobs,
    )
    if (X < 0).any():
        cols = columns[(X < 0).any(axis=0)]
        raise SchemaError(
            f"Getis-Ord G needs non-negative values; column(s) {list(cols[:5])} hold negative "
            "values. Use local_moran for centred data."
        )
    if star is False:
        selfw = np.zeros(n)
        scale = np.ones(n)
        if ga.transform == "r" and np.any(ga.self_weights):
            row_sum = np.bincount(
                np.repeat(np.arange(n), ga.cardinalities), weights=ga.weights, minlength=n
            )
            with np.errstate(divide="ignore"):
                scale = np.where(row_sum > 0, 1.0 / row_sum, 0.0)
    else:
        selfw, scale = _star_self_weights(ga, star)
    W = sp.diags(scale) @ _sparse(ga)
    wself = scale * selfw
    total = X.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        if star is False:
            stat = (W @ X) / (total - X)
        else:
            stat = (W @ X + wself[:, None] * X) / total
        # Analytic moments under total randomisation for general weights (Ord & Getis
        # 1995, eq. 3-5): with W_i = sum_j w_ij and S1_i = sum_j w_ij^2 over the j in the
        # statistic, sum_j w_ij y_j has mean W_i ybar and variance
        # s^2 (N S1_i - W_i^2) / (N - 1), s^2 the variance (1/N) of the N values. Rescaling
        # a row (row standardisation) leaves z unchanged; with 0/1 weights S1_i = W_i and
        # this is esda's Zs.
        remove_self = star is False
        N = n - remove_self
        ysq = (X**2).sum(axis=0)
        xbar = (total - X * remove_self) / N
        s2 = (ysq - X**2 * remove_self) / N - xbar**2
        Wsq = W.copy()
        Wsq.data **= 2
        w_i = (np.asarray(W.sum(axis=1)).ravel() + wself)[:, None]
        s1_i = (np.asarray(Wsq.sum(axis=1)).ravel() + wself**2)[:, None]
        lag = W @ X + (0.0 if remove_self else wself[:, None] * X)
        var = s2 * (N * s1_i - w_i**2) / (N - 1)
        zs = (lag - w_i * xbar) / np.sqrt(var)
    with numba_threads(n_jobs):
        ge, le, nperm = _permutation_counts(
            "getis_ord",
            X,
            None,
            ga,
            permutations=permutations,
            seed=seed,
            permutation_method=permutation_method,
            alternative=alternative,
            early_stop=early_stop,
            adaptive=adaptive,
            max_permutations=max_permutations,
            skip=nan_mask,
        )
    del X  # our float64 copy of the input
    p = _local_p(ge, le, nperm, alternative)
    if permutations == 0:
        p[:] = np.nan
    tail = _significant_tail(ge, le, p, alpha, alternative)
    codes = np.where(tail == 1, 0, np.where(tail == -1, 1, 2)).astype(np.int8)
    zs[nan_mask] = np.nan
    params = _params(
        "getis_ord" + ("_star" if star is not False else ""),
        star=star,
        permutations=permutations,
        random_state=seed,
        alternative=alternative,
        alpha=alpha,
        permutation_method=permutation_method,
        early_stop=early_stop,
        adaptive=adaptive,
        max_permutations=max_permutations if adaptive else permutations,
        transform=ga.transform,
        n_units=n,
        n_sectors=S,
        n_isolates=int(iso.sum()),
        constant_sectors=list(columns[const]),
        self_weights="esda" if star is True else star,
    )
    return _finish(
        stat,
        ge,
        le,
        p,
        nperm,
        codes,
        ["hot", "cold"],
        nan_mask,
        iso,
        const,
        ga,
        columns,
        params,
        z=zs,
    )


def local_geary(
    values: Any,
    graph: Any,
    permutations: int = 999,
    random_state: Any = None,
    *,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    permutation_method: str = "rng",
    early_stop: float | None = None,
    adaptive: bool = False,
    max_permutations: int = 9999,
    n_jobs: int | None = None,
) -> LocalResult:
    r"""Local Geary's c for every sector, with conditional permutation inference.

    Parameters
    ----------
    values, graph, permutations, random_state, alternative, alpha
        As in :func:`local_moran`.
    permutation_method, early_stop, adaptive, max_permutations, n_jobs
        As in :func:`local_moran`.

    Returns
    -------
    LocalResult
        ``statistic`` (c_i); ``label``: a small c_i (lower tail: the unit resembles its
        neighbours) gives ``"HH"`` or ``"LL"`` from the sign of z_i (``"positive"`` when
        z_i = 0), a large c_i (upper tail) gives ``"negative"``; else ``"ns"``.

    Notes
    -----
    :math:`c_i = \sum_j w_{ij} (z_i - z_j)^2` with z standardised (ddof 0), as esda's
    ``Geary_Local`` (which always row-standardises; here the graph's weights are used as
    they are).

    Examples
    --------
    >>> y = pd.Series([5.0, 4, 6, 0, 1, 0, 0, 1, 0, 0], name="a")
    >>> import geopandas as gpd
    >>> pts = gpd.GeoSeries.from_xy(np.cumsum(np.arange(1.0, 11)), np.zeros(10))  # on a line
    >>> g = cm.build_graph(pts, method="knn", k=2)
    >>> r = cm.local_geary(y, g, permutations=99, random_state=0)
    >>> r.statistic["a"].round(3).tolist()[:3]
    [0.2, 0.499, 3.992]
    """
    ga, X, columns, n, S, seed, iso, const, nan_mask = _run_local(
        "geary",
        values,
        graph,
        permutations=permutations,
        random_state=random_state,
        alternative=alternative,
        alpha=alpha,
        permutation_method=permutation_method,
        early_stop=early_stop,
        adaptive=adaptive,
        max_permutations=max_permutations,
        n_jobs=n_jobs,
    )
    mean = X.mean(axis=0) if n else np.zeros(S)
    sd = X.std(axis=0) if n else np.zeros(S)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (X - mean) / np.where(sd > 0, sd, np.nan)
    stat = np.zeros((n, S))
    card = ga.cardinalities
    for t in range(int(card.max()) if n else 0):  # t-th neighbour of every unit that has one
        units = np.nonzero(card > t)[0]
        slot = ga.indptr[units] + t
        d = z[units] - z[ga.indices[slot]]
        d *= d
        d *= ga.weights[slot][:, None]
        stat[units] += d
        del d
    with numba_threads(n_jobs):
        ge, le, nperm = _permutation_counts(
            "geary",
            X,
            None,
            ga,
            permutations=permutations,
            seed=seed,
            permutation_method=permutation_method,
            alternative=alternative,
            early_stop=early_stop,
            adaptive=adaptive,
            max_permutations=max_permutations,
            skip=nan_mask,
        )
    del X  # our float64 copy of the input
    p = _local_p(ge, le, nperm, alternative)
    if permutations == 0:
        p[:] = np.nan
    tail = _significant_tail(ge, le, p, alpha, alternative)
    # 0 HH, 1 LL, 2 positive (z_i = 0), 3 negative, 4 ns
    similar = np.where(z > 0, 0, np.where(z < 0, 1, 2))
    codes = np.where(tail == -1, similar, np.where(tail == 1, 3, 4)).astype(np.int8)
    params = _params(
        "geary",
        permutations=permutations,
        random_state=seed,
        alternative=alternative,
        alpha=alpha,
        permutation_method=permutation_method,
        early_stop=early_stop,
        adaptive=adaptive,
        max_permutations=max_permutations if adaptive else permutations,
        transform=ga.transform,
        n_units=n,
        n_sectors=S,
        n_isolates=int(iso.sum()),
        constant_sectors=list(columns[const]),
    )
    return _finish(
        stat,
        ge,
        le,
        p,
        nperm,
        codes,
        ["HH", "LL", "positive", "negative"],
        nan_mask,
        iso,
        const,
        ga,
        columns,
        params,
    )


def global_moran(
    values: Any,
    graph: Any,
    permutations: int = 999,
    random_state: Any = None,
    *,
    alternative: str = "two-sided",
    n_jobs: int | None = None,
) -> GlobalResult:
    r"""Global Moran's I for every sector, with total-randomisation permutation inference.

    Parameters
    ----------
    values : pandas.DataFrame, pandas.Series or array-like
        Units x sectors table indexed by unit id (aligned on the graph's ids).
    graph : libpysal.graph.Graph or libpysal.weights.W
        Spatial weights; never modified.
    permutations : int, default 999
        Random permutations of the units (one permutation serves every sector).
    random_state : int, numpy.random.Generator or None
        Seed of the counter-based stream (thread-count independent).
    alternative : {"two-sided", "greater", "lesser", "directed"}, default "two-sided"
        Which pseudo p-value ``p_sim`` holds (``(M + 1) / (P + 1)`` per tail, ties counted
        on both sides; two-sided doubles the smaller tail, capped at 1).
    n_jobs : int, optional
        Threads (numba); None keeps numba's setting.

    Returns
    -------
    GlobalResult
        ``table`` indexed by sector with ``I``, ``expected_I``, ``z_norm``, ``p_norm``,
        ``p_sim``, ``p_greater``, ``p_lesser``, ``mean_sim``, ``z_sim``.

    Notes
    -----
    :math:`I = (n / S_0) \sum_{ij} w_{ij} z_i z_j / \sum_i z_i^2`, z = y - mean(y);
    ``z_norm`` and ``p_norm`` (two-sided) use the moments under normality, as esda's
    ``Moran``. Constant sectors give NaN.

    Examples
    --------
    >>> y = pd.DataFrame({"a": [5.0, 4, 6, 0, 1, 0, 0, 1, 0, 0],
    ...                   "b": [0.0, 1, 0, 1, 0, 1, 0, 1, 0, 1]})
    >>> import geopandas as gpd
    >>> pts = gpd.GeoSeries.from_xy(np.cumsum(np.arange(1.0, 11)), np.zeros(10))  # on a line
    >>> g = cm.build_graph(pts, method="knn", k=2)
    >>> r = cm.global_moran(y, g, permutations=199, random_state=0)
    >>> r.I.round(3).tolist()
    [0.567, -0.8]
    """
    _check_alternative(alternative)
    if alternative == "esda":
        raise SchemaError("alternative='esda' is only defined for the local statistics.")
    if not isinstance(permutations, (int, np.integer)) or permutations < 0:
        raise SchemaError(f"permutations must be a non-negative int; got {permutations!r}.")
    ga = graph_arrays(graph)
    X, columns, _ = _as_table(values, ga)
    n, S = X.shape
    seed = _resolve_seed(random_state)
    const = _constant_columns(X)
    Z = np.ascontiguousarray(X - X.mean(axis=0))
    W = _sparse(ga, ga.self_weights)
    s0 = W.sum()
    zz = (Z * Z).sum(axis=0)
    with numba_threads(n_jobs):
        obs = K.global_cross_observed(Z, ga.indptr, ga.indices, ga.weights, ga.self_weights)
        if permutations:
            sims = K.global_cross_permuted(
                Z,
                ga.indptr,
                ga.indices,
                ga.weights,
                ga.self_weights,
                _seed_key(seed),
                int(permutations),
            )
        else:
            sims = np.empty((0, S))
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = n / s0 / zz
        stat = scale * obs
        ei = -1.0 / (n - 1)
        wsym = W + W.T
        s1 = 0.5 * wsym.multiply(wsym).sum()
        s2 = float(
            (np.asarray(W.sum(axis=1)).ravel() + np.asarray(W.sum(axis=0)).ravel())
            @ (np.asarray(W.sum(axis=1)).ravel() + np.asarray(W.sum(axis=0)).ravel())
        )
        v_num = n * n * s1 - n * s2 + 3 * s0 * s0
        v_den = (n - 1) * (n + 1) * s0 * s0
        vi = v_num / v_den - ei * ei
        z_norm = (stat - ei) / np.sqrt(vi)
        p_norm = 2.0 * stats.norm.sf(np.abs(z_norm))
        if permutations:
            ge = (sims >= obs).sum(axis=0)
            le = (sims <= obs).sum(axis=0)
            pg, pl, p = _p_values(ge, le, np.full(S, permutations), alternative)
            isim = sims * scale
            mean_sim = isim.mean(axis=0)
            sd_sim = isim.std(axis=0, ddof=1)
            z_sim = (stat - mean_sim) / sd_sim
        else:
            pg = pl = p = mean_sim = z_sim = np.full(S, np.nan)
    table = pd.DataFrame(
        {
            "I": stat,
            "expected_I": np.full(S, ei),
            "z_norm": z_norm,
            "p_norm": p_norm,
            "p_sim": p,
            "p_greater": pg,
            "p_lesser": pl,
            "mean_sim": mean_sim,
            "z_sim": z_sim,
        },
        index=pd.Index(columns, name=SECTOR),
    )
    table.loc[
        const, ["I", "z_norm", "p_norm", "p_sim", "p_greater", "p_lesser", "mean_sim", "z_sim"]
    ] = np.nan
    params = {
        "statistic": "global_moran",
        "permutations": permutations,
        "random_state": seed,
        "alternative": alternative,
        "transform": ga.transform,
        "n_units": n,
        "n_sectors": S,
        "constant_sectors": list(columns[const]),
    }
    return GlobalResult(table=table, parameters=params)
