"""Which industries belong together: relatedness from the user's own registry.

Porter's clusters are groups of *related* industries. Delgado, Porter & Stern (2016) measure
relatedness by co-location (industries whose establishments and jobs are found in the same
places) and by input-output and occupation links; a registry carries the co-location part.
:func:`relatedness` computes, for every pair of sectors at once from the sparse units ×
sectors table:

``coagglomeration``
    the Ellison-Glaeser-Kerr (2010) index ``sum_m (s_mi - x_m)(s_mj - x_m) / (1 - sum_m
    x_m²)``, ``s_mi`` the share of sector *i*'s establishments (or jobs) in unit *m* and
    ``x_m`` the unit's share of all of them;
``correlation``
    the locational correlation: Pearson's correlation of the two sectors' counts across
    units (``numpy.corrcoef`` of the columns);
``colocation``
    the co-location of significant concentrations: the cosine similarity of the two
    sectors' maps of local excess, where a unit's excess is ``log`` of its window LQ
    (unit + neighbours) when the window test of :func:`clustermap.detect_clusters`
    (negative binomial) rejects at ``significance``, and 0 elsewhere. The first two follow
    the shared urban gradient at fine zonings (every urban industry co-locates with every
    other in the large cities); this one compares where sectors are *locally* concentrated
    beyond noise, which is what a cluster of related industries shows.

:func:`derive_categories` groups sectors by hierarchical clustering of a relatedness matrix
and chooses the cut with the validation scores of Delgado, Porter & Stern (2016).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.options import keyword_only
from ..core.schema import EMPLOYEES, ESTABLISHMENTS
from ..errors import ClustermapWarning
from ..stats.dispersion import estimate_dispersion
from ..table import OTHER
from .options import DetectionOptions
from .regions import adjacency
from .window import window_test

__all__ = [
    "DerivedCategories",
    "Relatedness",
    "coagglomeration",
    "colocation_from_cells",
    "derive_categories",
    "locational_correlation",
    "relatedness",
]

MEASURES = ("coagglomeration", "correlation", "colocation")


def coagglomeration(x: Any) -> np.ndarray:
    """Ellison-Glaeser-Kerr coagglomeration index of every pair of columns of ``x``.

    ``gamma_ij = sum_m (s_mi - x_m)(s_mj - x_m) / (1 - sum_m x_m²)`` with ``s_mi =
    x_mi / x_·i`` and ``x_m = x_m· / x_··`` (Ellison, Glaeser & Kerr 2010, eq. 2), computed
    without densifying ``x``: ``S'S - a 1' - 1 a' + x'x`` over ``1 - x'x`` with ``a = S'x``.

    Examples
    --------
    Two units of 100 establishments each (``x_m = 1/2``); sectors 0 and 1 sit in the first,
    sector 2 in the second: ``gamma_01 = (1/2 · 1/2 + 1/2 · 1/2) / (1 - 1/2) = 1``,
    ``gamma_02 = -1``:

    >>> g = coagglomeration(np.array([[10, 5, 0, 85], [0, 0, 10, 90]]))
    >>> g.round(4)[0].tolist()
    [1.0, 1.0, -1.0, -0.0286]
    """
    x = sp.csc_matrix(x, dtype=float)
    n_s = np.asarray(x.sum(axis=0)).ravel()
    share_m = np.asarray(x.sum(axis=1)).ravel() / n_s.sum()
    s = x @ sp.diags(1.0 / np.where(n_s > 0, n_s, 1.0))
    sts = (s.T @ s).toarray()
    a = np.asarray(s.T @ share_m).ravel()
    xx = float(share_m @ share_m)
    return (sts - a[:, None] - a[None, :] + xx) / (1.0 - xx)


def locational_correlation(x: Any) -> np.ndarray:
    """Pearson correlation of every pair of columns of ``x`` across its rows (sparse-safe).

    Equal to ``numpy.corrcoef(x, rowvar=False)``; a constant column gives NaN.

    Examples
    --------
    >>> x = np.array([[1.0, 2, 0], [2, 4, 1], [3, 5, 0]])
    >>> bool(np.allclose(locational_correlation(x), np.corrcoef(x, rowvar=False)))
    True
    """
    x = sp.csc_matrix(x, dtype=float)
    n = x.shape[0]
    mean = np.asarray(x.mean(axis=0)).ravel()
    cov = ((x.T @ x).toarray() - n * np.outer(mean, mean)) / (n - 1)
    sd = np.sqrt(np.clip(np.diag(cov), 0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = cov / np.outer(sd, sd)
    return out


def _colocation(x: sp.csr_matrix, adj: sp.csr_matrix, significance: float) -> np.ndarray:
    """Cosine similarity of the sectors' maps of significant local excess (log window LQ)."""
    alpha = estimate_dispersion(x)["alpha"].to_numpy()
    cells = window_test(
        x,
        adj,
        np.ones(x.shape[1], dtype=bool),
        alpha=0.05,
        min_unit_lq=1.0,
        grow_alpha=0.05,
        conf_level=0.95,
        dispersion=alpha,
    )
    return colocation_from_cells(cells, x.shape, significance)


