"""clustermap: find Porter-style business clusters in company registries.

Load a registry (SIRENE first), aggregate establishments to spatial units, measure
specialisation (location quotients with confidence intervals) and spatial autocorrelation
(batched local Moran / Getis-Ord Gi* with permutation inference), detect and score
clusters, and export interactive maps and an HTML report.

The public names below are imported lazily (PEP 562), so ``import clustermap`` is fast and
does not compile any numba kernel.

Examples
--------
>>> import clustermap as cm
>>> "detect_clusters" in cm.__all__
True
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # registries
    "read_registry": "io",
    "Registry": "io",
    # sector codes
    "roll_up": "taxonomy",
    "sector_labels": "taxonomy",
    "normalize_codes": "taxonomy",
    # spatial units and aggregation
    "read_units": "units",
    "units_from_registry": "units",
    "make_grid": "units",
    "assign_units": "aggregation",
    "aggregate": "aggregation",
    # graphs and spatial autocorrelation
    "build_graph": "graph",
    "local_moran": "autocorrelation",
    "local_getis_ord": "autocorrelation",
    "local_geary": "autocorrelation",
    "global_moran": "autocorrelation",
    "LocalResult": "autocorrelation",
    "GlobalResult": "autocorrelation",
    "adjust_pvalues": "inference",
    # specialisation, scores and detection
    "location_quotient": "lq",
    "read_counts": "lq",
    "strong_cluster_flags": "scoring",
    "star_rating": "scoring",
    "detect_clusters": "detection",
    "ClusterResult": "_result",
    # distance-based localisation
    "k_density": "distance",
    "m_function": "distance",
    # maps and report
    "explore_clusters": "maps",
    "explore_lq": "maps",
    "explore_local": "maps",
    "explore_establishments": "maps",
    "write_report": "report",
    # bundled data
    "load_demo": "datasets",
    "make_registry": "datasets",
}

_SUBMODULES = ("datasets", "errors", "taxonomy")

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'clustermap' has no attribute {name!r}")


def __dir__() -> list[str]:
    return list(__all__)


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from . import datasets, errors, taxonomy  # noqa: F401
    from ._result import ClusterResult  # noqa: F401
    from .aggregation import aggregate, assign_units  # noqa: F401
    from .autocorrelation import (  # noqa: F401
        GlobalResult,
        LocalResult,
        global_moran,
        local_geary,
        local_getis_ord,
        local_moran,
    )
    from .datasets import load_demo, make_registry  # noqa: F401
    from .detection import detect_clusters  # noqa: F401
    from .distance import k_density, m_function  # noqa: F401
    from .graph import build_graph  # noqa: F401
    from .inference import adjust_pvalues  # noqa: F401
    from .io import Registry, read_registry  # noqa: F401
    from .lq import location_quotient, read_counts  # noqa: F401
    from .maps import (  # noqa: F401
        explore_clusters,
        explore_establishments,
        explore_local,
        explore_lq,
    )
    from .report import write_report  # noqa: F401
    from .scoring import star_rating, strong_cluster_flags  # noqa: F401
    from .taxonomy import normalize_codes, roll_up, sector_labels  # noqa: F401
    from .units import make_grid, read_units, units_from_registry  # noqa: F401
