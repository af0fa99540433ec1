"""The territory sections of the HTML report: portfolio, fiches with the firms to call.

Every table has a button that downloads it as CSV, offline (the page builds the file from the
table itself; cells a spreadsheet would read as formulas are prefixed with ``'``). Every
value is escaped text.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from ..core.display import display_text
from ..core.schema import CLUSTER_ID, ESTABLISHMENTS
from . import i18n

__all__ = ["CSV_JS", "csv_button", "territory_sections"]

#: the CSV download of any table with a ``button.cm-csv[data-table]``; window.cmTableCsv for tests
CSV_JS = """
(function () {
  function cell(text) {
    var t = String(text).replace(/\\s+/g, ' ').trim();
    if (/^[=+\\-@\\t\\r]/.test(t) && isNaN(Number(t))) { t = "'" + t; }
    return '"' + t.replace(/"/g, '""') + '"';
  }
  function csv(id) {
    var table = document.getElementById(id);
    if (!table) { return ''; }
    return Array.prototype.map.call(table.rows, function (row) {
      return Array.prototype.map.call(row.cells, function (c) { return cell(c.textContent); })
        .join(',');
    }).join('\\r\\n') + '\\r\\n';
  }
  window.cmTableCsv = csv;
  document.querySelectorAll('button.cm-csv').forEach(function (b) {
    b.addEventListener('click', function () {
      var blob = new Blob(['\\ufeff' + csv(b.getAttribute('data-table'))],
                          {type: 'text/csv;charset=utf-8'});
      var a = document.createElement('a');
      a.href = URL.createObjectURL(blob);
      a.download = b.getAttribute('data-name') || 'table.csv';
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
    });
  });
})();
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else display_text(value), quote=True)


def csv_button(table_id: str, name: str, lang: str) -> str:
    """A button that downloads the table ``table_id`` as CSV (built by the page, offline)."""
    return (
        f'<button type="button" class="cm-csv" data-table="{_e(table_id)}" '
        f'data-name="{_e(name)}">{_e(i18n.t("download_csv", lang))}</button>'
    )


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and pd.isna(value))