def colocation_from_cells(
    cells: pd.DataFrame, shape: tuple[int, int], significance: float = 0.001
) -> np.ndarray:
    """The ``colocation`` matrix from the cells of a window test (all sectors at once).

    Examples
    --------
    >>> cells = pd.DataFrame({"_r": [0, 1, 0, 2], "_c": [0, 0, 1, 2],
    ...     "p_value": [1e-5, 1e-5, 1e-5, 1e-5], "window_observed": [9.0, 9, 9, 9],
    ...     "window_expected": [3.0, 3, 3, 3]})
    >>> colocation_from_cells(cells, (3, 3)).round(3).tolist()
    [[1.0, 0.707, 0.0], [0.707, 1.0, 0.0], [0.0, 0.0, 1.0]]
    """
    p = cells["p_value"].to_numpy()
    lq_w = cells["window_observed"].to_numpy() / cells["window_expected"].to_numpy()
    hit = (p < significance) & (lq_w > 1.0)
    r, c = cells["_r"].to_numpy()[hit], cells["_c"].to_numpy()[hit]
    z = sp.csr_matrix((np.log(lq_w[hit]), (r, c)), shape=shape)
    zz = (z.T @ z).toarray()
    norm = np.sqrt(np.diag(zz))
    norm = np.where(norm > 0, norm, 1.0)
    out = zz / np.outer(norm, norm)
    np.fill_diagonal(out, 1.0)
    return out


@dataclass
class Relatedness:
    """Relatedness of every pair of sectors, from :func:`relatedness`.

    Attributes
    ----------
    sectors : pandas.DataFrame
        One row per sector: ``sector``, ``sector_label``, ``establishments``.
    matrices : dict of str to numpy.ndarray
        Sectors × sectors matrices, by measure name (``coagglomeration``, ``correlation``,
        ``colocation``, and ``coagglomeration_employees`` / ``correlation_employees``
        when the data carry employment).
    parameters : dict
        Zoning, significance and graph used.
    """

    sectors: pd.DataFrame
    matrices: dict[str, np.ndarray]
    parameters: dict[str, Any] = field(default_factory=dict)

    def matrix(self, measure: str = "colocation") -> pd.DataFrame:
        """The sectors × sectors matrix of ``measure`` as a labelled DataFrame."""
        if measure not in self.matrices:
            raise ValueError(f"measure must be one of {sorted(self.matrices)}; got {measure!r}.")
        codes = pd.Index(self.sectors["sector"], name="sector")
        return pd.DataFrame(self.matrices[measure], index=codes, columns=codes)

    def pairs(self) -> pd.DataFrame:
        """Tidy table, one row per pair ``sector_a < sector_b``, every measure a column."""
        n = len(self.sectors)
        ia, ib = np.triu_indices(n, k=1)
        codes = self.sectors["sector"].to_numpy(dtype=object)
        est = self.sectors[ESTABLISHMENTS].to_numpy()
        out = pd.DataFrame(
            {
                "sector_a": codes[ia],
                "sector_b": codes[ib],
                "establishments_a": est[ia],
                "establishments_b": est[ib],
            }
        )
        for name, mat in self.matrices.items():
            out[name] = mat[ia, ib]
        return out

    def related(self, sector: str, *, n: int = 10, measure: str = "colocation") -> pd.DataFrame:
        """The ``n`` sectors most related to ``sector`` by ``measure``, with their labels."""
        mat = self.matrix(measure)
        if sector not in mat.index:
            raise KeyError(f"{sector!r} is not a sector of this table.")
        col = mat[sector].drop(sector).sort_values(ascending=False).head(n)
        labels = self.sectors.set_index("sector")["sector_label"]
        return pd.DataFrame(
            {
                "sector": col.index,
                "sector_label": labels.reindex(col.index).to_numpy(),
                measure: col.to_numpy(),
            }
        )


