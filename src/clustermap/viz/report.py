"""Self-contained HTML report of a :class:`clustermap.ClusterResult`.

One file that a person opens in a browser, with no Python and no internet needed: what was
analysed (source file, date, establishments kept and rows dropped by reason), the
parameters, a sortable table of clusters, the map (Leaflet embedded from the installed
``django-js-lib-leaflet`` package), a section per leading cluster and a plain-language note
on method and limits. French by default, English with ``lang="en"``.

Every piece of registry text is escaped (:func:`html.escape` in HTML, unicode
escapes of ``<``, ``>`` and ``&`` in JSON inside scripts), and a Content-Security-Policy
lists the hash of each of the page's own inline scripts, so no script coming from the data
can run. Only the base-map tiles need a connection; without one the clusters show over light
outlines of the areas.
"""

from __future__ import annotations

import datetime as _dt
import html
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from ..core.atomic import write_text_atomic
from ..core.display import display_text
from ..core.schema import (
    CLUSTER_ID,
    EMPLOYEES,
    ESTABLISHMENTS,
    LQ,
    LQ_HIGH,
    LQ_LOW,
    P_VALUE,
    SECTOR,
)
from . import i18n
from .card import units_with_data
from .offline import CSP_PLACEHOLDER, SCRIPT_RE, add_csp
from .territory_page import CSV_JS, csv_button
from .trends_page import TREND_CSS

__all__ = ["write_report"]

_CSS = """
:root{--ink:#1d2430;--muted:#5b6472;--line:#d9dde3;--accent:#1f5fa8}
html,body{height:auto;width:auto}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
 color:var(--ink);background:#f6f7f9}
main,.cm-wrap{max-width:1180px;margin:0 auto;padding:0 18px 40px}
header.cm-top{background:#fff;border-bottom:1px solid var(--line);padding:18px 0 10px;
 margin-bottom:8px}
header.cm-top h1{margin:0 0 4px;font-size:24px}
.cm-sub{color:var(--muted);margin:0}
nav.cm-nav a{margin-right:14px;color:var(--accent);text-decoration:none}
section{background:#fff;border:1px solid var(--line);border-radius:6px;padding:12px 18px;
 margin:14px 0}
h2{font-size:19px;margin:4px 0 10px}
h3{font-size:16px;margin:14px 0 6px}
table{border-collapse:collapse;font-size:13.5px}
th,td{border-bottom:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;white-space:nowrap}
table.cm-sortable th{cursor:pointer;background:#eef2f7;user-select:none;white-space:nowrap}
table.cm-sortable th button{all:unset;cursor:pointer}
table.cm-sortable th[aria-sort=ascending] button::after{content:" \\25B2"}
table.cm-sortable th[aria-sort=descending] button::after{content:" \\25BC"}
.cm-table-wrap{overflow-x:auto}
table.cm-sortable .cm-sec{display:none}
table.cm-sortable.cm-all .cm-sec{display:table-cell}
table.cm-sortable tr[data-cluster]{cursor:pointer}
table.cm-sortable tr[data-cluster]:hover td{background:#f3f7fc}
td.cm-label{min-width:11em;max-width:20em}
.cm-note button,button.cm-csv,button.cm-more{font:inherit;font-size:12.5px;margin:0 8px 4px 0}
.cm-kpis{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0}
.cm-kpi{background:#eef2f7;border-radius:6px;padding:6px 12px}
.cm-kpi b{display:block;font-size:20px}
.cm-map-box{position:relative;height:72vh;min-height:420px;border:1px solid var(--line)}
.cm-note{color:var(--muted);font-size:13.5px}
.cm-warn{background:#fff3cd;padding:2px 6px;border-radius:3px}
.cm-fiche-grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:6px 24px}
footer{color:var(--muted);font-size:12.5px;text-align:center;margin:20px 0}
"""

