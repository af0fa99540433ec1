"""The HTML report opened in headless Chromium with no network.

A copy of the report gets a probe script at the very top of ``<head>`` (records
``window.onerror``, ``console.error``, CSP violations and any alert/confirm/prompt call) and
one at the end of ``<body>`` that, after load, counts the drawn cluster shapes (SVG paths of
class ``cm-cluster``), unticks one sector in the Leaflet layer control, counts again, opens
a cluster's popup, sorts the cluster table and writes a JSON result into
``<pre id="test-result">``. Chromium runs with ``--dump-dom`` and every host name resolving
to nothing, so tiles (and anything else) cannot load. The probes' hashes are added to the
report's Content-Security-Policy; nothing else about the report is changed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_maps import XSS_IMG, XSS_SCRIPT, make_result

import clustermap as cm
from clustermap.viz import maps

CHROMIUM = next(
    (
        p
        for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
        if p and os.path.exists(p)
    ),
    None,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed"),
]

HEAD_PROBE = """
window.__cm = {errors: [], dialogs: [], csp: []};
window.addEventListener('error', function (e) {
  window.__cm.errors.push(String(e.message || e.type));
});
window.addEventListener('securitypolicyviolation', function (e) {
  window.__cm.csp.push(e.violatedDirective + ' ' + (e.blockedURI || 'inline'));
});
(function () {
  var orig = console.error;
  console.error = function () {
    window.__cm.errors.push('console.error: ' + Array.prototype.join.call(arguments, ' '));
    return orig.apply(console, arguments);
  };
})();
['alert', 'confirm', 'prompt'].forEach(function (name) {
  window[name] = function (m) { window.__cm.dialogs.push(name + ':' + m); return null; };
});
"""

TAIL_PROBE = """
window.addEventListener('load', function () {
  setTimeout(function () {
    var r = {errors: window.__cm.errors, dialogs: window.__cm.dialogs, csp: window.__cm.csp};
    function count(sel) { return document.querySelectorAll(sel).length; }
    r.before = count('path.cm-cluster');
    r.before_layer = count('path.cm-layer-__LAYER__');
    r.context = count('path.cm-context');
    var labels = Array.prototype.slice.call(
      document.querySelectorAll('.leaflet-control-layers-overlays label'));
    r.overlays = labels.map(function (l) { return l.textContent.trim(); });
    var target = labels.filter(function (l) { return l.textContent.indexOf('__LABEL__') >= 0; })[0];
    target.querySelector('input').click();
    r.after = count('path.cm-cluster');
    r.after_layer = count('path.cm-layer-__LAYER__');
    target.querySelector('input').click();
    r.back = count('path.cm-cluster');
    // open the fiche of the first cluster of the layer
    var p = document.querySelector('path.cm-layer-__LAYER__');
    var b = p.getBoundingClientRect();
    p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window,
      clientX: b.left + b.width / 2, clientY: b.top + b.height / 2}));
    var pop = document.querySelector('.leaflet-popup-content');
    r.popup_text = pop ? pop.textContent : null;
    r.popup_elements = pop ? pop.querySelectorAll('script, img, b').length : null;
    // registry text in the page is text, not elements
    r.body_has_script_text = document.body.textContent.indexOf('__XSS__') >= 0;
    r.img_x = count('img[src="x"]');
    r.n_scripts = document.scripts.length;
    // sort the cluster table by establishments (first click, then second click)
    var th = document.querySelectorAll('#cm-cluster-table thead th')[4];
    th.querySelector('button').click();
    function col() {
      return Array.prototype.slice.call(document.querySelectorAll('#cm-cluster-table tbody tr'))
        .map(function (tr) { return tr.cells[4].getAttribute('data-v'); });
    }
    r.sorted_asc = col();
    th.querySelector('button').click();
    r.sorted_desc = col();
    r.rows = count('#cm-cluster-table tbody tr');
    var out = document.createElement('pre');
    out.id = 'test-result';
    out.textContent = JSON.stringify(r);
    document.body.appendChild(out);
  }, 1500);
});
"""


def _sha(body: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"


def _instrument(page: str, tail: str) -> str:
    head = f"<script>{HEAD_PROBE}</script>"
    end = f'<script id="cm-probe">{tail}</script>'
    page = page.replace("script-src ", f"script-src {_sha(HEAD_PROBE)} {_sha(tail)} ", 1)
    # the probe must run before any page script: right after the CSP meta
    meta_end = page.index(">", page.index("Content-Security-Policy")) + 1
    page = page[:meta_end] + head + page[meta_end:]
    return page.replace("</body>", end + "</body>", 1)


def _chromium(url: str, tmp: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-extensions",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # no network at all
        f"--user-data-dir={tmp / 'profile'}",
        "--virtual-time-budget=15000",
        *extra,
        url,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)


def _run_probe(source: str, tail: str, tmp: Path, *extra: str) -> dict:
    """Open ``source`` with the probe ``tail`` in headless Chromium; return its JSON result."""
    probe = tmp / "probe.html"
    probe.write_text(_instrument(source, tail), encoding="utf-8")
    proc = _chromium(probe.as_uri(), tmp, "--dump-dom", *extra)
    match = re.search(r'<pre id="test-result">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert match, f"no test result in the page; stderr tail: {proc.stderr[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


@pytest.fixture(scope="module")
def browser_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("browser")
    result = make_result()
    report = cm.write_report(result, tmp / "report.html")
    tail = (
        TAIL_PROBE.replace("__LAYER__", "25_62A")
        .replace("__LABEL__", "25.62A")
        .replace("__XSS__", XSS_SCRIPT.replace("/", "\\/"))
    )
    probe = tmp / "probe.html"
    source = report.read_text(encoding="utf-8")
    page = _instrument(source, tail)
    probe.write_text(page, encoding="utf-8")
    proc = _chromium(probe.as_uri(), tmp, "--dump-dom")
    match = re.search(r'<pre id="test-result">(.*?)</pre>', proc.stdout, re.DOTALL)
    assert match, f"no test result in the page; stderr tail: {proc.stderr[-2000:]}"
    out = json.loads(html.unescape(match.group(1)))
    out["scripts_in_source"] = len(re.findall(r"<script[ >]", source)) + 2  # + the 2 probes
    return result, out


def test_page_loads_without_javascript_errors_or_dialogs(browser_run):
    _, r = browser_run
    assert r["errors"] == []
    assert r["dialogs"] == []
    assert r["csp"] == []  # nothing tried to run outside the page's own scripts


def test_one_shape_per_cluster_and_layer_toggle(browser_run):
    result, r = browser_run
    n = len(result.clusters)
    n_layer = int((result.clusters["sector"] == "25.62A").sum())
    assert r["rows"] == n == 3
    assert r["before"] == n
    assert r["before_layer"] == n_layer == 2
    assert r["after"] == n - n_layer
    assert r["after_layer"] == 0
    assert r["back"] == n
    assert r["context"] >= 1  # background outlines drawn without tiles
    assert r["overlays"][1:] == ["25.62A — Décolletage", f"10.71C — Boulangerie {XSS_SCRIPT}"]


def test_registry_text_shows_as_text(browser_run):
    _, r = browser_run
    assert r["body_has_script_text"] is True
    assert r["img_x"] == 0
    # no script element other than those written in the file (none made from the data)
    assert r["n_scripts"] == r["scripts_in_source"]
    assert XSS_SCRIPT in r["popup_text"] and XSS_IMG in r["popup_text"]
    assert "Quotient de localisation2,5 (intervalle à 95 % : 2,1 – 3)" in r["popup_text"]
    assert r["popup_elements"] == 0


def test_cluster_table_sorts(browser_run):
    """Numbers sort largest first on the first click, then smallest first."""
    result, r = browser_run
    values = result.clusters["establishments"].astype(float).tolist()
    assert [float(v) for v in r["sorted_asc"]] == sorted(values, reverse=True)  # 1st click
    assert [float(v) for v in r["sorted_desc"]] == sorted(values)  # 2nd click


def test_offline_map_screenshot_is_not_blank(tmp_path):
    """A map alone (tiles unreachable): grey background, outlines and coloured clusters."""
    import matplotlib.image as mpimg

    result = make_result()
    page = tmp_path / "map.html"
    cm.explore_clusters(result, offline=True, context=True).save(str(page))
    shot = tmp_path / "shot.png"
    proc = _chromium(page.as_uri(), tmp_path, f"--screenshot={shot}", "--window-size=1280,900")
    assert shot.exists(), proc.stderr[-2000:]
    img = (mpimg.imread(shot)[..., :3] * 255).round().astype(int)
    pixels = img.reshape(-1, 3)
    assert len(np.unique(pixels, axis=0)) > 50
    assert (pixels.min(axis=1) < 250).mean() > 0.5  # Leaflet's grey background, not white
    # the first sector's fill (PALETTE[0] at opacity 0.45) over Leaflet's #ddd background
    fill = np.array([int(maps.PALETTE[0][i : i + 2], 16) for i in (1, 3, 5)])
    blended = 0.45 * fill + 0.55 * np.array([221, 221, 221])
    near = np.abs(pixels - blended).max(axis=1) <= 8
    assert near.mean() > 0.005


def test_demo_report_draws_one_shape_per_table_row(tmp_path):
    """The bundled demo, end to end: shapes drawn = rows of the table, no error."""
    pytest.importorskip("clustermap.detect")
    demo = cm.load_demo()
    result = cm.detect_clusters(demo.registry, demo.units)
    report = cm.write_report(result, tmp_path / "demo.html")
    first = str(result.clusters["sector"].iloc[0])
    layer = re.sub(r"[^A-Za-z0-9_-]", "_", first)
    tail = (
        TAIL_PROBE.replace("__LAYER__", layer)
        .replace("__LABEL__", first)
        .replace("__XSS__", "Décolletage")
    )
    r = _run_probe(report.read_text(encoding="utf-8"), tail, tmp_path)
    n = len(result.clusters)
    n_layer = int((result.clusters["sector"].astype(str) == first).sum())
    assert r["errors"] == [] and r["dialogs"] == [] and r["csp"] == []
    assert r["rows"] == r["before"] == n > 0
    assert r["after"] == n - n_layer
    assert r["back"] == n


# ------------------------------------------------- registry text as data, CSP (security)


def _dump(page: Path, tmp: Path) -> str:
    proc = _chromium(page.as_uri(), tmp, "--dump-dom", "--enable-logging=stderr", "--v=0")
    assert "<body" in proc.stdout, proc.stderr[-2000:]
    return proc.stdout + "\n<!--stderr-->\n" + proc.stderr


def _legend_text(dom: str) -> str:
    match = re.search(r'class="[^"]*cm-legend[^"]*".*?</div>\s*</div>', dom, re.DOTALL)
    assert match, "no legend: the map's scripts did not run"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(0)))


def test_template_syntax_in_names_shows_as_typed_in_the_browser(tmp_path):
    from test_security import JINJA_BROKEN, JINJA_EVAL, hostile_result

    result = hostile_result()
    report = cm.write_report(result, tmp_path / "r.html")
    explored = tmp_path / "m.html"
    result.explore(offline=True).save(str(explored))
    for page in (report, explored):
        dom = _dump(page, tmp_path)
        legend = _legend_text(dom)
        assert f"25.62A — {JINJA_EVAL}" in legend and "Bar 49" not in dom
        assert f"10.71C — {JINJA_BROKEN}" in legend
        assert "Content Security Policy" not in dom.split("<!--stderr-->")[1]


def test_a_script_injected_through_data_is_blocked_by_the_policy(tmp_path, monkeypatch):
    """Simulated escaping bug: the script is in the page, the CSP keeps it from running."""
    from clustermap.viz import report as report_module

    monkeypatch.setattr(report_module, "_e", lambda value: str(value))
    result = make_result()
    result.clusters["place"] = ["<script>document.title='pwned'</script>", "a", "b"]
    page = cm.write_report(result, tmp_path / "r.html", title="Rapport")
    assert "<script>document.title='pwned'</script>" in page.read_text(encoding="utf-8")
    dom = _dump(page, tmp_path)
    title = re.search(r"<title>(.*?)</title>", dom).group(1)
    assert title == "Rapport"
    stderr = dom.split("<!--stderr-->")[1]
    assert "violates the following Content Security Policy" in stderr  # it was blocked ...
    assert "25.62A" in _legend_text(dom)  # ... while the page's own scripts ran


TERRITORY_PROBE = """
window.addEventListener('load', function () {
  setTimeout(function () {
    var r = {errors: window.__cm.errors, dialogs: window.__cm.dialogs, csp: window.__cm.csp};
    function rows(id) {
      return Array.prototype.map.call(document.querySelectorAll('#' + id + ' tbody tr'),
        function (tr) { return Array.prototype.map.call(tr.cells, function (c) {
          return c.textContent; }); });
    }
    r.portfolio = rows('cm-portfolio');
    r.firms = rows('cm-firms-1');
    r.csv = window.cmTableCsv('cm-firms-1');
    r.territory_paths = document.querySelectorAll('path.cm-territory').length;
    r.n_scripts = document.scripts.length;
    r.buttons = document.querySelectorAll('button.cm-csv').length;
    var out = document.createElement('pre');
    out.id = 'test-result';
    out.textContent = JSON.stringify(r);
    document.body.appendChild(out);
  }, 1500);
});
"""


def test_territory_report_portfolio_firms_and_csv_in_the_browser(tmp_path):
    """The report opened on a territory: portfolio rows, the firm list with a hostile name
    shown as text, and the CSV of the firm table built by the page, offline."""
    import warnings

    demo = cm.load_demo()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = cm.detect_clusters(demo.registry, demo.units, local_statistic=None)
    cid = res.clusters.loc[res.clusters["sector"] == "25.62A", "cluster_id"].iloc[0]
    cells = res.table[res.table["cluster_id"] == cid]
    ids = cells.nlargest(8, "establishments")["unit_id"].tolist()
    est = res.establishments.copy()
    member = est.index[(est["cluster_id"] == cid) & est["unit_id"].isin(ids)][0]
    est.loc[member, "name"] = XSS_SCRIPT
    est.loc[member, "employees"] = 1e6  # listed first
    res = cm.ClusterResult(**{**res.__dict__, "establishments": est})
    territory = cm.resolve_territory(ids, res.units, name="Vallée")
    report = cm.write_report(res, tmp_path / "territoire.html", territory=territory)
    source = report.read_text(encoding="utf-8")
    out = _run_probe(source, TERRITORY_PROBE, tmp_path)
    assert out["errors"] == [] and out["dialogs"] == [] and out["csp"] == []
    pf = res.portfolio(ids)
    assert len(out["portfolio"]) == len(pf)
    assert out["portfolio"][0][1] == "25.62A"
    firms = res.firms(ids, cluster_id=cid)
    assert len(out["firms"]) == len(firms)
    assert out["firms"][0][0] == XSS_SCRIPT  # the name, as text
    assert out["n_scripts"] == len(re.findall(r"<script[ >]", source)) + 2
    lines = out["csv"].strip().split("\r\n")
    assert len(lines) == len(firms) + 1
    assert lines[1].startswith('"' + XSS_SCRIPT + '"')
    assert out["territory_paths"] >= 1 and out["buttons"] >= 3


LAYOUT_PROBE = """
window.addEventListener('load', function () {
  setTimeout(function () {
    var r = {errors: window.__cm.errors, dialogs: window.__cm.dialogs, csp: window.__cm.csp};
    var ctl = document.querySelector('.leaflet-control-layers');
    r.collapsed = !ctl.classList.contains('leaflet-control-layers-expanded');
    function box(el) { var b = el.getBoundingClientRect();
      return {l: b.left, r: b.right, t: b.top, b: b.bottom}; }
    var a = box(ctl), g = box(document.querySelector('.cm-legend'));
    r.overlap = !(a.r <= g.l || g.r <= a.l || a.b <= g.t || g.b <= a.t);
    var wrap = document.querySelector('#cm-cluster-table').parentElement;
    r.hscroll = wrap.scrollWidth > wrap.clientWidth + 1;
    r.rows = document.querySelectorAll('#cm-cluster-table tbody tr').length;
    r.csv_lines = window.cmTableCsv('cm-cluster-table').trim().split('\\r\\n').length;
    // a click on a table row opens that cluster's fiche
    document.querySelector('#cm-cluster-table tr[data-cluster="__ROW__"]').click();
    var pop = document.querySelector('.leaflet-popup-content');
    r.row_popup = pop ? pop.textContent : null;
    r.row_fiches = pop ? pop.querySelectorAll('.cm-fiche').length : 0;
    // a click where two clusters overlap lists both
    var p = document.querySelector('path.cm-layer-__OVER__');
    var b = p.getBoundingClientRect();
    p.dispatchEvent(new MouseEvent('click', {bubbles: true, cancelable: true, view: window,
      clientX: b.left + b.width / 2, clientY: b.top + b.height / 2}));
    var pops = document.querySelectorAll('.leaflet-popup-content');  // the new one is last
    pop = pops[pops.length - 1];
    r.over_fiches = pop ? pop.querySelectorAll('.cm-fiche').length : 0;
    r.over_text = pop ? pop.textContent : null;
    var out = document.createElement('pre');
    out.id = 'test-result';
    out.textContent = JSON.stringify(r);
    document.body.appendChild(out);
  }, 1500);
});
"""


def test_report_layout_at_1366_by_768(tmp_path):
    """On a laptop screen: layer control collapsed, legend apart from it, the cluster table
    without sideways scroll, a row click opens its fiche, the CSV holds the rows, and a click
    where two clusters of different sectors overlap lists both."""
    result = make_result()
    extra = result.clusters.iloc[[0]].copy()
    extra["cluster_id"], extra["sector"], extra["sector_label"] = "22.29A-1", "22.29A", "Plast"
    clusters = pd.concat([result.clusters, extra], ignore_index=True)
    result = cm.ClusterResult(**{**result.__dict__, "clusters": clusters})
    report = cm.write_report(result, tmp_path / "report.html")
    tail = LAYOUT_PROBE.replace("__ROW__", "10.71C-1").replace("__OVER__", "22_29A")
    r = _run_probe(report.read_text(encoding="utf-8"), tail, tmp_path, "--window-size=1366,768")
    assert r["errors"] == [] and r["csp"] == [] and r["dialogs"] == []
    assert r["collapsed"] is True
    assert r["overlap"] is False
    assert r["hscroll"] is False
    assert r["csv_lines"] == r["rows"] + 1 == len(clusters) + 1
    assert r["row_fiches"] == 1 and "Boulangerie" in r["row_popup"]
    assert r["over_fiches"] == 2
    assert "Plast" in r["over_text"] and "Décolletage" in r["over_text"]


TRENDS_PROBE = """
window.addEventListener('load', function () {
  setTimeout(function () {
    var r = {errors: window.__cm.errors, dialogs: window.__cm.dialogs, csp: window.__cm.csp};
    r.rows = Array.prototype.map.call(document.querySelectorAll('#cm-trends-table tbody tr'),
      function (tr) { return [tr.cells[1].textContent, tr.cells[2].textContent]; });
    r.badges = Array.prototype.map.call(document.querySelectorAll('span.cm-trend'),
      function (s) { return [s.getAttribute('data-trend'), getComputedStyle(s).backgroundColor]; });
    r.sparks = document.querySelectorAll('#cm-trends svg.cm-spark').length;
    r.bubbles = document.querySelectorAll('#cm-cmp-chart circle').length;
    r.csv = window.cmTableCsv('cm-trends-table');
    var out = document.createElement('pre');
    out.id = 'test-result';
    out.textContent = JSON.stringify(r);
    document.body.appendChild(out);
  }, 1500);
});
"""


def test_trends_section_in_the_browser(tmp_path):
    """The Trends section of a followed panel: one row per followed cluster with its class
    coloured by the page's style sheet, a hostile place name shown as text, the chart drawn,
    the table's CSV built offline, and no error or policy violation."""
    from test_trends import PLANTED, _grid, _panel

    units = _grid()
    units.loc["c000", "name"] = XSS_SCRIPT
    res = cm.cluster_trends(_panel(), units)
    report = res.to_html(tmp_path / "dynamique.html", territory=list(units.index[:30]))
    out = _run_probe(report.read_text(encoding="utf-8"), TRENDS_PROBE, tmp_path)
    assert out["errors"] == [] and out["dialogs"] == [] and out["csp"] == []
    assert len(out["rows"]) == len(PLANTED) == out["sparks"]
    assert any(XSS_SCRIPT in place for place, _ in out["rows"])
    colours = dict(out["badges"])
    assert colours["new"] == "rgb(47, 133, 90)" and colours["disappeared"] == "rgb(155, 44, 44)"
    assert out["bubbles"] >= 2
    assert len(out["csv"].strip().split("\r\n")) == len(PLANTED) + 1
