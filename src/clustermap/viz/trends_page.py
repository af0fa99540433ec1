"""The "Dynamique / Trends" section of the HTML report.

Each followed cluster gets a row: its class, a small chart of its LQ at every date (a dot where
it was detected), its establishments at the first and last date, its growth against the
national growth of its sector. A chart in the U.S. Cluster Mapping Project's manner sets the
specialisation of the territory's sectors (LQ at the last date, vertical, log scale) against
their change (growth relative to the sector's national growth, horizontal), bubbles sized by
establishments. Plain SVG drawn here (no script); every label is escaped text.
"""

from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

from ..core.display import display_text
from . import i18n
from .territory_page import csv_button

__all__ = ["TREND_CSS", "trends_section"]

#: colour of each class (badge and bubble)
COLOURS = {
    "new": "#2f855a",
    "growing": "#38a169",
    "stable": "#4a5568",
    "shrinking": "#c05621",
    "disappeared": "#9b2c2c",
    "intermittent": "#718096",
    "": "#a0aec0",
}


#: the styles of the section (added to the report's style sheet)
TREND_CSS = (
    ".cm-trend{color:#fff;border-radius:10px;padding:1px 8px;font-size:12.5px;"
    "white-space:nowrap;background:#a0aec0}"
    + "".join(f".cm-trend[data-trend={k}]{{background:{v}}}" for k, v in COLOURS.items() if k)
    + "#cm-cmp-chart{max-width:820px;display:block}"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _badge(cls: str, lang: str) -> str:
    label = i18n.t(f"trend_{cls}", lang) if cls in COLOURS and cls else "–"
    return f'<span class="cm-trend" data-trend="{_e(cls)}">{_e(label)}</span>'


def sparkline(
    values: np.ndarray, detected: np.ndarray, title: str = "", width: int = 130, height: int = 30
) -> str:
    """A small SVG line of ``values`` from 0 (NaN skipped), a filled dot where ``detected``."""
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 1:
        return ""
    lo, hi = 0.0, float(np.nanmax(v))  # from 0: a small change looks small
    span = hi - lo if hi > lo else 1.0
    n = len(v)
    xs = [4 + (width - 8) * i / max(n - 1, 1) for i in range(n)]
    ys = [height - 4 - (height - 8) * ((x - lo) / span) if np.isfinite(x) else None for x in v]
    pts = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys) if y is not None)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{3 if d else 2}" '
        f'fill="{"#1a365d" if d else "#fff"}" stroke="#1a365d"></circle>'
        for x, y, d in zip(xs, ys, detected)
        if y is not None
    )
    return (
        f'<svg class="cm-spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'aria-hidden="true"><title>{_e(title)}</title><polyline points="{pts}" fill="none" '
        f'stroke="#2b6cb0" stroke-width="1.5"></polyline>{dots}</svg>'
    )


def _growth_text(growth: float, national: float, lang: str) -> str:
    g = i18n.fmt_pct(growth, lang, 0) if np.isfinite(growth) else "–"
    n = i18n.fmt_pct(national, lang, 0) if np.isfinite(national) else "–"
    sign = "+" if np.isfinite(growth) and growth > 0 else ""
    nsign = "+" if np.isfinite(national) and national > 0 else ""
    return f"{sign}{g} ({i18n.t('national_short', lang)} {nsign}{n})"


def _table(trends: Any, rows: pd.DataFrame, lang: str) -> str:
    t = i18n.t
    heads = [
        t("sector", lang),
        t("place", lang),
        t("trend", lang),
        t("lq_series", lang, first=trends.dates[0], last=trends.dates[-1]),
        t("establishments", lang),
        t("growth_vs_national", lang),
        t("lq_first_last", lang),
    ]
    body = []
    for _, r in rows.iterrows():
        series = trends.track(r["track_id"])
        values = " · ".join(
            f"{d}: {i18n.fmt_num(v, lang, 1)}" for d, v in zip(series["date"], series["lq"])
        )
        spark = sparkline(series["lq"].to_numpy(), series["detected"].to_numpy(), values)
        lq = f"{i18n.fmt_num(r['lq_first'], lang, 1)} → {i18n.fmt_num(r['lq_last'], lang, 1)}"
        est = (
            f"{i18n.fmt_int(r['establishments_first'], lang)} → "
            f"{i18n.fmt_int(r['establishments_last'], lang)}"
        )
        label = display_text(f"{r['sector_label']} ({r['sector']})", 70)
        body.append(
            f'<tr data-track="{_e(r["track_id"])}"><td>{_e(label)}</td>'
            f"<td>{_e(display_text(r['place'], 60))}</td><td>{_badge(r['trend'], lang)}</td>"
            f"<td>{spark}</td><td>{_e(est)}</td>"
            f"<td>{_e(_growth_text(r['growth'], r['national_growth'], lang))}</td>"
            f"<td>{_e(lq)}</td></tr>"
        )
    head = "".join(f"<th>{_e(h)}</th>" for h in heads)
    return (
        f'<table id="cm-trends-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
        f"{csv_button('cm-trends-table', 'clusters_dynamique.csv', lang)}"
    )