_SORT_JS = """
(function () {
  document.querySelectorAll('table.cm-sortable').forEach(function (table) {
    var heads = table.querySelectorAll('thead th');
    heads.forEach(function (th, col) {
      var b = th.querySelector('button');
      (b || th).addEventListener('click', function () {
        var numeric = th.getAttribute('data-type') === 'num';
        var cur = th.getAttribute('aria-sort');
        // numbers: largest first on the first click; text: A to Z first
        var asc = numeric ? cur === 'descending' : cur !== 'ascending';
        heads.forEach(function (h) { h.removeAttribute('aria-sort'); });
        th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows);
        rows.sort(function (a, b) {
          var x = a.cells[col].getAttribute('data-v'), y = b.cells[col].getAttribute('data-v');
          if (numeric) {
            x = x === '' ? NaN : parseFloat(x); y = y === '' ? NaN : parseFloat(y);
            if (isNaN(x)) { return isNaN(y) ? 0 : 1; }
            if (isNaN(y)) { return -1; }
            return asc ? x - y : y - x;
          }
          return asc ? x.localeCompare(y, 'fr') : y.localeCompare(x, 'fr');
        });
        rows.forEach(function (r) { body.appendChild(r); });
      });
    });
  });
  // a row of a cluster opens its fiche on the map
  document.querySelectorAll('tr[data-cluster]').forEach(function (tr) {
    tr.addEventListener('click', function () {
      var id = tr.getAttribute('data-cluster');
      if (window.cmOpenCluster && window.cmOpenCluster(id)) {
        document.getElementById('cm-map').scrollIntoView();
      }
    });
  });
  document.querySelectorAll('button.cm-more').forEach(function (b) {
    b.addEventListener('click', function () {
      var table = document.getElementById(b.getAttribute('data-table'));
      if (table) { table.classList.toggle('cm-all'); }
    });
  });
})();
"""


def _e(value: Any) -> str:
    """Escape any value for HTML text or attribute (shown as text, cut when very long)."""
    return html.escape("" if value is None else display_text(value), quote=True)


def _num_attr(value: Any) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return ""
    return "" if pd.isna(v) else repr(v)


def _cluster_tables(clusters: pd.DataFrame, lang: str) -> str:
    """Traded clusters first, local ones in their own table (one table without types)."""
    t = i18n.t
    if not len(clusters):
        return f"<p>{_e(t('no_clusters', lang))}</p>"
    types = clusters["sector_type"] if "sector_type" in clusters.columns else None
    if types is None or not types.isin(["traded", "local"]).any():
        return _cluster_table(clusters, lang, "cm-cluster-table")
    out = [f'<p class="cm-note">{_e(t("types_note", lang))}</p>']
    for key, kind, table_id in (
        ("traded_clusters", "traded", "cm-cluster-table"),
        ("local_clusters", "local", "cm-cluster-table-local"),
    ):
        part = clusters[types == kind]
        if len(part):
            out.append(f"<h3>{_e(t(key, lang))} ({len(part)})</h3>")
            out.append(_cluster_table(part, lang, table_id))
    rest = clusters[~types.isin(["traded", "local"])]
    if len(rest):
        out.append(_cluster_table(rest, lang, "cm-cluster-table-other"))
    return "".join(out)


