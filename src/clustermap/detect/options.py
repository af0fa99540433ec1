"""The settings of :func:`clustermap.detect_clusters`, validated once and frozen."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

__all__ = ["DetectionOptions"]

#: old keyword of detect_clusters -> its place in DetectionOptions
LEGACY = {
    name: f"options.{name}"
    for name in (
        "min_unit_lq",
        "grow_alpha",
        "link_order",
        "min_establishments",
        "region_alpha",
        "conf_level",
        "gi_alpha",
        "local_sectors",
        "permutations",
        "exclude_artefacts",
        "score_units",
        "nomenclature",
    )
}


@dataclass(frozen=True)
class DetectionOptions:
    """Calibration of the cluster detection beyond its everyday arguments.

    Every field is checked when the object is made, so a wrong value fails before any work.
    ``detect_clusters(..., options={"link_order": 1})`` builds one from a dict.

    Attributes
    ----------
    min_unit_lq : float, default 1.5
        LQ floor of a specialised unit: a unit never joins a cluster just for being next to
        one. 1.5 and 2 find the same planted clusters of the bundled data; the floor stops
        regions from spreading over unspecialised neighbours.
    grow_alpha : float, optional
        Uncorrected window p-value under which a specialised unit joins a seed's region;
        default the detection's ``alpha``.
    link_order : {1, 2}, default 2
        Link candidate units that are neighbours (1), or neighbours or neighbours of a common
        unit (2: a scattered cluster with empty communes between its establishments forms
        one region).
    min_establishments : int, default 10
        Minimum establishments of the sector in a cluster region (critical mass).
    region_alpha : float, optional
        Level of the region's exact Poisson test; default ``alpha`` divided by the number of
        sectors analysed (Bonferroni across sectors).
    conf_level : float, default 0.95
        Coverage of the LQ intervals.
    gi_alpha : float, optional
        When set, candidate units also need a Gi* permutation p-value ``<= gi_alpha``.
    local_sectors : {"clusters", "all"}, default "clusters"
        Sectors whose Gi* is added to the table: those with clusters, or every analysed one.
    permutations : int, default 999
        Permutations of the Gi* inference.
    exclude_artefacts : bool, default False
        Skip head offices, holdings and temporary-work sectors instead of flagging them.
    score_units : "auto", geopandas.GeoDataFrame, pandas.Series or None, default "auto"
        Comparison zoning of the strong-cluster percentiles and the stars (see
        :func:`clustermap.detect_clusters`).
    nomenclature : str, default "naf"
        Nomenclature of the codes (``"naf"``, ``"nace"``, ``"naics"``, ``"prefix"``).
    dispersion : "estimate", "poisson", float, mapping or pandas.Series, default "estimate"
        Extra-Poisson dispersion ``alpha`` of the counts (variance ``E + alpha E²``):
        ``"estimate"`` measures it per sector on the data
        (:func:`~clustermap.stats.dispersion.estimate_dispersion`), ``"poisson"`` assumes
        none (the test of clustermap 0.1), a number applies it to every sector, a mapping
        gives it per sector.
    sector_types : "auto", "data", mapping, pandas.Series or None, default "auto"
        Traded / local type of each sector, which orders the clusters (traded first).
        ``"auto"``: the shipped cluster categories for NAF codes and categories
        (:func:`clustermap.sector_types`), the data for other codes; ``"data"``: always the
        data (a sector is traded when its establishments are spread across the comparison
        zoning unlike all activity, docs/methods.md); a mapping: your own types
        (``"traded"`` / ``"local"``) per sector; ``None``: no types, one list.
    exposure : str, pandas.Series or None, default None
        What expected counts are proportional to, per unit. ``None``: all the unit's
        establishments (a unit's LQ compares it with its own activity). A column of the units
        (``"population"``) or a Series (unit id -> value): expected counts proportional to it,
        so a one-sector file can still be tested for concentration ("bars per inhabitant").

    Examples
    --------
    >>> DetectionOptions(link_order=1).link_order
    1
    >>> DetectionOptions(link_order=3)
    Traceback (most recent call last):
    ...
    ValueError: link_order must be 1 or 2; got 3.
    """

    min_unit_lq: float = 1.5
    grow_alpha: float | None = None
    link_order: int = 2
    min_establishments: int = 10
    region_alpha: float | None = None
    conf_level: float = 0.95
    gi_alpha: float | None = None
    local_sectors: str = "clusters"
    permutations: int = 999
    exclude_artefacts: bool = False
    score_units: Any = "auto"
    nomenclature: str = "naf"
    dispersion: Any = "estimate"
    sector_types: Any = "auto"
    exposure: Any = None

    def __post_init__(self) -> None:
        d = self.dispersion
        if isinstance(d, str):
            if d not in ("estimate", "poisson"):
                raise ValueError(
                    "dispersion must be 'estimate', 'poisson', a number >= 0 or a mapping of "
                    f"sectors to numbers; got {d!r}."
                )
        elif isinstance(d, int | float) and not isinstance(d, bool):
            if not d >= 0:
                raise ValueError(f"dispersion must be >= 0; got {d!r}.")
        elif not hasattr(d, "items"):
            raise ValueError(
                "dispersion must be 'estimate', 'poisson', a number >= 0 or a mapping of "
                f"sectors to numbers; got {type(d).__name__}."
            )
        t = self.sector_types
        if isinstance(t, str) and t not in ("auto", "data"):
            raise ValueError(
                "sector_types must be 'auto', 'data', None or a mapping of sectors to "
                f"'traded' / 'local'; got {t!r}."
            )
        if t is not None and not isinstance(t, str) and not hasattr(t, "items"):
            raise ValueError(
                "sector_types must be 'auto', 'data', None or a mapping of sectors to "
                f"'traded' / 'local'; got {type(t).__name__}."
            )
        if hasattr(t, "items"):
            bad = {str(v) for _, v in t.items()} - {"traded", "local"}
            if bad:
                raise ValueError(
                    f"sector_types values must be 'traded' or 'local'; got {sorted(bad)[:5]}."
                )
        if self.link_order not in (1, 2):
            raise ValueError(f"link_order must be 1 or 2; got {self.link_order!r}.")
        if self.local_sectors not in ("clusters", "all"):
            raise ValueError(
                f"local_sectors must be 'clusters' or 'all'; {self.local_sectors!r} was given."
            )
        for name in ("grow_alpha", "region_alpha", "gi_alpha"):
            value = getattr(self, name)
            if value is not None and not 0 < value <= 1:
                raise ValueError(f"{name} must be in (0, 1]; got {value!r}.")
        if not 0 < self.conf_level < 1:
            raise ValueError(f"conf_level must be in (0, 1); got {self.conf_level!r}.")
        if int(self.permutations) != self.permutations or self.permutations < 1:
            raise ValueError(f"permutations must be a positive integer; got {self.permutations!r}.")

    def as_dict(self) -> dict[str, Any]:
        """The fields as a dict (``score_units`` given as polygons or a Series shows its type)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("score_units", "dispersion", "sector_types", "exposure"):
            value = getattr(self, name)
            if not isinstance(value, str | int | float | type(None)):
                out[name] = type(value).__name__
        return out
