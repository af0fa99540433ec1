"""Column names shared across the library (one name per concept).

Maps, reports and detection read these constants instead of string literals.
"""

from __future__ import annotations

# Registry establishments
ESTABLISHMENT_ID = "establishment_id"
SECTOR = "sector"
EMPLOYEES = "employees"
EMPLOYEES_LOW = "employees_low"
EMPLOYEES_HIGH = "employees_high"
SIZE_BAND = "size_band"
NAME = "name"
COMMUNE = "commune"
GEOMETRY = "geometry"

# Rejects
ROW = "row"
REASON = "reason"
DETAIL = "detail"

# Units
UNIT_ID = "unit_id"
UNIT_NAME = "name"

# Measures
ESTABLISHMENTS = "establishments"
LQ = "lq"
LQ_LOW = "lq_low"
LQ_HIGH = "lq_high"
P_VALUE = "p_value"
STATISTIC = "statistic"
LABEL = "label"
QUADRANT = "quadrant"
CLUSTER_ID = "cluster_id"

# Reject reasons (named, documented in clustermap.io)
REASON_MISSING_COORDINATES = "missing_coordinates"
REASON_OUT_OF_BOUNDS = "coordinates_out_of_bounds"
REASON_SWAPPED = "swapped_lat_lon"
REPAIR_COMMUNE_ZERO = "zero_stripped_commune"
REASON_INVALID_SECTOR = "invalid_sector_code"
REASON_OTHER_NOMENCLATURE = "other_nomenclature"
REASON_DUPLICATED = "duplicated_id"
REASON_CLOSED = "closed_establishments"
REASON_OUTSIDE_UNITS = "outside_units"
REASON_UNMAPPED_SECTOR = "unmapped_sector"