def _cluster_table(clusters: pd.DataFrame, lang: str, table_id: str) -> str:
    t = i18n.t
    cols: list[tuple[str, str, str]] = [  # key, header, type
        ("rank", t("rank", lang), "num"),
        (SECTOR, t("sector_code", lang), "text"),
        ("sector_label", t("sector", lang), "text"),
        ("place", t("main_communes", lang), "text"),
        (ESTABLISHMENTS, t("establishments", lang), "num"),
        (EMPLOYEES, t("employees", lang), "num"),
        (LQ, t("lq_short", lang) + " [95 %]" if lang == "fr" else "LQ [95%]", "num"),
        ("share_of_sector", t("share_of_sector", lang), "num"),
        ("focus", t("focus", lang), "num"),
        ("stars", t("stars", lang), "num"),
        ("strong_cluster", t("strong_cluster", lang), "text"),
        (P_VALUE, t("p_value", lang), "num"),
    ]
    cols = [c for c in cols if c[0] == "rank" or c[0] in clusters.columns]
    # secondary columns, behind "more columns", so the table fits a laptop screen
    secondary = {"focus", "stars", "strong_cluster", P_VALUE, EMPLOYEES, "rank"}

    def css(key: str, typ: str) -> str:
        names = [
            n
            for n, on in (
                ("num", typ == "num"),
                ("cm-sec", key in secondary),
                ("cm-label", key == "sector_label"),
            )
            if on
        ]
        return f' class="{" ".join(names)}"' if names else ""

    head = "".join(
        f'<th scope="col" data-type="{typ}"{css(key, typ)}>'
        f'<button type="button">{_e(label)}</button></th>'
        for key, label, typ in cols
    )
    body = []
    has_artefact = False
    for rank, (_, row) in enumerate(clusters.iterrows(), start=1):
        cells = []
        for key, _, typ in cols:
            value = rank if key == "rank" else row[key]
            if key == "rank":
                text = str(rank)
            elif key in (ESTABLISHMENTS, EMPLOYEES):
                text = i18n.fmt_int(value, lang)
            elif key == LQ:
                text = i18n.fmt_num(value, lang)
                if LQ_LOW in row.index and LQ_HIGH in row.index:
                    lo = i18n.fmt_num(row[LQ_LOW], lang)
                    hi = i18n.fmt_num(row[LQ_HIGH], lang)
                    text += f" [{lo} – {hi}]"
            elif key in ("share_of_sector", "focus"):
                text = i18n.fmt_pct(value, lang)
            elif key == "stars":
                text = i18n.fmt_stars(value)
            elif key == "strong_cluster":
                text = i18n.fmt_bool(value, lang)
            elif key == P_VALUE:
                text = i18n.fmt_p(value, lang)
            else:
                text = (
                    "" if value is None or (isinstance(value, float) and pd.isna(value)) else value
                )
            v = _num_attr(value) if typ == "num" else str(text)
            cls = css(key, typ)
            flag = ""
            if key == "sector_label" and _is_artefact(row):
                has_artefact = True
                flag = f' <span class="cm-artefact" title="{_e(t("artefact", lang))}">⚠</span>'
            cells.append(f'<td{cls} data-v="{_e(v)}">{_e(text)}{flag}</td>')
        cid = _e(row[CLUSTER_ID]) if CLUSTER_ID in row.index else ""
        body.append(f'<tr data-cluster="{cid}">{"".join(cells)}</tr>')
    return (
        f'<p class="cm-note">{_e(t("sort_hint", lang))}</p>'
        + csv_button(table_id, "clusters.csv", lang)
        + f'<button type="button" class="cm-more" data-table="{_e(table_id)}">'
        + f"{_e(t('more_columns', lang))}</button>"
        + f'<div class="cm-table-wrap"><table class="cm-sortable" id="{table_id}">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
        + (f'<p class="cm-note">⚠ {_e(t("artefact_note", lang))}</p>' if has_artefact else "")
    )


def _is_artefact(row: pd.Series) -> bool:
    value = row.get("artefact")
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and bool(value)


