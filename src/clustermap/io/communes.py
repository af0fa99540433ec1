"""French commune codes of any vintage, mapped to the communes of the 2018 polygons.

Commune codes move: communes merge into *communes nouvelles* every year, and SIRENE and
URSSAF count Paris, Lyon and Marseille by municipal arrondissement (75101, 69381, 13201)
where the polygons have one commune each (75056, 69123, 13055). Counts keyed by such codes
would miss their polygon and be dropped. :func:`harmonise_communes` maps every code the
Code officiel géographique knows to a commune of the 2018 polygons, and says how
(``same``, ``arrondissement``, ``merged``, ``new_commune``, or ``unknown``).

The table (``data/commune_codes_2018.csv.gz``) is built by ``datasets/build_commune_codes.py``
from the current COG (INSEE, as packaged by Etalab in ``@etalab/decoupage-administratif``)
and the list of the 2018 communes (IGN Admin Express COG 2018).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["COMMUNE_CODE", "HOW", "harmonise_communes", "looks_like_communes"]

#: an INSEE commune code (Corsica: 2A / 2B)
COMMUNE_CODE = r"^(?:\d{5}|2[AB]\d{3})$"

_TABLE = Path(__file__).resolve().parent.parent / "data" / "commune_codes_2018.csv.gz"

#: how a code reached its 2018 commune, in words
HOW = {
    "same": "a commune of 2018",
    "arrondissement": "a municipal arrondissement: its city",
    "merged": "a commune absorbed into a commune nouvelle: the commune that absorbed it",
    "new_commune": "a commune created after 2018: one of the communes it absorbed",
    "unknown": "a code the Code officiel géographique does not know",
}


@lru_cache(maxsize=1)
def _table() -> pd.DataFrame:
    return pd.read_csv(_TABLE, dtype=str, keep_default_na=False).set_index("code")


def looks_like_communes(ids: Any) -> bool:
    """True when 95 % or more of ``ids`` are INSEE commune codes.

    Examples
    --------
    >>> looks_like_communes(["01001", "2A004", "75056"]), looks_like_communes(["a", "b"])
    (True, False)
    """
    ids = pd.Index(list(ids)).astype(str)
    return bool(len(ids)) and float(ids.str.match(COMMUNE_CODE).mean()) >= 0.95


def _clean(code: Any) -> str:
    text = "" if code is None else str(code).strip().upper()
    return text.zfill(5) if text.isdigit() and len(text) == 4 else text


def harmonise_communes(codes: Any, *, vintage: int = 2018) -> pd.DataFrame:
    """Map commune codes of any vintage to the communes of the 2018 polygons.

    Parameters
    ----------
    codes : array-like of str
        INSEE commune codes (``"01001"``, ``"2A004"``; a leading zero lost by a spreadsheet,
        ``"1001"``, is restored).
    vintage : int, default 2018
        The vintage of the polygons; only 2018 is shipped.

    Returns
    -------
    pandas.DataFrame
        Same index as ``codes``: ``code`` (as given), ``commune`` (the 2018 commune, ``<NA>``
        when unknown) and ``how`` (see :data:`HOW`).

    Examples
    --------
    >>> out = harmonise_communes(["75108", "13201", "01001", "1001", "99999"])
    >>> out["commune"].tolist()
    ['75056', '13055', '01001', '01001', <NA>]
    >>> out["how"].tolist()
    ['arrondissement', 'arrondissement', 'same', 'same', 'unknown']
    """
    if vintage != 2018:
        raise ValueError(
            f"Only the 2018 commune polygons are supported (vintage=2018); got {vintage!r}."
        )
    series = codes if isinstance(codes, pd.Series) else pd.Series(list(codes))
    uniq = pd.Index(pd.unique(series.astype(object)))
    clean = [_clean(c) for c in uniq]
    table = _table()
    hit = table.reindex(clean)
    known = hit["code_2018"].notna().to_numpy()
    per_code = pd.DataFrame(
        {
            "commune": pd.array(
                [t if k else pd.NA for t, k in zip(hit["code_2018"], known)], dtype="string"
            ),
            "how": [h if k else "unknown" for h, k in zip(hit["how"], known)],
        },
        index=uniq,
    )
    out = per_code.reindex(series.astype(object).to_numpy())
    out.index = series.index
    out.insert(0, "code", series.to_numpy())
    return out
