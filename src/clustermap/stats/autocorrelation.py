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
kernels are bound by it); other columns are quantised to 16-bit integers on such graphs
(summed in integers, with a bound on the quantisation error), else gathered as float32
with a bound on the rounding error, or summed in float64; with a bound, the few draws too
close to call are summed again in float64: the counts are float64's in every case.

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

import dataclasses
import functools
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy import stats

from ..core.display import format_ids
from ..core.distributed import resolve_client, run_blocks, sector_blocks, worker_threads
from ..core.options import keyword_only
from ..core.parallel import numba_threads
from ..core.schema import LABEL, P_VALUE, QUADRANT, SECTOR, STATISTIC, UNIT_ID
from ..errors import ClustermapWarning, SchemaError
from ..graph import GraphArrays, graph_arrays
from . import _kernels as K
from ._permutation import (
    PermutationOptions,
    _check_alternative,
    _local_p,
    _p_values,
    _resolve_seed,
    _seed_key,
    permutation_counts,
)
from .inference import adjust_pvalues

__all__ = [
    "GlobalResult",
    "LocalResult",
    "global_moran",
    "kernels_compiled",
    "local_geary",
    "local_getis_ord",
    "local_moran",
]

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
        correction : {"fdr_bh", "fdr_by", "bonferroni", "holm", None}, default "fdr_bh"
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
            self.p_value, correction=correction, axis=0 if family == "sector" else None
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
    """+1 where the upper tail is significant, -1 the lower tail, 0 otherwise (int8)."""
    sig = (p <= alpha).view(np.int8)
    if alternative == "greater":
        return sig
    if alternative == "lesser":
        return -sig
    upper = (ge <= le).view(np.int8)  # p_greater <= p_lesser (same number of draws)
    return sig * (2 * upper - 1)


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


@dataclass
class _Observed:
    """What a statistic computes before the permutations."""

    stat: np.ndarray  # (n, S) observed values
    center: np.ndarray | None = None  # per-sector centre of the sign of each cell (Moran)
    quadrant: np.ndarray | None = None
    z: np.ndarray | None = None
    extra: Any = None  # anything the labels need


@dataclass(frozen=True)
class _Spec:
    """One local statistic: its kernel kind, observed values, labels and parameters."""

    kind: str  # kernel kind: "moran", "getis_ord" or "geary"
    name: str  # parameters["statistic"]
    observe: Callable[[np.ndarray, GraphArrays, pd.Index], _Observed]
    label: Callable[..., np.ndarray]  # (obs, ge, le, p, opts) -> int8 codes
    categories: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)


def _run_local(
    spec: _Spec, values: Any, graph: Any, opts: PermutationOptions, client: Any = None
) -> LocalResult:
    """The permutation driver shared by the local statistics."""
    client = resolve_client(client)
    if client is not None:
        return _run_sharded(spec, values, graph, opts, client)
    ga = graph_arrays(graph)
    X, columns, _ = _as_table(values, ga)
    n, S = X.shape
    _warn_islands(ga, stacklevel=4)
    iso = ga.isolates
    const = _constant_columns(X)
    nan_mask = iso[:, None] | const[None, :]
    obs = spec.observe(X, ga, columns)
    ge, le, nperm = permutation_counts(spec.kind, X, obs.center, ga, opts, skip=nan_mask)
    del X  # our float64 copy of the input
    p = _local_p(ge, le, nperm, opts.alternative)
    if opts.permutations == 0:
        p[:] = np.nan
    codes = spec.label(obs, ge, le, p, opts)
    if obs.z is not None:
        obs.z[nan_mask] = np.nan
    params = {
        "statistic": spec.name,
        **spec.params,
        **opts.as_params(),
        "transform": ga.transform,
        "n_units": n,
        "n_sectors": S,
        "n_isolates": int(iso.sum()),
        "constant_sectors": list(columns[const]),
    }
    return _finish(
        obs.stat,
        ge,
        le,
        p,
        nperm,
        codes,
        list(spec.categories),
        nan_mask,
        iso,
        const,
        ga,
        columns,
        params,
        quadrant=obs.quadrant,
        z=obs.z,
    )


