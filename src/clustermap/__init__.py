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
import importlib.abc
import importlib.util
import sys
import warnings
from typing import TYPE_CHECKING, Any

from ._version import __version__ as __version__

# public name -> submodule that defines it
_EXPORTS: dict[str, str] = {
    # registries
    "read_registry": "io.registry",
    "Registry": "io.registry",
    # sector codes
    "roll_up": "taxonomy",
    "sector_labels": "taxonomy",
    "normalize_codes": "taxonomy",
    "cluster_categories": "taxonomy",
    "sector_types": "taxonomy",
    # spatial units and aggregation
    "read_units": "io.units",
    "units_from_registry": "units",
    "make_grid": "units",
    "assign_units": "table",
    "aggregate": "table",
    "stock_at_dates": "table",
    # graphs and spatial autocorrelation
    "build_graph": "graph",
    "local_moran": "stats.autocorrelation",
    "local_getis_ord": "stats.autocorrelation",
    "local_geary": "stats.autocorrelation",
    "global_moran": "stats.autocorrelation",
    "LocalResult": "stats.autocorrelation",
    "GlobalResult": "stats.autocorrelation",
    "adjust_pvalues": "stats.inference",
    # specialisation, scores and detection
    "location_quotient": "stats.lq",
    "read_counts": "io.counts",
    "read_count_panel": "io.counts",
    "shift_share": "stats.change",
    "cluster_trends": "detect.dynamics",
    "TrendResult": "detect.dynamics",
    "space_time_scan": "stats.spacetime",
    "strong_cluster_flags": "detect.scores",
    "star_rating": "detect.scores",
    "detect_clusters": "detect.pipeline",
    "resolve_territory": "detect.territory",
    "relatedness": "detect.relatedness",
    "derive_categories": "detect.relatedness",
    "ClusterResult": "detect.result",
    # distance-based localisation
    "k_density": "stats.distance",
    "m_function": "stats.distance",
    # maps and report
    "explore_clusters": "viz.maps",
    "explore_lq": "viz.maps",
    "explore_local": "viz.maps",
    "explore_establishments": "viz.maps",
    "write_report": "viz.report",
    # progress bars of the long steps
    "set_progress": "core.progress",
    # bundled data
    "load_demo": "datasets",
    "make_registry": "datasets",
}

_SUBMODULES = ("datasets", "errors", "taxonomy")

# modules of the flat layout of 0.1 -> their place in the layered package; importing the
# old path still works for one release, with a FutureWarning
_MOVED: dict[str, str] = {
    "aggregation": "table",
    "autocorrelation": "stats.autocorrelation",
    "detection": "detect.pipeline",
    "distance": "stats.distance",
    "inference": "stats.inference",
    "lq": "stats.lq",
    "maps": "viz.maps",
    "report": "viz.report",
    "scoring": "detect.scores",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolve ``clustermap.lq`` and the other 0.1 module paths to their new modules."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        old = fullname.removeprefix(f"{__name__}.")
        if old == fullname or old not in _MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        new = _MOVED[spec.name.removeprefix(f"{__name__}.")]
        warnings.warn(
            f"{spec.name} moved to {__name__}.{new}; import it from there (the old path "
            "goes in the next release).",
            FutureWarning,
            stacklevel=2,
        )
        return importlib.import_module(f"{__name__}.{new}")

    def exec_module(self, module: Any) -> None:
        """Nothing to run: the module is the new one, already imported."""


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.append(_MovedModules())

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
    from .datasets import load_demo, make_registry  # noqa: F401
    from .detect.pipeline import detect_clusters  # noqa: F401
    from .detect.result import ClusterResult  # noqa: F401
    from .detect.scores import star_rating, strong_cluster_flags  # noqa: F401
    from .graph import build_graph  # noqa: F401
    from .io.registry import Registry, read_registry  # noqa: F401
    from .stats.autocorrelation import (  # noqa: F401
        GlobalResult,
        LocalResult,
        global_moran,
        local_geary,
        local_getis_ord,
        local_moran,
    )
    from .stats.distance import k_density, m_function  # noqa: F401
    from .stats.inference import adjust_pvalues  # noqa: F401
    from .stats.lq import location_quotient, read_counts  # noqa: F401
    from .table import aggregate, assign_units  # noqa: F401
    from .taxonomy import (  # noqa: F401
        cluster_categories,
        normalize_codes,
        roll_up,
        sector_labels,
        sector_types,
    )
    from .units import make_grid, read_units, units_from_registry  # noqa: F401
    from .viz.maps import (  # noqa: F401
        explore_clusters,
        explore_establishments,
        explore_local,
        explore_lq,
    )
    from .viz.report import write_report  # noqa: F401
