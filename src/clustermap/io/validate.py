"""Row validation of registries: columns, coordinates, codes, repairs and rejects."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer

from ..core import schema as S
from ..errors import SchemaError
from ..taxonomy import canonical_level, is_valid, normalize_codes
from .presets import (
    _CANONICAL_LENGTH,
    _DOM_EPSG,
    _METRO_EPSG,
    _PRESET_REQUIRED,
    _PRESETS,
    FRANCE_AREAS,
    SIRENE_COLUMNS,
    size_band_employees,
)
from .sources import _open_source

# =========================================================================== mapping


def _detect_format(columns: Sequence[str], geolocation: Any) -> str | None:
    cols = set(columns)
    if SIRENE_COLUMNS["sector"] in cols:
        if geolocation is not None:
            return "sirene_stock"
        if {"longitude", "latitude"} <= cols:
            return "sirene"
        return "sirene_stock"
    if "apet700" in cols:
        return "sirene2016"
    return None


def _resolve_columns(
    columns: list[str],
    source_name: str,
    fmt: str | None,
    given: dict[str, Any],
    has_geometry: bool,
    geolocation: Any,
) -> dict[str, Any]:
    """Return {key: source column(s)} for the keys present, raising SchemaError if needed."""
    available = set(columns)
    preset = dict(_PRESETS.get(fmt or "", {}))
    spec: dict[str, Any] = {}
    for key, col in preset.items():
        if key == "crs" or given.get(key) is not None:
            continue
        if isinstance(col, list):
            present = [c for c in col if c in available]
            if present:
                spec[key] = present
        elif col in available:
            spec[key] = col
        elif key in _PRESET_REQUIRED:
            raise SchemaError(
                f"{source_name}: column {col!r} of the {fmt!r} format is missing. Columns "
                f"found: {_list_columns(columns)}. Pass the right one with {key}=..., or "
                "format=None and name every column with keywords."
            )
    for key, col in given.items():
        if col is None:
            continue
        cols = list(col) if isinstance(col, (list, tuple)) else [col]
        missing = [c for c in cols if c not in available]
        if missing:
            raise SchemaError(
                f"{source_name}: column {missing[0]!r} given as {key}= is not in the data. "
                f"Columns found: {_list_columns(columns)}. Pass the right name, "
                f"e.g. {key}={_closest(missing[0], columns)!r}."
            )
        spec[key] = cols if key == "name" else cols[0]
    if "sector" not in spec:
        raise SchemaError(
            f"{source_name}: no sector column. Columns found: {_list_columns(columns)}. "
            "The layout is not one of the SIRENE presets ('sirene', 'sirene_stock', "
            "'sirene2016'); name the columns with keywords, e.g. "
            "read_registry(path, sector='naf', x='lon', y='lat', crs=4326, id='siret')."
        )
    has_xy = "x" in spec and "y" in spec
    if not has_xy and not has_geometry and geolocation is None:
        which = [k for k in ("x", "y") if k not in spec]
        hint = (
            " For the INSEE stock, pass the geolocation file: "
            "read_registry(stock, format='sirene_stock', geolocation=geo_file)."
            if fmt == "sirene_stock"
            else ""
        )
        raise SchemaError(
            f"{source_name}: no coordinate column for {' and '.join(which)}. Columns found: "
            f"{_list_columns(columns)}. Pass x= and y= (and crs=), or a GeoDataFrame.{hint}"
        )
    if (given.get("x") is None) != (given.get("y") is None):
        raise SchemaError("Pass both x= and y= (the columns of the two coordinates), not one.")
    return spec


def _list_columns(columns: Sequence[str], limit: int = 40) -> str:
    shown = ", ".join(repr(c) for c in list(columns)[:limit])
    more = f", ... ({len(columns) - limit} more)" if len(columns) > limit else ""
    return f"[{shown}{more}]"


def _closest(name: str, columns: Sequence[str]) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.0)
    return match[0] if match else name


# =========================================================================== geometry checks


@lru_cache(maxsize=32)
def _to_lonlat(crs: CRS) -> Transformer | None:
    if crs.is_geographic and crs.to_epsg() in (4326, 4171, 4258, 4269, 4230, 4275, 4807):
        return None
    return Transformer.from_crs(crs, CRS(4326), always_xy=True)


@lru_cache(maxsize=32)
def _transformer(src: CRS, dst: CRS) -> Transformer:
    return Transformer.from_crs(src, dst, always_xy=True)


def _lonlat(x: np.ndarray, y: np.ndarray, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    transformer = _to_lonlat(crs)
    if transformer is None:
        return x, y
    lon, lat = transformer.transform(x, y, errcheck=False)
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    lon[bad] = np.nan
    lat[bad] = np.nan
    return lon, lat


def _inside(lon: np.ndarray, lat: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    inside = np.zeros(len(lon), dtype=bool)
    for west, south, east, north in boxes:
        if west <= east:
            in_lon = (lon >= west) & (lon <= east)
        else:  # crosses the antimeridian
            in_lon = (lon >= west) | (lon <= east)
        inside |= in_lon & (lat >= south) & (lat <= north)
    return inside


def _expected_boxes(bounds: Any, fmt: str | None, crs: CRS | None) -> tuple[np.ndarray, str]:
    if isinstance(bounds, str):
        if bounds.lower() != "france":
            raise ValueError(
                "'bounds' needs to be 'france', a (west, south, east, north) box in degrees, "
                f"or a list of such boxes; {bounds!r} was given."
            )
        bounds = None
        fmt = "sirene"
    if bounds is not None:
        boxes = np.asarray(bounds, dtype=float)
        if boxes.ndim == 1:
            boxes = boxes[None, :]
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise ValueError(
                "'bounds' needs to be a (west, south, east, north) box in degrees or a list "
                f"of such boxes; got an array of shape {boxes.shape}."
            )
        return boxes, "the bounds= boxes"
    if fmt in _PRESETS:
        return np.asarray(list(FRANCE_AREAS.values())), "France incl. DOM"
    area = crs.area_of_use if crs is not None else None
    if area is None:
        return np.asarray([(-180.0, -90.0, 180.0, 90.0)]), "the world (CRS without area of use)"
    return (
        np.asarray([(area.west, area.south, area.east, area.north)]),
        f"the area of use of {_crs_name(crs)} ({area.name})",
    )


# =========================================================================== chunk processing


@dataclass
class _Context:
    spec: dict[str, Any]
    fmt: str | None
    nomenclature: str
    sector_level: str | int | None
    include_closed: bool
    swapped: str
    employee_rule: str
    open_band_cap: float
    keep: list[str]
    crs: CRS | None  # uniform source CRS (None: per row, see epsg)
    boxes: np.ndarray
    area_text: str
    per_row_epsg: str | None = None  # "commune" or "geolocation"
    geo_index: pd.Index | None = None
    geo_xy: np.ndarray | None = None
    geo_epsg: np.ndarray | None = None
    uses_geometry: bool = False


def _text(values: pd.Series) -> pd.Series:
    """Column as strings with missing values (codes keep their leading zeros)."""
    out = values
    if pd.api.types.is_float_dtype(values.dtype):
        v = values.to_numpy(dtype=float, na_value=np.nan)
        with np.errstate(invalid="ignore"):
            # whole numbers that int64 holds are written without ".0" (codes read as
            # floats); inf, 1e19 and decimals stay as they print, and are rejected later
            integral = np.isfinite(v) & (np.abs(v) < 2.0**63) & (v == np.round(v))
        out = values.astype("string")
        if integral.any():
            whole = pd.Series(v[integral].astype(np.int64), dtype="Int64").astype("string")
            out = out.copy()
            out.iloc[np.flatnonzero(integral)] = whole.to_numpy()
    out = out.astype("string")
    out = out.str.strip()
    return out.mask(out == "")


def _numbers(values: pd.Series) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype):
        return values.to_numpy(dtype=float, na_value=np.nan)
    text = values.astype("string").str.strip()
    try:
        return text.astype("Float64").to_numpy(dtype=float, na_value=np.nan)
    except (TypeError, ValueError):
        return pd.to_numeric(text.str.replace(",", ".", regex=False), errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )


class _Flags:
    """The first reason (and its detail) of each row of a chunk; ``free``: no reason yet."""

    def __init__(self, n: int) -> None:
        self.reason = np.full(n, None, dtype=object)
        self.detail = np.full(n, None, dtype=object)
        self.free = np.ones(n, dtype=bool)

    def flag(self, mask: np.ndarray, why: str, text: Any) -> None:
        mask = mask & self.free
        if mask.any():
            self.free[mask] = False
            self.reason[mask] = why
            self.detail[mask] = text(mask) if callable(text) else text


def _process_chunk(
    chunk: pd.DataFrame, offset: int, ctx: _Context
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Validate one chunk. Returns (kept, rejects, repairs, id hashes of every row).

    The reasons are tested in the order of :data:`REJECT_REASONS`: a row gets the first
    that applies.
    """
    spec = ctx.spec
    n = len(chunk)
    rows = np.arange(offset + 1, offset + n + 1, dtype=np.int64)
    flags = _Flags(n)
    if "commune" in spec:
        commune, commune_fixed = _commune_codes(_text(chunk[spec["commune"]]))
    else:
        commune = pd.Series([None] * n, dtype="string")
        commune_fixed = np.zeros(n, dtype=bool)
    ids = _text(chunk[spec["id"]]) if "id" in spec else pd.Series(rows.astype(str), dtype="string")
    ids_filled = ids.fillna("")
    id_hash = pd.util.hash_pandas_object(ids_filled, index=False).to_numpy()
    id_hash = np.where(ids.isna().to_numpy(), np.uint64(0), id_hash)

    if "state" in spec and not ctx.include_closed:  # 1. closed
        state = _text(chunk[spec["state"]]).str.upper()
        closed = (state == "F").fillna(False).to_numpy(dtype=bool)
        flags.flag(closed, S.REASON_CLOSED, f"{spec['state']} = F (closed)")
    x, y, epsg = _check_coordinates(chunk, ctx, ids_filled, commune, flags)  # 2.
    swapped_fix = _check_area(x, y, epsg, ctx, flags)  # 3.
    _check_nomenclature(chunk, ctx, flags)  # 4.
    sector = _check_sectors(chunk, ctx, flags)  # 5.

    keep_mask = flags.free
    kept = _kept_frame(chunk, ctx, rows, keep_mask, ids_filled, sector, commune)
    xk, yk = x[keep_mask].copy(), y[keep_mask].copy()
    fix_k = swapped_fix[keep_mask]
    xk[fix_k], yk[fix_k] = y[keep_mask][fix_k], x[keep_mask][fix_k]
    kept["_x"] = xk
    kept["_y"] = yk
    if epsg is not None:
        kept["_epsg"] = np.asarray(epsg)[keep_mask]
    rej_mask = ~keep_mask
    rejects = pd.DataFrame(
        {
            S.ROW: rows[rej_mask],
            S.ESTABLISHMENT_ID: ids[rej_mask].array,
            S.REASON: flags.reason[rej_mask],
            S.DETAIL: flags.detail[rej_mask],
        }
    )
    repairs = _repairs_frame(
        rows, ids_filled, x, y, swapped_fix & keep_mask, commune, commune_fixed & keep_mask
    )
    return kept, rejects, repairs, id_hash