@keyword_only(2, ["level"])
def relatedness(
    data: Any,
    units: Any = None,
    *,
    level: Any = "subclass",
    graph: Any = None,
    significance: float = 0.001,
    min_establishments: int = 1,
    nomenclature: str = "naf",
) -> Relatedness:
    """Relatedness of every pair of sectors from their co-location in the user's data.

    Parameters
    ----------
    data : Registry, GeoDataFrame, DataFrame or CountTables
        As :func:`clustermap.detect_clusters`: a registry, or units × sectors counts.
    units : geopandas.GeoDataFrame, optional
        The zoning (required for counts); default the registry's communes as points.
    level : str, mapping or None, default "subclass"
        Sector level (as everywhere in clustermap).
    graph : libpysal.graph.Graph, optional
        Neighbours for the ``colocation`` windows (default as in ``detect_clusters``).
    significance : float, default 0.001
        Window p-value under which a unit's local excess counts in ``colocation``.
    min_establishments : int, default 1
        Sectors with fewer establishments are left out.
    nomenclature : str, default "naf"

    Returns
    -------
    Relatedness
        ``pairs()`` (tidy, one row per pair), ``matrix(measure)``, ``related(sector)``.

    Examples
    --------
    Twenty units in a row; sectors "a" and "b" both concentrate in units 3-5, "c" in 14-16:

    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> ids = [f"u{i:02d}" for i in range(20)]
    >>> units = gpd.GeoDataFrame(geometry=[box(i, 0, i + 1, 1) for i in range(20)],
    ...                          index=pd.Index(ids, name="unit_id"))
    >>> counts = pd.DataFrame({"a": 1, "b": 1, "c": 1, "z": 200}, index=ids)
    >>> counts.loc[["u03", "u04", "u05"], ["a", "b"]] = 30
    >>> counts.loc[["u14", "u15", "u16"], "c"] = 30
    >>> rel = cm.relatedness(counts, units, level=None)
    >>> m = rel.matrix("colocation")
    >>> round(float(m.loc["a", "b"]), 2), round(float(m.loc["a", "c"]), 2)
    (1.0, 0.0)
    >>> bool(rel.matrix("coagglomeration").loc["a", "b"] > 0 > rel.matrix(
    ...     "coagglomeration").loc["a", "c"])
    True
    """
    from .pipeline import _default_graph, _read_input, _Run, _sector_info

    if not 0 < significance < 1:
        raise ValueError(f"significance must be in (0, 1); got {significance!r}.")
    opts = DetectionOptions(nomenclature=nomenclature)
    run = _Run(level=level, alpha=0.05, min_lq=1.0, opts=opts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        inp = _read_input(data, units, level, None, opts, run)
        graph = _default_graph(graph, inp.units, inp.point_units, run)
    table = inp.table
    x_all = table.measures[ESTABLISHMENTS].tocsr().astype(float)
    n_s = np.asarray(x_all.sum(axis=0)).ravel()
    keep = (n_s >= max(min_establishments, 1)) & np.asarray(table.sectors != OTHER)
    cols = np.flatnonzero(keep)
    adj = adjacency(graph, table.unit_ids)
    matrices = {
        "coagglomeration": coagglomeration(x_all[:, cols]),
        "correlation": locational_correlation(x_all[:, cols]),
    }
    # the window test keeps every sector (and OTHER) in each unit's total activity
    matrices["colocation"] = _colocation(x_all, adj, significance)[np.ix_(cols, cols)]
    emp = table.measures.get(EMPLOYEES)
    if emp is not None and emp.sum() > 0:
        e = emp.tocsc()[:, cols]
        matrices["coagglomeration_employees"] = coagglomeration(e)
        matrices["correlation_employees"] = locational_correlation(e)
    labels, _ = _sector_info(table.sectors, level, nomenclature)
    sectors = pd.DataFrame(
        {
            "sector": table.sectors[cols].astype(str),
            "sector_label": labels[cols],
            ESTABLISHMENTS: n_s[cols],
        }
    ).reset_index(drop=True)
    params = {
        "level": run.params["level"],
        "units": len(table.unit_ids),
        "graph": run.params.get("graph"),
        "significance": significance,
    }
    return Relatedness(sectors=sectors, matrices=matrices, parameters=params)


@dataclass
class DerivedCategories:
    """Categories of related sectors, from :func:`derive_categories`.

    Attributes
    ----------
    mapping : pandas.Series
        Sector -> category name, for ``level=`` anywhere in clustermap. A sector related to
        no other is its own category (its code).
    categories : pandas.DataFrame
        One row per category of two sectors or more: ``category``, ``sectors`` (list),
        ``within`` (mean relatedness of its pairs).
    scores : pandas.DataFrame
        The validation scores of every cut tried: ``threshold``, ``categories``,
        ``sectors_grouped``, ``largest``, ``own_share`` (share of grouped sectors more
        related to their own category than to any other), ``within``, ``between``.
    threshold : float
        The cut chosen.
    """

    mapping: pd.Series
    categories: pd.DataFrame
    scores: pd.DataFrame
    threshold: float


def _cut_scores(r: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """DPS validation scores of one partition of a relatedness matrix."""
    n = len(labels)
    _, lab = np.unique(labels, return_inverse=True)
    k = lab.max() + 1
    member = sp.csr_matrix((np.ones(n), (np.arange(n), lab)), shape=(n, k))
    sums = np.asarray(r @ member)  # relatedness of each sector to each category
    size = np.asarray(member.sum(axis=0)).ravel()
    own_size = size[lab]
    grouped = own_size > 1
    own = (sums[np.arange(n), lab] - np.diag(r)) / np.maximum(own_size - 1, 1)
    other = sums / size[None, :]
    other[np.arange(n), lab] = -np.inf
    best_other = other.max(axis=1) if k > 1 else np.full(n, -np.inf)
    same = lab[:, None] == lab[None, :]
    off = ~np.eye(n, dtype=bool)
    within = r[same & off]
    between = r[~same]
    return {
        "categories": int((size > 1).sum()),
        "sectors_grouped": int(grouped.sum()),
        "largest": int(size.max()),
        "own_share": float(np.mean(own[grouped] > best_other[grouped])) if grouped.any() else 0.0,
        "within": float(within.mean()) if within.size else np.nan,
        "between": float(between.mean()) if between.size else np.nan,
    }


def derive_categories(
    rel: Relatedness,
    *,
    measure: str = "colocation",
    thresholds: Sequence[float] | None = None,
    min_own_share: float = 0.95,
    min_within: float = 0.25,
) -> DerivedCategories:
    """Group related sectors into categories, choosing the cut with validation scores.

    Sectors are clustered hierarchically (average linkage) on the distance
    ``1 - relatedness``; each cut at a distance ``threshold`` is a partition, scored as
    Delgado, Porter & Stern (2016) validate cluster definitions: the share of grouped
    sectors more related on average to their own category than to any other
    (``own_share``), and the mean relatedness within categories against between them. The
    cut kept groups the most sectors while ``own_share >= min_own_share`` and the mean
    within-category relatedness is at least ``min_within``: beyond it, categories start
    absorbing sectors that are not related to them.

    Parameters
    ----------
    rel : Relatedness
        From :func:`relatedness`.
    measure : str, default "colocation"
        The matrix clustered (a similarity in [-1, 1]: ``colocation`` or ``correlation``).
    thresholds : sequence of float, optional
        Distances tried (default 0.50 to 0.99 by 0.01).
    min_own_share, min_within : float
        The validation floors above.

    Returns
    -------
    DerivedCategories
        ``mapping`` (for ``level=``), ``categories``, ``scores`` of every cut, ``threshold``.

    Examples
    --------
    Four sectors, two related pairs:

    >>> sectors = pd.DataFrame({"sector": ["a", "b", "c", "d"], "sector_label": list("abcd"),
    ...                         "establishments": [10, 10, 10, 10]})
    >>> r = np.array([[1, .6, 0, 0], [.6, 1, 0, 0], [0, 0, 1, .5], [0, 0, .5, 1]])
    >>> out = derive_categories(Relatedness(sectors, {"colocation": r}))
    >>> out.mapping.to_dict()
    {'a': 'a + b', 'b': 'a + b', 'c': 'c + d', 'd': 'c + d'}
    """
    from scipy.cluster import hierarchy
    from scipy.spatial.distance import squareform

    mat = rel.matrix(measure).to_numpy(dtype=float)
    r = np.nan_to_num((mat + mat.T) / 2.0)
    np.fill_diagonal(r, 1.0)
    codes = rel.sectors["sector"].astype(str).to_numpy(dtype=object)
    est = rel.sectors[ESTABLISHMENTS].to_numpy()
    dist = np.clip(1.0 - r, 0.0, 2.0)
    np.fill_diagonal(dist, 0.0)
    tree = hierarchy.linkage(squareform(dist, checks=False), method="average")
    grid = np.round(np.arange(0.50, 0.995, 0.01), 2) if thresholds is None else thresholds
    rows, cuts = [], {}
    for t in grid:
        labels = hierarchy.fcluster(tree, float(t), criterion="distance")
        cuts[float(t)] = labels
        rows.append({"threshold": float(t), **_cut_scores(r, labels)})
    scores = pd.DataFrame(rows)
    ok = (scores["own_share"] >= min_own_share) & (scores["within"] >= min_within)
    pick = scores[ok] if ok.any() else scores.iloc[[0]]
    best = pick.sort_values(["sectors_grouped", "threshold"], ascending=[False, True]).iloc[0]
    labels = cuts[float(best["threshold"])]
    mapping, groups = {}, []
    for lab in np.unique(labels):
        members = np.flatnonzero(labels == lab)
        members = members[np.lexsort((codes[members], -est[members]))]
        names = [str(codes[m]) for m in members]
        name = " + ".join(names[:4]) + (" + …" if len(names) > 4 else "")
        for m in members:
            mapping[str(codes[m])] = name
        if len(members) > 1:
            sub = r[np.ix_(members, members)]
            within = sub[~np.eye(len(members), dtype=bool)].mean()
            groups.append({"category": name, "sectors": names, "within": float(within)})
    categories = pd.DataFrame(groups, columns=["category", "sectors", "within"])
    categories = categories.sort_values("within", ascending=False).reset_index(drop=True)
    series = pd.Series(mapping, name="category").rename_axis("sector")
    return DerivedCategories(series, categories, scores, float(best["threshold"]))