def cmp_chart(frame: pd.DataFrame, labels: dict[str, str], lang: str, max_points: int = 30) -> str:
    """Specialisation (LQ at the last date, log scale) against change (relative growth)."""
    data = frame.dropna(subset=["lq_last", "relative_growth"])
    data = data[data["lq_last"] > 0].head(max_points)
    if len(data) < 2:
        return ""
    w, h, m = 720, 420, 56
    x = np.clip(data["relative_growth"].to_numpy(dtype=float), -0.9, 3.0)
    y = np.log10(np.clip(data["lq_last"].to_numpy(dtype=float), 0.05, 50))
    x_lo, x_hi = min(x.min(), -0.1), max(x.max(), 0.1)
    y_lo, y_hi = min(y.min(), -0.2), max(y.max(), 0.2)
    px = lambda v: m + (w - 2 * m) * (v - x_lo) / (x_hi - x_lo)  # noqa: E731
    py = lambda v: h - m - (h - 2 * m) * (v - y_lo) / (y_hi - y_lo)  # noqa: E731
    size = data["establishments_last"].to_numpy(dtype=float)
    radius = 4 + 16 * np.sqrt(size / max(size.max(), 1))
    parts = [
        f'<line x1="{px(0):.1f}" y1="{m / 2}" x2="{px(0):.1f}" y2="{h - m}" stroke="#a0aec0" '
        'stroke-dasharray="4 3"></line>',
        f'<line x1="{m}" y1="{py(0):.1f}" x2="{w - m / 2}" y2="{py(0):.1f}" stroke="#a0aec0" '
        'stroke-dasharray="4 3"></line>',
        f'<text x="{w / 2}" y="{h - 12}" text-anchor="middle" font-size="12">'
        f"{_e(i18n.t('cmp_x', lang))}</text>",
        f'<text x="14" y="{h / 2}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {h / 2})">{_e(i18n.t("cmp_y", lang))}</text>',
        f'<text x="{w - m}" y="{m / 2 + 10}" text-anchor="end" font-size="11" fill="#2f855a">'
        f"{_e(i18n.t('cmp_top_right', lang))}</text>",
        f'<text x="{m + 4}" y="{m / 2 + 10}" font-size="11" fill="#c05621">'
        f"{_e(i18n.t('cmp_top_left', lang))}</text>",
    ]
    for tick in (0.1, 0.5, 1, 2, 5, 10, 20):
        v = math.log10(tick)
        if y_lo <= v <= y_hi:
            parts.append(
                f'<text x="{m - 6}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="10">'
                f"{_e(i18n.fmt_num(tick, lang))}</text>"
            )
    for tick in (-0.5, 0, 0.5, 1, 2, 3):
        if x_lo <= tick <= x_hi:
            sign = "+" if tick > 0 else ""
            parts.append(
                f'<text x="{px(tick):.1f}" y="{h - m + 16}" text-anchor="middle" font-size="10">'
                f"{_e(sign + i18n.fmt_pct(tick, lang, 0))}</text>"
            )
    order = np.argsort(-radius)  # big bubbles first, small ones drawn on top
    for i in order:
        r = data.iloc[i]
        code = str(r["sector"])
        name = display_text(labels.get(code, code), 60)
        tip = (
            f"{name} ({code}) — {i18n.t('lq_short', lang)} {i18n.fmt_num(r['lq_last'], lang, 1)}"
            f", {_growth_text(r['growth'], r['national_growth'], lang)}"
        )
        colour = COLOURS.get(str(r.get("trend", "")), COLOURS[""])
        parts.append(
            f'<circle cx="{px(x[i]):.1f}" cy="{py(y[i]):.1f}" r="{radius[i]:.1f}" '
            f'fill="{colour}" fill-opacity="0.55" stroke="#1a365d" stroke-width="0.8">'
            f"<title>{_e(tip)}</title></circle>"
        )
    for i in order[:8]:  # names of the biggest ones, on the side with room
        r = data.iloc[i]
        right = px(x[i]) < 0.7 * w
        tx = px(x[i]) + (radius[i] + 3) * (1 if right else -1)
        parts.append(
            f'<text x="{tx:.1f}" y="{py(y[i]) + 4:.1f}" font-size="10" '
            f'text-anchor="{"start" if right else "end"}">'
            f"{_e(display_text(labels.get(str(r['sector']), str(r['sector'])), 28))}</text>"
        )
    return (
        f'<svg id="cm-cmp-chart" viewBox="0 0 {w} {h}" width="100%" role="img" '
        f'aria-label="{_e(i18n.t("cmp_chart", lang))}">{"".join(parts)}</svg>'
    )


def trends_section(trends: Any, lang: str, territory: Any = None, n: int = 10) -> str:
    """The report's trends section (empty text without followed clusters)."""
    t = i18n.t
    rows = trends.trends
    if territory is not None and len(rows):
        ids = set(map(str, territory.ids))
        here = np.array([bool(ids & set(u)) for u in rows["unit_ids"]])
        rows = pd.concat([rows[here], rows[~here]])
    rows = rows.head(n)
    last = trends.results.get(trends.dates[-1])
    labels = {}
    if last is not None and getattr(last, "sectors", None) is not None and len(last.sectors):
        labels = dict(zip(last.sectors["sector"].astype(str), last.sectors["sector_label"]))
    labels.update(zip(trends.trends.get("sector", []), trends.trends.get("sector_label", [])))
    note = t("trends_note", lang, first=trends.dates[0], last=trends.dates[-1])
    parts = [f'<p class="cm-note">{_e(note)}</p>']
    if len(rows):
        parts.append(_table(trends, rows, lang))
    else:
        parts.append(f"<p>{_e(t('no_trends', lang))}</p>")
    if territory is not None:
        frame = trends.territory(territory.ids)
        title = t("cmp_chart_territory", lang, name=territory.name)
    else:
        frame = trends.trends
        title = t("cmp_chart", lang)
    chart = cmp_chart(frame, labels, lang)
    if chart:
        parts.append(f"<h3>{_e(title)}</h3><p class='cm-note'>{_e(t('cmp_note', lang))}</p>{chart}")
    return f'<section id="cm-trends"><h2>{_e(t("trends", lang))}</h2>{"".join(parts)}</section>'