def _check_coordinates(chunk, ctx, ids_filled, commune, flags) -> tuple:
    """Reason 2: missing coordinates. Returns x, y and the per-row EPSG (or None)."""
    spec = ctx.spec
    epsg = None
    if ctx.uses_geometry:
        x = chunk["__geom_x"].to_numpy(dtype=float)
        y = chunk["__geom_y"].to_numpy(dtype=float)
        missing_text: Any = "empty geometry"
    elif ctx.per_row_epsg == "geolocation":
        pos = ctx.geo_index.get_indexer(ids_filled)  # type: ignore[union-attr]
        found = pos >= 0
        x = np.where(found, ctx.geo_xy[pos, 0], np.nan)  # type: ignore[index]
        y = np.where(found, ctx.geo_xy[pos, 1], np.nan)  # type: ignore[index]
        epsg = np.where(found, ctx.geo_epsg[pos], 0)  # type: ignore[index]
        flags.flag(
            ~found, S.REASON_MISSING_COORDINATES, "no row for this siret in the geolocation file"
        )
        missing_text = "empty x or y in the geolocation file"
    else:
        x = _numbers(chunk[spec["x"]])
        y = _numbers(chunk[spec["y"]])
        x_col, y_col = chunk[spec["x"]], chunk[spec["y"]]

        def missing_text(mask: np.ndarray) -> np.ndarray:
            xs = x_col.to_numpy(dtype=object, na_value=None)[mask]
            ys = y_col.to_numpy(dtype=object, na_value=None)[mask]
            out = []
            for a, b in zip(xs, ys):
                if (a is None or str(a).strip() == "") and (b is None or str(b).strip() == ""):
                    out.append(f"{spec['x']} and {spec['y']} empty")
                else:
                    out.append(f"{spec['x']}={a!r}, {spec['y']}={b!r}: not numbers")
            return np.asarray(out, dtype=object)

        if ctx.per_row_epsg == "commune":
            epsg = _epsg_from_commune(commune)
    missing = ~(np.isfinite(x) & np.isfinite(y))
    flags.flag(missing, S.REASON_MISSING_COORDINATES, missing_text)
    return x, y, epsg