def _run_sharded(
    spec: _Spec, values: Any, graph: Any, opts: PermutationOptions, client: Any
) -> LocalResult:
    """``_run_local`` over blocks of sectors, one task each on ``client``'s workers.

    Each unit draws its neighbours from its own stream whatever sectors it serves, so every
    block gets the counts the whole table would get: the result equals the single-machine one.
    """
    if opts.early_stop is not None or opts.adaptive:
        raise SchemaError(
            "early_stop and adaptive stop a unit's draws once every sector run with it is "
            "decided, so their counts depend on how the sectors are split; with client= "
            "leave early_stop=None and adaptive=False."
        )
    ga = graph_arrays(graph)
    X, columns, _ = _as_table(values, ga)
    ids = pd.Index(ga.ids, name=UNIT_ID)
    blocks = [
        pd.DataFrame(X[:, b], index=ids, columns=columns[b])
        for b in sector_blocks(X.shape[1], client)
    ]
    del X
    parts = run_blocks(client, _local_block, [graph], blocks, spec=spec, opts=opts, stacklevel=6)
    return _concat_local(parts, columns)


def _local_block(block: pd.DataFrame, graph: Any, *, spec: _Spec, opts: PermutationOptions):
    """One task of :func:`_run_sharded`."""
    if opts.n_jobs is None:
        opts = dataclasses.replace(opts, n_jobs=worker_threads())
    return _run_local(spec, block, graph, opts)


def _concat_local(parts: list[LocalResult], columns: pd.Index) -> LocalResult:
    """Put the blocks of sectors of one local statistic back side by side."""

    def cat(name: str) -> pd.DataFrame | None:
        frames = [getattr(p, name) for p in parts]
        if frames[0] is None:
            return None
        out = pd.concat(frames, axis=1)
        out.columns = pd.Index(columns, name=SECTOR)
        return out

    label = cat("label")
    label = label.astype(pd.CategoricalDtype(parts[0].label.dtypes.iloc[0].categories))
    quadrant = cat("quadrant")
    if quadrant is not None:
        quadrant = quadrant.astype(parts[0].quadrant.dtypes.iloc[0])
    params = dict(parts[0].parameters)
    params["n_sectors"] = sum(p.parameters["n_sectors"] for p in parts)
    params["constant_sectors"] = [c for p in parts for c in p.parameters["constant_sectors"]]
    return LocalResult(
        statistic=cat("statistic"),
        p_value=cat("p_value"),
        label=label,
        count_greater=cat("count_greater"),
        count_lesser=cat("count_lesser"),
        n_permutations=cat("n_permutations"),
        quadrant=quadrant,
        z=cat("z"),
        parameters=params,
    )


def _options(arguments: dict[str, Any]) -> PermutationOptions:
    """The inference settings among a local statistic's arguments, validated once."""
    return PermutationOptions.validate(**{k: arguments[k] for k in _INFERENCE})


#: the arguments every local statistic passes to the permutation engine
_INFERENCE = (
    "permutations",
    "random_state",
    "alternative",
    "alpha",
    "permutation_method",
    "early_stop",
    "adaptive",
    "max_permutations",
    "n_jobs",
)


# --------------------------------------------------------------------------------------
# public functions


def _moran_observe(X: np.ndarray, ga: GraphArrays, columns: pd.Index) -> _Observed:
    n, S = X.shape
    mean = X.mean(axis=0) if n else np.zeros(S)
    sd = X.std(axis=0) if n else np.zeros(S)
    with np.errstate(invalid="ignore", divide="ignore"):
        z = X - mean
        z /= np.where(sd > 0, sd, np.nan)
        lag = _sparse(ga, ga.self_weights) @ z
        # 0 HH, 1 LH, 2 LL, 3 HL (esda's q minus one)
        zp = (z > 0).view(np.int8)
        lp = lag > 0
        quadrant = np.where(lp, 1 - zp, 2 + zp)  # int8 throughout: no 8-byte temporaries
        del zp, lp
        den = np.einsum("ij,ij->j", z, z)
        stat = lag  # in place: I_i = (n - 1) z_i lag_i / sum z^2
        stat *= z
        stat *= n - 1
        stat /= den
        del z, lag
    return _Observed(stat, center=mean, quadrant=quadrant)


def _moran_label(obs: _Observed, ge, le, p, opts: PermutationOptions) -> np.ndarray:
    quadrant = obs.quadrant
    tail = _significant_tail(ge, le, p, opts.alpha, opts.alternative)
    positive = (quadrant == 0) | (quadrant == 2)
    match = ((tail == 1) & positive) | ((tail == -1) & ~positive)
    codes = np.where(match, quadrant, 4).astype(np.int8)
    del tail, positive, match
    return codes


_MORAN = _Spec("moran", "moran", _moran_observe, _moran_label, _QUADRANTS)


