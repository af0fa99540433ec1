"""Readers: establishment registries, spatial units and pre-aggregated counts.

Every reader validates what it reads and reports what it drops and why:

- :func:`read_registry` (module ``registry``; formats in ``presets``, file access in
  ``sources``, row checks in ``validate``) returns a :class:`Registry`;
- :func:`read_units` (module ``units``) returns polygons indexed by unit id;
- :func:`read_counts` (module ``counts``) returns :class:`CountTables` of units × sectors.

Examples
--------
>>> from clustermap import io
>>> sorted(io.SIZE_BANDS)[:3]
['00', '01', '02']
"""

from .presets import FRANCE_AREAS, REJECT_REASONS, SIZE_BANDS, size_band_employees
from .registry import ReadOptions, Registry, RegistryColumns, read_registry

__all__ = [
    "FRANCE_AREAS",
    "REJECT_REASONS",
    "SIZE_BANDS",
    "ReadOptions",
    "Registry",
    "RegistryColumns",
    "read_registry",
    "size_band_employees",
]