def _check_area(x, y, epsg, ctx, flags) -> np.ndarray:
    """Reasons 3: outside the expected area, or swapped. Returns the rows to exchange."""
    n = len(x)
    swapped_fix = np.zeros(n, dtype=bool)
    has_xy = np.isfinite(x) & np.isfinite(y)
    if not has_xy.any():
        return swapped_fix
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    lon_s, lat_s = np.full(n, np.nan), np.full(n, np.nan)
    for crs, sel in _crs_groups(ctx.crs, epsg, has_xy):
        lon[sel], lat[sel] = _lonlat(x[sel], y[sel], crs)
        lon_s[sel], lat_s[sel] = _lonlat(y[sel], x[sel], crs)
    outside = has_xy & ~_inside(lon, lat, ctx.boxes)
    if not outside.any():
        return swapped_fix
    inside_swapped = outside & _inside(lon_s, lat_s, ctx.boxes)

    def coords_text(mask: np.ndarray) -> np.ndarray:
        return np.asarray([f"({a:.6g}, {b:.6g})" for a, b in zip(x[mask], y[mask])], dtype=object)

    if ctx.swapped == "reject":
        flags.flag(
            inside_swapped,
            S.REASON_SWAPPED,
            lambda m: coords_text(m) + " inside " + ctx.area_text + " once exchanged",
        )
    else:
        swapped_fix = inside_swapped & flags.free
    flags.flag(
        outside & ~inside_swapped,
        S.REASON_OUT_OF_BOUNDS,
        lambda m: coords_text(m) + " outside " + ctx.area_text,
    )
    return swapped_fix