@keyword_only(2, ["permutations", "random_state"])
def local_moran(
    values: Any,
    graph: Any,
    *,
    permutations: int = 999,
    random_state: Any = None,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    permutation_method: str = "rng",
    early_stop: float | None = None,
    adaptive: bool = False,
    max_permutations: int = 9999,
    n_jobs: int | None = None,
    client: Any = None,
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
    client : dask.distributed.Client or str, optional
        Run blocks of sectors as tasks of a Dask cluster (a client, a scheduler address or
        ``"local"``; needs ``pip install 'clustermap[dask]'``). The result equals the
        single-machine one for the same ``random_state``, on any number of workers;
        ``early_stop`` and ``adaptive`` are not available with it.

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
    opts = _options(locals())
    return _run_local(_MORAN, values, graph, opts, client)


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


def _gi_observe(X: np.ndarray, ga: GraphArrays, columns: pd.Index, *, star: Any) -> _Observed:
    n = X.shape[0]
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
    return _Observed(stat, z=zs)


def _gi_label(obs: _Observed, ge, le, p, opts: PermutationOptions) -> np.ndarray:
    tail = _significant_tail(ge, le, p, opts.alpha, opts.alternative)
    return np.where(tail == 1, np.int8(0), np.where(tail == -1, np.int8(1), np.int8(2)))


@keyword_only(2, ["star", "permutations", "random_state"])
def local_getis_ord(
    values: Any,
    graph: Any,
    *,
    star: bool | float = True,
    permutations: int = 999,
    random_state: Any = None,
    alternative: str = "greater",
    alpha: float = 0.05,
    permutation_method: str = "rng",
    early_stop: float | None = None,
    adaptive: bool = False,
    max_permutations: int = 9999,
    n_jobs: int | None = None,
    client: Any = None,
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
    max_permutations, n_jobs, client
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
    opts = _options(locals())
    spec = _Spec(
        "getis_ord",
        "getis_ord" + ("_star" if star is not False else ""),
        functools.partial(_gi_observe, star=star),
        _gi_label,
        ("hot", "cold"),
        params={"star": star, "self_weights": "esda" if star is True else star},
    )
    return _run_local(spec, values, graph, opts, client)


def _geary_observe(X: np.ndarray, ga: GraphArrays, columns: pd.Index) -> _Observed:
    n, S = X.shape
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
    return _Observed(stat, extra=z)


def _geary_label(obs: _Observed, ge, le, p, opts: PermutationOptions) -> np.ndarray:
    z = obs.extra
    tail = _significant_tail(ge, le, p, opts.alpha, opts.alternative)
    # 0 HH, 1 LL, 2 positive (z_i = 0), 3 negative, 4 ns
    similar = np.where(z > 0, 0, np.where(z < 0, 1, 2))
    codes = np.where(tail == -1, similar, np.where(tail == 1, 3, 4)).astype(np.int8)
    return codes


_GEARY = _Spec("geary", "geary", _geary_observe, _geary_label, ("HH", "LL", "positive", "negative"))


@keyword_only(2, ["permutations", "random_state"])
def local_geary(
    values: Any,
    graph: Any,
    *,
    permutations: int = 999,
    random_state: Any = None,
    alternative: str = "two-sided",
    alpha: float = 0.05,
    permutation_method: str = "rng",
    early_stop: float | None = None,
    adaptive: bool = False,
    max_permutations: int = 9999,
    n_jobs: int | None = None,
    client: Any = None,
) -> LocalResult:
    r"""Local Geary's c for every sector, with conditional permutation inference.

    Parameters
    ----------
    values, graph, permutations, random_state, alternative, alpha
        As in :func:`local_moran`.
    permutation_method, early_stop, adaptive, max_permutations, n_jobs, client
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
    opts = _options(locals())
    return _run_local(_GEARY, values, graph, opts, client)


@keyword_only(2, ["permutations", "random_state"])
def global_moran(
    values: Any,
    graph: Any,
    *,
    permutations: int = 999,
    random_state: Any = None,
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


def kernels_compiled() -> bool | None:
    """Whether the permutation kernels are already compiled in numba's cache on this machine.

    The first call of a local statistic compiles them (15-20 s on 2 cores for the storage
    types it uses); later processes load them in a second. None when it cannot be told
    (numba's cache layout is not the one known, or caching is off).

    Examples
    --------
    >>> kernels_compiled() in (True, False, None)
    True
    """
    import os

    try:
        index = K.tiled_counts._cache._cache_file._index_path
    except AttributeError:  # another numba layout, or no cache
        return None
    return os.path.exists(index)
