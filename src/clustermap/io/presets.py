"""Registry formats: SIRENE column presets, size bands, expected areas, reject reasons."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core import schema as S

__all__ = [
    "FRANCE_AREAS",
    "REJECT_REASONS",
    "SIRENE_COLUMNS",
    "SIRENE_CONTACT",
    "SIZE_BANDS",
    "size_band_employees",
]

#: Reject reasons, in the order they are tested (a row gets the first that applies).
REJECT_REASONS = (
    S.REASON_CLOSED,
    S.REASON_MISSING_COORDINATES,
    S.REASON_SWAPPED,
    S.REASON_OUT_OF_BOUNDS,
    S.REASON_OTHER_NOMENCLATURE,
    S.REASON_INVALID_SECTOR,
    S.REASON_DUPLICATED,
)

#: SIRENE size bands: code -> (lowest, highest head-count); ``53`` is open (see
#: ``open_band_cap``). Source: INSEE, ``trancheEffectifsEtablissement``.
SIZE_BANDS: dict[str, tuple[float, float]] = {
    "NN": (0, 0),
    "00": (0, 0),
    "01": (1, 2),
    "02": (3, 5),
    "03": (6, 9),
    "11": (10, 19),
    "12": (20, 49),
    "21": (50, 99),
    "22": (100, 199),
    "31": (200, 249),
    "32": (250, 499),
    "41": (500, 999),
    "42": (1000, 1999),
    "51": (2000, 4999),
    "52": (5000, 9999),
    "53": (10000, np.inf),
}

#: Expected area of SIRENE points: France including the DOM, lon/lat boxes
#: (west, south, east, north) with a margin of about 10 km.
FRANCE_AREAS: dict[str, tuple[float, float, float, float]] = {
    "France métropolitaine et Corse": (-5.8, 41.2, 10.0, 51.3),
    "Guadeloupe, Saint-Martin, Saint-Barthélemy": (-63.3, 15.7, -60.8, 18.2),
    "Martinique": (-61.4, 14.3, -60.7, 15.0),
    "Guyane": (-54.7, 2.0, -51.5, 6.0),
    "La Réunion": (55.1, -21.5, 55.9, -20.8),
    "Mayotte": (44.9, -13.1, 45.4, -12.5),
    "Saint-Pierre-et-Miquelon": (-56.6, 46.7, -56.0, 47.2),
}

#: The columns of the SIRENE establishment files (geolocated file and stock) by role.
SIRENE_COLUMNS: dict[str, Any] = {
    "id": "siret",
    "sector": "activitePrincipaleEtablissement",
    "nomenclature_column": "nomenclatureActivitePrincipaleEtablissement",
    "size_band": "trancheEffectifsEtablissement",
    "state": "etatAdministratifEtablissement",
    "commune": "codeCommuneEtablissement",
    "name": ["denominationUsuelleEtablissement", "enseigne1Etablissement"],
}

#: SIRENE columns carried into the establishments when the file has them: the diffusion
#: status (statistical secrecy: only ``O`` rows are named in firm lists) and the address
SIRENE_CONTACT = (
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",  # with dateDebut and the state: the stock at any date
    "dateDebut",
    "etatAdministratifEtablissement",
    "numeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
)

_PRESETS: dict[str, dict[str, Any]] = {
    "sirene": {**SIRENE_COLUMNS, "x": "longitude", "y": "latitude", "crs": 4326},
    "sirene_stock": {
        **SIRENE_COLUMNS,
        "x": "coordonneeLambertAbscisseEtablissement",
        "y": "coordonneeLambertOrdonneeEtablissement",
        "crs": None,  # per row, from the commune or the geolocation file
    },
    "sirene2016": {
        "id": "siret",
        "sector": "apet700",
        "size_band": "tefet",
        "commune": "depcomet",
        "name": ["enseigne", "nomen_long"],
        "x": "longitude",
        "y": "latitude",
        "crs": 4326,
    },
}
# columns of a preset that must be in the file (the others are used when present)
_PRESET_REQUIRED = {"id", "sector"}

# DOM projections used by INSEE for the SIRENE coordinates, by commune-code prefix
_DOM_EPSG = {
    "971": 5490,
    "972": 5490,
    "977": 5490,
    "978": 5490,
    "973": 2972,
    "974": 2975,
    "975": 4467,
    "976": 4471,
}
_METRO_EPSG = 2154
_CANONICAL_LENGTH = {"subclass": 6, "class": 5, "group": 4, "division": 2, "section": 1}

_CSV_SUFFIXES = {".csv", ".txt", ".tsv", ".dat"}
_COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zst": "zstd", ".lz4": "lz4"}
_PARQUET_SUFFIXES = {".parquet", ".pq", ".geoparquet"}


# =========================================================================== employees


def size_band_employees(
    bands: Any, rule: str = "mid", open_band_cap: float = 20000
) -> pd.DataFrame:
    """Turn SIRENE size-band codes into head-counts.

    Parameters
    ----------
    bands : array-like of str
        Codes of :data:`SIZE_BANDS` (``"NN"``, ``"00"``, ``"01"``…``"53"``); a one-digit
        code (``"1"``) is read as ``"01"``, spaces are ignored.
    rule : {"mid", "low", "high"}, default "mid"
        Head-count used for ``employees``: band midpoint, lower or upper bound.
    open_band_cap : float, default 20000
        Upper bound used for the open band ``53`` (10 000 or more).

    Returns
    -------
    pandas.DataFrame
        Columns ``size_band`` (normalised code, missing when empty), ``employees``,
        ``employees_low``, ``employees_high`` (0 for ``NN``, ``00``, empty and unknown
        codes) and ``band_status`` (``"ok"``, ``"missing"`` or ``"unknown"``).

    Examples
    --------
    >>> from clustermap.io import size_band_employees
    >>> size_band_employees(["01", "12", "53", "NN", ""])["employees"].tolist()
    [1.5, 34.5, 15000.0, 0.0, 0.0]
    >>> size_band_employees(["03"], rule="high")[["employees_low", "employees_high"]].values
    array([[6., 9.]])
    """
    if rule not in ("mid", "low", "high"):
        raise ValueError(f"'employee_rule' needs to be 'mid', 'low' or 'high'; got {rule!r}.")
    series = bands if isinstance(bands, pd.Series) else pd.Series(list(bands), dtype=object)
    raw = series.to_numpy(dtype=object, na_value=None)
    codes, uniques = pd.factorize(raw, use_na_sentinel=True)
    norm, low, high, status = [], [], [], []
    for value in uniques:
        text = str(value).strip().upper()
        if text.isdigit() and len(text) == 1:
            text = "0" + text
        if text == "":
            norm.append(None), low.append(0.0), high.append(0.0), status.append("missing")
        elif text in SIZE_BANDS:
            lo, hi = SIZE_BANDS[text]
            norm.append(text), low.append(float(lo))
            high.append(float(open_band_cap if np.isinf(hi) else hi)), status.append("ok")
        else:
            norm.append(text), low.append(0.0), high.append(0.0), status.append("unknown")
    norm.append(None), low.append(0.0), high.append(0.0), status.append("missing")
    low_a = np.asarray(low)[codes]
    high_a = np.asarray(high)[codes]
    mid = (low_a + high_a) / 2
    employees = {"mid": mid, "low": low_a, "high": high_a}[rule]
    return pd.DataFrame(
        {
            S.SIZE_BAND: pd.array(np.asarray(norm, dtype=object)[codes], dtype="string"),
            S.EMPLOYEES: employees,
            S.EMPLOYEES_LOW: low_a,
            S.EMPLOYEES_HIGH: high_a,
            "band_status": np.asarray(status, dtype=object)[codes],
        },
        index=series.index,
    )