def _check_nomenclature(chunk, ctx, flags) -> None:
    """Reason 4: a SIRENE row whose codes are not NAF rév. 2."""
    spec = ctx.spec
    if "nomenclature_column" not in spec or ctx.nomenclature != "naf":
        return
    version = _text(chunk[spec["nomenclature_column"]])
    other = (version.notna() & (version.str.upper() != "NAFREV2")).to_numpy(dtype=bool)
    if other.any():
        values = version.to_numpy(dtype=object, na_value=None)
        flags.flag(
            other,
            S.REASON_OTHER_NOMENCLATURE,
            lambda m: np.asarray(
                [f"{spec['nomenclature_column']} = {v!r}, not NAFRev2" for v in values[m]],
                dtype=object,
            ),
        )


def _check_sectors(chunk, ctx, flags) -> pd.Series:
    """Reason 5: codes that are not codes of the nomenclature at the expected level."""
    raw_sector = chunk[ctx.spec["sector"]]
    sector = normalize_codes(_text(raw_sector), nomenclature=ctx.nomenclature)
    if ctx.sector_level is not None:
        # canonical codes have one length per level (25.62A: 6, 25.62: 5, 25.6: 4, 25: 2, C: 1)
        level = canonical_level(ctx.sector_level, ctx.nomenclature)
        length = _CANONICAL_LENGTH.get(level, level)  # type: ignore[call-overload]
        good = (sector.str.len() == length).fillna(False).to_numpy(dtype=bool)
    else:
        good = sector.notna().to_numpy(dtype=bool)
    if (~good).any():
        raw_values = raw_sector.to_numpy(dtype=object, na_value=None)
        flags.flag(~good, S.REASON_INVALID_SECTOR, lambda m: _sector_detail(raw_values[m], ctx))
    return sector