def _summary(result: Any, lang: str, source: str | None, date: str) -> str:
    t = i18n.t
    summary = dict(result.registry_summary or {})
    src = source or summary.get("source") or (result.parameters or {}).get("source")
    rows = [
        (t("source", lang), Path(str(src)).name if src else t("not_given", lang)),
        (t("date", lang), date),
    ]
    if summary.get("rows") is not None:
        rows.append((t("rows_read", lang), i18n.fmt_int(summary["rows"], lang)))
    if summary.get("kept") is not None:
        rows.append((t("kept", lang), i18n.fmt_int(summary["kept"], lang)))
    rejects = summary.get("rejects") or {}
    if isinstance(rejects, pd.Series):
        rejects = rejects.to_dict()
    if isinstance(rejects, dict):
        total = sum(int(v) for v in rejects.values())
        rows.append((t("dropped", lang), i18n.fmt_int(total, lang)))
    out = ["<table>"]
    out += [f"<tr><th scope=row>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows]
    out.append("</table>")
    if isinstance(rejects, dict) and rejects:
        out.append(
            f"<h3>{_e(t('dropped', lang))}</h3>{csv_button('cm-rejects', 'rejets.csv', lang)}"
            f'<table id="cm-rejects"><thead><tr>'
            f"<th>{_e(t('reason', lang))}</th><th class=num>{_e(t('count', lang))}</th>"
            "</tr></thead><tbody>"
        )
        for code, n in rejects.items():
            out.append(
                f"<tr><td>{_e(i18n.reason(code, lang))} <code>{_e(code)}</code></td>"
                f"<td class=num>{_e(i18n.fmt_int(n, lang))}</td></tr>"
            )
        out.append("</tbody></table>")
    repairs = summary.get("repairs") or {}
    if isinstance(repairs, dict) and repairs:
        items = ", ".join(
            f"{i18n.reason(code, lang)} : {i18n.fmt_int(n, lang)}"
            if lang == "fr"
            else f"{i18n.reason(code, lang)}: {i18n.fmt_int(n, lang)}"
            for code, n in repairs.items()
        )
        out.append(f'<p id="cm-repairs">{_e(t("repaired", lang))} — {_e(items)}</p>')
    clusters = result.clusters
    n_sectors = clusters[SECTOR].nunique() if SECTOR in clusters.columns else 0
    kpis = [
        (t("n_clusters", lang), i18n.fmt_int(len(clusters), lang)),
        (t("n_sectors", lang), i18n.fmt_int(n_sectors, lang)),
        (t("n_units_total", lang), i18n.fmt_int(len(units_with_data(result)), lang)),
    ]
    kpi_html = "".join(f'<div class="cm-kpi"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in kpis)
    return f'<div class="cm-kpis">{kpi_html}</div>' + "".join(out)


def _format_param(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list | tuple | set):
        return ", ".join(map(str, value))
    return str(value)


def _parameters(result: Any, lang: str) -> str:
    params = dict(result.parameters or {})
    if not params:
        return f"<p>{_e(i18n.t('not_given', lang))}</p>"
    t = i18n.t
    readable = "".join(
        f"<tr><th scope=row>{_e(label)}</th><td>{_e(value)}</td></tr>"
        for label, value in i18n.parameter_rows(params, lang)
    )
    rows = "".join(
        f"<tr><th scope=row><code>{_e(k)}</code></th><td>{_e(_format_param(v))}</td></tr>"
        for k, v in params.items()
    )
    return (
        (
            f'<table id="cm-parameters-readable"><tbody>{readable}</tbody></table>'
            if readable
            else ""
        )
        + f"<details><summary>{_e(t('technical', lang))}</summary>"
        + csv_button("cm-parameters", "parametres.csv", lang)
        + f'<table id="cm-parameters"><thead><tr><th>{_e(t("parameter", lang))}</th>'
        f"<th>{_e(t('value', lang))}</th></tr></thead><tbody>{rows}</tbody></table></details>"
    )


def _leading(result: Any, lang: str, n: int, largest: int) -> str:
    from .card import Extras, Largest, cluster_card

    clusters = result.clusters
    if not len(clusters) or n <= 0:
        return f"<p>{_e(i18n.t('no_clusters', lang))}</p>"
    out = []
    largest_of = Largest(result)
    extras = Extras(result)
    for rank, (_, row) in enumerate(clusters.head(n).iterrows(), start=1):
        fiche = cluster_card(row, lang, largest_of(row, largest, lang), extras(row, lang))
        place = row["place"] if "place" in row.index and pd.notna(row["place"]) else ""
        title = f"{rank}. {fiche['t']}" + (f" — {place}" if place else "")
        cid = _e(row[CLUSTER_ID]) if CLUSTER_ID in row.index else ""
        parts = [f'<article class="cm-leading" data-cluster="{cid}"><h3>{_e(title)}</h3>']
        if fiche.get("w"):
            parts.append(f'<p class="cm-warn">{_e(fiche["w"])}</p>')
        parts.append('<div class="cm-fiche-grid"><table>')
        parts += [f"<tr><th scope=row>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in fiche["r"]]
        parts.append("</table>")
        if fiche.get("l"):
            items = "".join(f"<li>{_e(x)}</li>" for x in fiche["l"])
            parts.append(f"<div><b>{_e(fiche['lt'])}</b><ol>{items}</ol></div>")
        for title_s, lines in fiche.get("s", []):
            items = "".join(f"<li>{_e(x)}</li>" for x in lines)
            parts.append(f"<div><b>{_e(title_s)}</b><ul>{items}</ul></div>")
        parts.append("</div></article>")
        out.append("".join(parts))
    return "".join(out)


def _linkage(result: Any, lang: str, max_nodes: int = 24, max_edges: int = 40) -> str:
    """A picture of the related sectors with clusters: nodes on a circle, one line per link.

    Plain SVG drawn here (no script); every label is escaped text.
    """
    rel = getattr(result, "related", None)
    if rel is None or not len(rel):
        return ""
    rel = rel.head(max_edges)
    order = list(dict.fromkeys(result.clusters[SECTOR].astype(str)))
    linked = set(rel["sector_a"]) | set(rel["sector_b"])
    nodes = [s for s in order if s in linked][:max_nodes]
    if len(nodes) < 2:
        return ""
    label_of = {}
    for a, b, la, lb in zip(rel["sector_a"], rel["sector_b"], rel["label_a"], rel["label_b"]):
        label_of.setdefault(a, str(la))
        label_of.setdefault(b, str(lb))
    size, radius = 640, 200
    centre = size / 2
    angle = {s: 2 * np.pi * i / len(nodes) - np.pi / 2 for i, s in enumerate(nodes)}
    pos = {s: (centre + radius * np.cos(a), centre + radius * np.sin(a)) for s, a in angle.items()}
    parts = []
    top = float(rel["colocation"].max())
    for a, b, w in zip(rel["sector_a"], rel["sector_b"], rel["colocation"]):
        if a in pos and b in pos:
            (x1, y1), (x2, y2) = pos[a], pos[b]
            width = 1 + 7 * float(w) / top
            parts.append(
                f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                f'stroke="#2b6cb0" stroke-opacity="0.6" stroke-width="{width:.1f}">'
                f"<title>{_e(label_of.get(a, a))} — {_e(label_of.get(b, b))}: "
                f"{_e(i18n.fmt_num(w, lang))}</title></line>"
            )
    for s_, (x, y) in pos.items():
        label = display_text(label_of.get(s_, s_), 34)
        anchor = "start" if x >= centre else "end"
        dx = 8 if x >= centre else -8
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="#1a365d"></circle>'
            f'<text x="{x + dx:.1f}" y="{y + 4:.1f}" text-anchor="{anchor}" font-size="11">'
            f"{_e(label)}</text>"
        )
    return (
        f'<p class="cm-note">{_e(i18n.t("linkage_note", lang))}</p>'
        f'<svg id="cm-linkage" viewBox="-180 0 {size + 360} {size}" role="img" '
        f'aria-label="{_e(i18n.t("linkage", lang))}" width="100%">{"".join(parts)}</svg>'
    )


def write_report(
    result: Any,
    path: str | os.PathLike[str],
    *,
    lang: str = "fr",
    title: str | None = None,
    source: str | None = None,
    leading: int = 5,
    largest: int = 5,
    simplify: float | str | None = "auto",
    tiles: Any = "OpenStreetMap",
    date: str | None = None,
    territory: Any = None,
    trends: Any = None,
) -> Path:
    """Write the standalone HTML report of a cluster detection.

    The file embeds everything it needs (Leaflet, styles, scripts, data) and works offline;
    only the base-map tiles need a connection (the report says so, and draws light outlines
    of the areas as a background). Registry text is escaped everywhere, and a
    Content-Security-Policy allows only the page's own scripts.

    Parameters
    ----------
    result : ClusterResult
        Output of :func:`clustermap.detect_clusters`.
    path : str or os.PathLike
        Output ``.html`` file (written atomically).
    lang : {"fr", "en"}, default "fr"
        Language of the report.
    title : str, optional
        Title of the page (default "Rapport clustermap : clusters d'entreprises").
    source : str, optional
        Name of the analysed file (default ``result.registry_summary["source"]``); only
        the file name is shown.
    leading : int, default 5
        Number of leading clusters given their own section.
    largest : int, default 5
        Establishments listed by name per cluster.
    simplify : "auto", float or None, default "auto"
        Display tolerance of the map in metres (see :func:`clustermap.explore_clusters`).
    tiles : str or None, default "OpenStreetMap"
        Base map (``None``: plain background only).
    date : str, optional
        Date shown (default: today, ISO format).
    territory : optional
        A territory the report opens on (its map, the portfolio of its clusters, one fiche
        per cluster with the firms to call, then the national context): unit ids, a
        département code, a polygon, or a
        :class:`~clustermap.detect.territory.Territory` from
        :func:`clustermap.resolve_territory` (for an EPCI code with ``cog=``).
    trends : TrendResult, optional
        Clusters followed over time (:func:`clustermap.cluster_trends`): adds the
        "Dynamique / Trends" section (each leading cluster's series, its class, its growth
        against the sector's national growth, and the specialisation-versus-change chart of
        the territory's sectors). ``result`` is then usually ``trends.results`` at the
        last date.

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"name": ["Cluses", "Scionzier"]},
    ...     geometry=[box(6.55, 46.05, 6.60, 46.10), box(6.60, 46.05, 6.65, 46.10)],
    ...     index=pd.Index(["74081", "74264"], name="unit_id"), crs=4326)
    >>> clusters = gpd.GeoDataFrame({"cluster_id": ["25.62A-1"], "sector": ["25.62A"],
    ...     "sector_label": ["Décolletage"], "place": ["Cluses <b>&</b> Scionzier"],
    ...     "unit_ids": [["74081", "74264"]], "establishments": [120], "lq": [2.5]},
    ...     geometry=[box(6.55, 46.05, 6.65, 46.10)], crs=4326)
    >>> result = cm.ClusterResult(clusters=clusters, table=pd.DataFrame(), units=units,
    ...     registry_summary={"source": "sirene.csv", "rows": 10, "kept": 8,
    ...                       "rejects": {"missing_coordinates": 2}})
    >>> out = cm.write_report(result, pathlib.Path(tempfile.mkdtemp()) / "r.html")
    >>> page = out.read_text(encoding="utf-8")
    >>> "Cluses &lt;b&gt;&amp;&lt;/b&gt; Scionzier" in page and "<b>&</b>" not in page
    True
    >>> "cdn.jsdelivr" in page
    False
    """
    from .maps import explore_clusters

    i18n.check_lang(lang)
    t = i18n.t
    path = Path(path)
    if not path.parent.exists():
        raise FileNotFoundError(
            f"Cannot write the report to {str(path)!r}: the folder {str(path.parent)!r} does "
            "not exist. Create it first or choose another --out path."
        )
    title = title or t("report_title", lang)
    date = date or _dt.date.today().isoformat()
    from ..detect.territory import Territory, resolve_territory

    if territory is not None and not isinstance(territory, Territory):
        territory = resolve_territory(territory, result.units)

    m = explore_clusters(
        result,
        lang=lang,
        title=None,
        context=True,
        largest=largest,
        map_options={"simplify": simplify, "tiles": tiles, "offline": True},
        height="100%",
        focus=None if territory is None else territory.ids,
    )
    fig = m.get_root()
    fig.header._children.pop("cm_csp", None)  # the page gets its own policy below
    fig.render()
    map_header = fig.header.render()
    map_html = fig.html.render()
    map_script = fig.script.render()

    nav, sections = _sections(
        result, lang, source, date, map_html, leading, largest, territory, trends
    )
    page = f"""<!DOCTYPE html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
{CSP_PLACEHOLDER}
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="clustermap {_e(__version__)}">
<title>{_e(title)}</title>
{map_header}
<style>{_CSS}{TREND_CSS}</style>
</head>
<body>
<header class="cm-top"><div class="cm-wrap">
<h1>{_e(title)}</h1>
<p class="cm-sub">{_e(t("generated_by", lang, version=__version__))} — {_e(date)}</p>
<nav class="cm-nav">{nav}</nav>
</div></header>
<main>
{sections}
<footer>{_e(t("generated_by", lang, version=__version__))}</footer>
</main>
<script>{map_script}</script>
<script>{_SORT_JS}</script>
<script>{CSV_JS}</script>
</body>
</html>
"""
    # only the scripts written here are allowed: the map's header scripts (Leaflet, the
    # helpers), its script section and the table sorter; the finished page, which holds
    # registry text, is never scanned for scripts
    own_scripts = [*SCRIPT_RE.findall(map_header), map_script, _SORT_JS, CSV_JS]
    page = add_csp(page, own_scripts)
    return write_text_atomic(path, page)


def _sections(result, lang, source, date, map_html, leading, largest, territory, trends=None):
    """The navigation links and the sections of the report, in reading order."""
    t = i18n.t
    # our own text: escaped, never cut (the cut is for data shown in cells)
    method = "".join(f"<p>{html.escape(p)}</p>" for p in i18n.method_note(lang))
    linkage = _linkage(result, lang)
    if linkage:
        linkage = (
            f'<section id="cm-linkage-section"><h2>{_e(t("linkage", lang))}</h2>{linkage}</section>'
        )
    body = {
        "analysed": f'<section id="cm-analysed"><h2>{_e(t("what_was_analysed", lang))}</h2>'
        f"{_summary(result, lang, source, date)}</section>",
        "map": f'<section id="cm-map"><h2>{_e(t("map", lang))}</h2><p class="cm-note">'
        f'{_e(t("map_note", lang))}</p><div class="cm-map-box">{map_html}</div></section>',
        "clusters": f'<section id="cm-clusters"><h2>{_e(t("cluster_table", lang))}</h2>'
        f"{_cluster_tables(result.clusters, lang)}</section>",
        "leading": f'<section id="cm-leading"><h2>{_e(t("leading_clusters", lang))}</h2>'
        f"{_leading(result, lang, leading, largest)}</section>",
        "linkage": linkage,
        "parameters": f'<section id="cm-parameters-section"><h2>{_e(t("parameters", lang))}'
        f"</h2>{_parameters(result, lang)}</section>",
        "method": f'<section id="cm-method"><h2>{_e(t("method", lang))}</h2>{method}</section>',
    }
    order = ["analysed", "map", "clusters", "leading", "linkage", "parameters", "method"]
    nav_items = [
        ("cm-analysed", t("what_was_analysed", lang)),
        ("cm-map", t("map", lang)),
        ("cm-clusters", t("cluster_table", lang)),
        ("cm-leading", t("leading_clusters", lang)),
        ("cm-parameters-section", t("parameters", lang)),
        ("cm-method", t("method", lang)),
    ]
    if trends is not None:
        from .trends_page import trends_section

        body["trends"] = trends_section(trends, lang, territory)
        order.insert(order.index("leading") + 1, "trends")
        nav_items.insert(4, ("cm-trends", t("trends", lang)))
    if territory is not None:  # the territory first, then the national context
        from .territory_page import territory_sections

        body["top"], body["portfolio"], body["fiches"] = territory_sections(
            result, territory, lang, largest
        )
        order = ["top", "map", "portfolio", "fiches", *[k for k in order if k != "map"]]
        if trends is not None:  # the territory's dynamics right after its fiches
            order.remove("trends")
            order.insert(order.index("fiches") + 1, "trends")
        nav_items = [
            ("cm-portfolio-section", t("portfolio", lang)),
            ("cm-territory-fiches", t("who_to_call", lang)),
            *nav_items,
        ]
    nav = "".join(f'<a href="#{sid}">{_e(label)}</a>' for sid, label in nav_items)
    sections = "\n".join(body[k] for k in order if body.get(k))
    return nav, sections