def _table(
    frame: pd.DataFrame, cols: list[tuple[str, str, str]], table_id: str, lang: str, csv_name: str
) -> str:
    """A sortable table with a CSV button; ``cols``: (column, header, kind)."""
    head = "".join(
        f'<th scope="col" data-type="{kind if kind == "num" else "text"}"'
        f'{" class=num" if kind == "num" else ""}><button type="button">{_e(label)}</button></th>'
        for _, label, kind in cols
    )
    body = []
    for _, row in frame.iterrows():
        cells = []
        for key, _, kind in cols:
            value = row.get(key)
            if _missing(value):
                text, v = "", ""
            elif kind == "num":
                text, v = i18n.fmt_num(value, lang), str(float(value))
            elif kind == "int":
                text, v = i18n.fmt_int(value, lang), str(float(value))
            elif kind == "pct":
                text, v = i18n.fmt_pct(value, lang), str(float(value))
            elif kind == "lq":
                text = i18n.fmt_num(value, lang)
                lo, hi = row.get("lq_low"), row.get("lq_high")
                if not _missing(lo) and not _missing(hi):
                    text += f" [{i18n.fmt_num(lo, lang)} – {i18n.fmt_num(hi, lang)}]"
                v = str(float(value))
            else:
                text = v = str(value)
            cls = ' class="num"' if kind in ("num", "int", "pct", "lq") else ""
            cells.append(f'<td{cls} data-v="{_e(v)}">{_e(text)}</td>')
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (
        f'<p class="cm-note">{csv_button(table_id, csv_name, lang)}</p><div class="cm-table-wrap">'
        f'<table class="cm-sortable" id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _portfolio_table(portfolio: pd.DataFrame, lang: str) -> str:
    t = i18n.t
    if not len(portfolio):
        return f"<p>{_e(t('no_clusters', lang))}</p>"
    frame = portfolio.copy()
    frame["kind_text"] = [t(f"kind_{k}", lang) for k in frame["kind"]]
    words = (
        {"traded": "exportateur", "local": "de proximité"}
        if lang == "fr"
        else {"traded": "traded", "local": "local"}
    )
    frame["type_text"] = [words.get(str(k), "") for k in frame["sector_type"].fillna("")]
    cols = [
        ("kind_text", t("kind", lang), "text"),
        ("sector", t("sector_code", lang), "text"),
        ("sector_label", t("sector", lang), "text"),
        ("type_text", "exportateur / de proximité" if lang == "fr" else "traded / local", "text"),
        (ESTABLISHMENTS, t("in_territory", lang), "int"),
        ("lq", t("lq_short", lang) + " [95 %]", "lq"),
        ("share_of_sector", t("share_of_sector", lang), "pct"),
        ("rank_among_peers", t("rank_peers", lang), "text"),
        ("related", t("related_short", lang), "text"),
        (CLUSTER_ID, "cluster_id", "text"),
    ]
    return _table(frame, cols, "cm-portfolio", lang, "portefeuille.csv")


def _firms_table(firms: pd.DataFrame, withheld: int, lang: str, index: int) -> str:
    t = i18n.t
    note = f'<p class="cm-note">{_e(t("firms_note", lang, n=withheld))}</p>'
    if not len(firms):
        return note + f"<p>{_e(t('no_firms', lang))}</p>"
    cols = [
        ("name", t("firm_name", lang), "text"),
        ("siret", t("siret", lang), "text"),
        ("commune", t("commune", lang), "text"),
        ("address", t("address", lang), "text"),
        ("size_band", t("size_band", lang), "text"),
        ("sector", t("naf", lang), "text"),
        ("sector_label", t("activity", lang), "text"),
    ]
    if not firms["address"].astype(str).str.len().gt(0).any():
        cols = [c for c in cols if c[0] != "address"]
    return note + _table(firms, cols, f"cm-firms-{index}", lang, f"etablissements_{index}.csv")


def territory_sections(
    result: Any, territory: Any, lang: str, largest: int
) -> tuple[str, str, str]:
    """(header with the summary, portfolio section, fiches section) of a territory."""
    from ..detect.territory import firm_list, portfolio
    from .card import Extras, Largest, cluster_card

    t = i18n.t
    pf = portfolio(result, territory)
    table = result.table
    inside = table[table["unit_id"].astype(str).isin(set(territory.ids.astype(str)))]
    n_clusters = int((pf["kind"] == "cluster").sum()) if len(pf) else 0
    summary = t(
        "territory_summary",
        lang,
        units=i18n.fmt_int(len(territory.ids), lang),
        est=i18n.fmt_int(inside[ESTABLISHMENTS].sum(), lang),
        n=n_clusters,
    )
    header = (
        f'<section id="cm-territory"><h2>{_e(t("your_territory", lang))} : {_e(territory.name)}'
        f"</h2><p>{_e(summary)}</p></section>"
        if lang == "fr"
        else f'<section id="cm-territory"><h2>{_e(t("your_territory", lang))}: '
        f"{_e(territory.name)}</h2><p>{_e(summary)}</p></section>"
    )
    port = (
        f'<section id="cm-portfolio-section"><h2>{_e(t("portfolio", lang))}</h2>'
        f'<p class="cm-note">{_e(t("portfolio_note", lang))}</p>'
        f"{_portfolio_table(pf, lang)}</section>"
    )
    largest_of, extras = Largest(result), Extras(result)
    fiches = []
    clusters = result.clusters.set_index(CLUSTER_ID, drop=False)
    ids = pf.loc[pf["kind"] == "cluster", CLUSTER_ID] if len(pf) else []
    for i, cid in enumerate(ids, start=1):
        row = clusters.loc[cid]
        card = cluster_card(row, lang, largest_of(row, largest, lang), extras(row, lang))
        firms, withheld = firm_list(result, territory, cluster_id=cid)
        rows = "".join(f"<tr><th scope=row>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in card["r"])
        lists = "".join(
            f"<div><b>{_e(title)}</b><ul>{''.join(f'<li>{_e(x)}</li>' for x in lines)}</ul></div>"
            for title, lines in card.get("s", [])
        )
        fiches.append(
            f'<article class="cm-leading" data-cluster="{_e(cid)}"><h3>{i}. {_e(card["t"])}'
            f' — {_e(row.get("place", ""))}</h3><div class="cm-fiche-grid"><table>{rows}'
            f"</table>{lists}</div><h4>{_e(t('who_to_call', lang))}</h4>"
            f"{_firms_table(firms, withheld, lang, i)}</article>"
        )
    fiche_html = (
        f'<section id="cm-territory-fiches"><h2>{_e(t("who_to_call", lang))}</h2>'
        + ("".join(fiches) if fiches else f"<p>{_e(t('no_clusters', lang))}</p>")
        + "</section>"
    )
    return header, port, fiche_html