def _kept_frame(chunk, ctx, rows, keep_mask, ids_filled, sector, commune) -> pd.DataFrame:
    # string columns stay arrow-backed (no Python object per row: bounded memory)
    kept = pd.DataFrame(
        {
            "_pos": rows[keep_mask] - 1,
            S.ESTABLISHMENT_ID: ids_filled[keep_mask].array,
            S.SECTOR: sector[keep_mask].array,
        }
    )
    _add_employees(kept, chunk, keep_mask, ctx)
    kept[S.NAME] = _names(chunk, keep_mask, ctx.spec)
    if "commune" in ctx.spec:
        kept[S.COMMUNE] = commune[keep_mask].array
    else:
        kept[S.COMMUNE] = pd.array([pd.NA] * int(keep_mask.sum()), dtype="string")
    for col in ctx.keep:
        kept[col] = chunk[col][keep_mask].array
    return kept


def _repairs_frame(rows, ids_filled, x, y, fixed, commune, zero) -> pd.DataFrame:
    """Rows kept after a repair: exchanged coordinates, completed commune codes."""
    repairs = pd.DataFrame(
        {
            S.ROW: rows[fixed],
            S.ESTABLISHMENT_ID: ids_filled[fixed].to_numpy(dtype=object),
            S.REASON: S.REASON_SWAPPED,
            S.DETAIL: [
                f"({a:.6g}, {b:.6g}) exchanged to ({b:.6g}, {a:.6g})"
                for a, b in zip(x[fixed], y[fixed])
            ],
        }
    )
    if not zero.any():
        return repairs
    completed = pd.DataFrame(
        {
            S.ROW: rows[zero],
            S.ESTABLISHMENT_ID: ids_filled[zero].to_numpy(dtype=object),
            S.REASON: S.REPAIR_COMMUNE_ZERO,
            S.DETAIL: [f"{c[1:]!r} completed to {c!r}" for c in commune[zero]],
        }
    )
    return _concat([repairs, completed])


def _sector_detail(values: np.ndarray, ctx: _Context) -> np.ndarray:
    level = ctx.sector_level
    any_level = is_valid(pd.Series(values, dtype=object), level=None, nomenclature=ctx.nomenclature)
    out = []
    name = {"naf": "NAF rév. 2", "nace": "NACE rév. 2", "naics": "NAICS"}.get(
        ctx.nomenclature, ctx.nomenclature
    )
    for value, ok in zip(values, any_level):
        if value is None or str(value).strip() == "":
            out.append("empty sector code")
        elif ok:
            out.append(f"{value!r} is a {name} code of another level; a {level} is expected")
        else:
            out.append(f"{value!r} is not a {name} code")
    return np.asarray(out, dtype=object)


def _crs_groups(
    crs: CRS | None, epsg: np.ndarray | None, mask: np.ndarray
) -> Iterator[tuple[CRS, np.ndarray]]:
    if epsg is None:
        yield crs, mask  # type: ignore[misc]
        return
    for code in np.unique(epsg[mask]):
        if code <= 0:
            continue
        yield CRS.from_epsg(int(code)), mask & (epsg == code)


