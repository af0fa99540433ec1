"""The cluster card ("fiche") shared by the map and the report.

One place builds what a person reads about a cluster: its sector, places, establishments,
employees with the size-band range, LQ with its interval, share, focus, stars, the
strong-cluster flag, the p-value and the largest establishments by name. Every value is
plain data (strings and numbers) that the page's own scripts display as text.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..core.schema import (
    CLUSTER_ID,
    EMPLOYEES,
    EMPLOYEES_HIGH,
    EMPLOYEES_LOW,
    ESTABLISHMENTS,
    LQ,
    LQ_HIGH,
    LQ_LOW,
    NAME,
    P_VALUE,
    SECTOR,
    UNIT_ID,
)
from ..taxonomy import is_category_id
from . import i18n


def _val(row: pd.Series, col: str) -> Any:
    return row[col] if col in row.index else None


def _sector_match(values: pd.Series, code: str) -> np.ndarray:
    """Establishment sector codes belonging to analysis sector ``code`` (same or finer)."""
    values = values.astype(str)
    code = str(code)
    return (values == code).to_numpy() | values.str.startswith(code).to_numpy()


class Largest:
    """Largest establishments of a cluster's sector in its units (indexed once per result)."""

    def __init__(self, result: Any) -> None:
        est = getattr(result, "establishments", None)
        self.ok = est is not None and NAME in est.columns and UNIT_ID in est.columns
        if not self.ok:
            return
        n = len(est)
        # plain NumPy arrays: per-cluster lookups on pyarrow-backed columns are slow
        self.names = est[NAME].to_numpy(dtype=object, na_value=None)
        self.codes, self.uniq = None, None
        if SECTOR in est.columns:
            self.codes, self.uniq = pd.factorize(est[SECTOR].astype(str).to_numpy(dtype=object))
        self._match: dict[str, np.ndarray] = {}
        emp = est[EMPLOYEES] if EMPLOYEES in est.columns else pd.Series(np.nan, index=est.index)
        self.emp = pd.to_numeric(emp, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        units = pd.Series(est[UNIT_ID].astype(str).to_numpy(dtype=object), index=np.arange(n))
        self.groups = units.groupby(units, sort=False).indices
        # the establishments a detection put in each cluster: exact for any level (groups of
        # codes too), where matching the cluster's sector code would find nothing
        self.members: dict[str, np.ndarray] = {}
        if CLUSTER_ID in est.columns:
            cid = pd.Series(est[CLUSTER_ID].astype(str).to_numpy(dtype=object), index=np.arange(n))
            self.members = cid[cid != ""].groupby(cid[cid != ""], sort=False).indices

    def __call__(self, row: pd.Series, k: int, lang: str) -> list[str]:
        """The ``k`` largest establishments of the cluster ``row``, as lines of text."""
        ids = _val(row, "unit_ids")
        if not self.ok or k <= 0 or ids is None or not len(ids):
            return []
        cid = str(_val(row, CLUSTER_ID))
        if cid in self.members:
            idx = np.asarray(self.members[cid])
        else:
            parts = [self.groups[str(u)] for u in ids if str(u) in self.groups]
            if not parts:
                return []
            idx = np.concatenate(parts)
        if cid not in self.members and self.codes is not None:
            code = str(row[SECTOR])
            if code not in self._match:  # the same code or a finer one (25.62 -> 25.62A)
                self._match[code] = np.array([str(u).startswith(code) for u in self.uniq])
            idx = idx[self._match[code][self.codes[idx]]]
        emp = np.nan_to_num(self.emp[idx], nan=-1.0)
        names = ["" if v is None else str(v) for v in self.names[idx]]
        order = sorted(range(len(idx)), key=lambda j: (-emp[j], names[j]))[:k]
        out = []
        for j in order:
            text = names[j] if self.names[idx[j]] is not None else "?"
            if emp[j] >= 0:
                unit = "salariés" if lang == "fr" else "employees"
                text = f"{text} (≈{i18n.NBSP}{i18n.fmt_int(emp[j], lang)} {unit})"
            out.append(text)
        return out


class Extras:
    """The codes inside a cluster of a group level, and the sectors related to it."""

    def __init__(self, result: Any, max_items: int = 8) -> None:
        self.max_items = max_items
        comp = getattr(result, "composition", None)
        self.comp = {} if comp is None or not len(comp) else dict(list(comp.groupby(CLUSTER_ID)))
        rel = getattr(result, "related", None)
        self.related = rel if rel is not None and len(rel) else None
        clusters = getattr(result, "clusters", None)
        self.units_of: dict[str, set[str]] = {}
        if clusters is not None and len(clusters) and "unit_ids" in clusters.columns:
            for sec, ids in zip(clusters[SECTOR].astype(str), clusters["unit_ids"]):
                self.units_of.setdefault(sec, set()).update(str(u) for u in ids)

    def __call__(self, row: pd.Series, lang: str) -> list[list[Any]]:
        """``[[title, [lines]], ...]`` for the fiche of ``row``."""
        t, out = i18n.t, []
        part = self.comp.get(str(_val(row, CLUSTER_ID)))
        if part is not None and len(part):
            word = t("establishments", lang).lower()
            lines = []
            for r in part.head(self.max_items).itertuples(index=False):
                label = f" — {r.code_label}" if isinstance(r.code_label, str) else ""
                colon = " : " if lang == "fr" else ": "
                alone = f" — {t('alone', lang)}" if getattr(r, "single_code_cluster", False) else ""
                lines.append(
                    f"{r.code}{label}{colon}{i18n.fmt_int(r.establishments, lang)} {word}, "
                    f"{t('lq_short', lang)} {i18n.fmt_num(r.lq, lang)}{alone}"
                )
            if len(part) > self.max_items:
                lines.append(t("more_codes", lang, n=len(part) - self.max_items))
            out.append([t("codes_in_cluster", lang), lines])
        if self.related is not None:
            code = str(row[SECTOR])
            rel = self.related
            mine = rel[(rel["sector_a"] == code) | (rel["sector_b"] == code)].head(5)
            ids = {str(u) for u in (_val(row, "unit_ids") or [])}
            lines = []
            for r in mine.itertuples(index=False):
                other, label = (
                    (r.sector_b, r.label_b) if r.sector_a == code else (r.sector_a, r.label_a)
                )
                text = f"{label} ({i18n.fmt_num(r.colocation, lang)})"
                if ids & self.units_of.get(str(other), set()):
                    text += f" — {t('cluster_here', lang)}"
                lines.append(text)
            if lines:
                out.append([t("related_sectors", lang), lines])
        return out


def cluster_card(
    row: pd.Series, lang: str, largest: list[str], sections: list[list[Any]] | None = None
) -> dict[str, Any]:
    """Popup content of one cluster (plain text pairs, rendered with textContent)."""
    t = i18n.t
    f_int, f_num = i18n.fmt_int, i18n.fmt_num
    label = _val(row, "sector_label")
    code = str(row[SECTOR])
    sector = f"{code} — {label}" if label is not None and str(label) != code else code
    if label is not None and is_category_id(code):  # a category id: its name says more
        sector = str(label)
    rows = [[t("sector", lang), sector]]
    if _val(row, "place") is not None:
        rows.append([t("main_communes", lang), str(row["place"])])
    if _val(row, "n_units") is not None:
        rows.append([t("n_units", lang), f_int(row["n_units"], lang)])
    if _val(row, ESTABLISHMENTS) is not None:
        rows.append([t("establishments", lang), f_int(row[ESTABLISHMENTS], lang)])
    if _val(row, EMPLOYEES) is not None:
        text = f_int(row[EMPLOYEES], lang)
        lo, hi = _val(row, EMPLOYEES_LOW), _val(row, EMPLOYEES_HIGH)
        if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
            text += f" ({t('employees_range', lang)} {f_int(lo, lang)} – {f_int(hi, lang)})"
        rows.append([t("employees", lang), text])
    if _val(row, LQ) is not None:
        text = f_num(row[LQ], lang)
        lo, hi = _val(row, LQ_LOW), _val(row, LQ_HIGH)
        if lo is not None and hi is not None and pd.notna(lo) and pd.notna(hi):
            text += f" ({t('lq_interval', lang)} : {f_num(lo, lang)} – {f_num(hi, lang)})"
            if lang == "en":
                text = text.replace(" : ", ": ")
        rows.append([t("lq", lang), text])
    if _val(row, "lq_employees") is not None:
        rows.append([t("lq_employees", lang), f_num(row["lq_employees"], lang)])
    if _val(row, "share_of_sector") is not None:
        rows.append([t("share_of_sector", lang), i18n.fmt_pct(row["share_of_sector"], lang)])
    if _val(row, "focus") is not None:
        rows.append([t("focus", lang), i18n.fmt_pct(row["focus"], lang)])
    if _val(row, "stars") is not None:
        rows.append([t("stars", lang), i18n.fmt_stars(row["stars"])])
    if _val(row, "strong_cluster") is not None:
        rows.append([t("strong_cluster", lang), i18n.fmt_bool(row["strong_cluster"], lang)])
    if _val(row, P_VALUE) is not None:
        rows.append([t("p_value", lang), i18n.fmt_p(row[P_VALUE], lang)])
    out: dict[str, Any] = {"t": sector, "r": rows}
    if _val(row, "artefact") is not None and pd.notna(row["artefact"]) and bool(row["artefact"]):
        out["w"] = t("artefact", lang)
    if largest:
        out["lt"] = t("largest", lang)
        out["l"] = largest
    if sections:
        out["s"] = sections
    return out


def cluster_tooltip(row: pd.Series, lang: str) -> str:
    """The one-line label shown when the pointer is over a cluster."""
    label = _val(row, "sector_label")
    head = str(label) if label is not None and pd.notna(label) else str(row[SECTOR])
    parts = [head]
    if _val(row, "place") is not None and pd.notna(row["place"]):
        parts.append(str(row["place"]))
    if _val(row, ESTABLISHMENTS) is not None:
        word = i18n.t("establishments", lang).lower()
        parts.append(f"{i18n.fmt_int(row[ESTABLISHMENTS], lang)} {word}")
    return " — ".join(parts)


def units_with_data(result: Any) -> pd.Index:
    """Ids of the units holding establishments in the result's table (no table: all units)."""
    table = getattr(result, "table", None)
    if table is not None and UNIT_ID in getattr(table, "columns", ()):
        return pd.Index(table[UNIT_ID].astype(str).unique())
    units = getattr(result, "units", None)
    return pd.Index([]) if units is None else pd.Index(units.index.astype(str))