def _commune_codes(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """Commune codes with a lost leading zero completed (``1001`` -> ``01001``), and which.

    A French commune code has 5 characters; a 4-digit code can only be one of départements
    01-09 read as a number.
    """
    text = values.astype("string").str.strip()
    stripped = text.str.fullmatch(r"\d{4}").fillna(False).to_numpy(dtype=bool)
    if stripped.any():
        text = text.where(~stripped, "0" + text)
    return text, stripped


def _epsg_from_commune(commune: pd.Series) -> np.ndarray:
    prefix = commune.str.slice(0, 3).to_numpy(dtype=object, na_value="")
    out = np.full(len(commune), _METRO_EPSG, dtype=np.int32)
    for code, epsg in _DOM_EPSG.items():
        out[prefix == code] = epsg
    return out


def _names(chunk: pd.DataFrame, mask: np.ndarray, spec: dict[str, Any]) -> Any:
    if "name" not in spec:
        return np.full(int(mask.sum()), "", dtype=object)
    result: pd.Series | None = None
    for col in spec["name"]:
        values = _text(chunk[col])[mask]
        result = values if result is None else result.fillna(values)
    return result.fillna("").array  # type: ignore[union-attr]


def _add_employees(kept: pd.DataFrame, chunk: pd.DataFrame, mask: np.ndarray, ctx: _Context):
    spec = ctx.spec
    n = int(mask.sum())
    if "employees" in spec:
        values = _numbers(chunk[spec["employees"]])[mask]
        kept[S.EMPLOYEES] = values
        kept[S.EMPLOYEES_LOW] = values
        kept[S.EMPLOYEES_HIGH] = values
        kept[S.SIZE_BAND] = (
            _text(chunk[spec["size_band"]])[mask].array
            if "size_band" in spec
            else pd.array([pd.NA] * n, dtype="string")
        )
        kept["_band_status"] = np.where(np.isnan(values), "employees_missing", "ok")
    elif "size_band" in spec:
        bands = size_band_employees(
            _text(chunk[spec["size_band"]])[mask].reset_index(drop=True),
            ctx.employee_rule,
            ctx.open_band_cap,
        )
        for col in (S.EMPLOYEES, S.EMPLOYEES_LOW, S.EMPLOYEES_HIGH, S.SIZE_BAND):
            kept[col] = bands[col].array
        kept["_band_status"] = bands["band_status"].to_numpy()
    else:
        for col in (S.EMPLOYEES, S.EMPLOYEES_LOW, S.EMPLOYEES_HIGH):
            kept[col] = np.full(n, np.nan)
        kept[S.SIZE_BAND] = pd.array([pd.NA] * n, dtype="string")
        kept["_band_status"] = np.full(n, "none", dtype=object)


# =========================================================================== geolocation


def _read_geolocation(
    geolocation: Any, sep: str | None, encoding: str, chunksize: int, crs: Any
) -> tuple[pd.Index, np.ndarray, np.ndarray, str]:
    """Read the INSEE geolocation file: (siret index, xy array, epsg array, name)."""
    source, _ = _open_source(geolocation, sep, encoding, chunksize)
    cols = set(source.columns)
    if "siret" not in cols:
        raise SchemaError(
            f"{source.name}: the geolocation file needs a 'siret' column. Columns found: "
            f"{_list_columns(source.columns)}."
        )
    if {"x", "y"} <= cols:
        wanted = ["siret", "x", "y"] + (["epsg"] if "epsg" in cols else [])
        default_epsg = CRS.from_user_input(crs).to_epsg() if crs is not None else _METRO_EPSG
    elif {"x_longitude", "y_latitude"} <= cols:
        wanted = ["siret", "x_longitude", "y_latitude"]
        default_epsg = 4326
    else:
        raise SchemaError(
            f"{source.name}: the geolocation file needs columns 'x' and 'y' (with 'epsg') or "
            f"'x_longitude' and 'y_latitude'. Columns found: {_list_columns(source.columns)}."
        )
    parts = list(source.chunks(wanted))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=wanted)
    siret = _text(table["siret"]).fillna("")
    first = ~siret.duplicated(keep="first").to_numpy()
    xy = np.column_stack([_numbers(table[wanted[1]]), _numbers(table[wanted[2]])])[first]
    if "epsg" in wanted:
        epsg = _numbers(table["epsg"])
        epsg = np.where(np.isfinite(epsg), epsg, default_epsg).astype(np.int32)[first]
    else:
        epsg = np.full(int(first.sum()), default_epsg, dtype=np.int32)
    return pd.Index(siret[first].to_numpy(dtype=object)), xy, epsg, source.name


def _crs_name(crs: Any) -> str:
    if crs is None:
        return "no CRS"
    crs = CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def _concat(parts: list[pd.DataFrame]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty_log()
    return pd.concat(parts, ignore_index=True)


def _empty_log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            S.ROW: pd.Series([], dtype=np.int64),
            S.ESTABLISHMENT_ID: pd.Series([], dtype=object),
            S.REASON: pd.Series([], dtype=object),
            S.DETAIL: pd.Series([], dtype=object),
        }
    )


def validate_chunks(chunks: Any, offset: int, ctx: _Context) -> tuple[list, list, list, list, int]:
    """Kept rows, rejects, repairs and id hashes of each chunk; rows numbered from ``offset``."""
    kept_parts, reject_parts, repair_parts, hashes = [], [], [], []
    position = offset
    for chunk in chunks:
        if len(chunk) == 0:
            continue
        kept, rejects, repairs, id_hash = _process_chunk(chunk, position, ctx)
        position += len(chunk)
        kept_parts.append(kept)
        reject_parts.append(rejects)
        repair_parts.append(repairs)
        hashes.append(id_hash)
    return kept_parts, reject_parts, repair_parts, hashes, position - offset
