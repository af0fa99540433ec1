"""Security and reliability regressions: registry text is data, outputs never destroy inputs.

Each test here failed before its fix (see the module of the mechanism named in each).
"""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pytest
from test_maps import make_result

import clustermap as cm
from clustermap._offline import SCRIPT_RE, script_hashes

# Jinja2 payloads: arithmetic, access to Python internals, and a broken tag
JINJA_EVAL = "Bar {{7*7}}"
JINJA_PY = "PWN {{ cycler.__init__.__globals__.os.getcwd() }}"
JINJA_BROKEN = "Chez {% le 100 %"
JINJA_COMMENT = "Note {# hidden"


def hostile_result() -> cm.ClusterResult:
    result = make_result()
    result.clusters["sector_label"] = [JINJA_EVAL, JINJA_PY, JINJA_BROKEN]
    result.clusters["place"] = [JINJA_COMMENT, JINJA_EVAL, "{{ config }}"]
    result.units["name"] = [JINJA_PY] * len(result.units)
    result.establishments["name"] = [JINJA_EVAL, JINJA_PY, JINJA_BROKEN, JINJA_COMMENT]
    result.registry_summary = {
        "source": "reg {{7*7}}.csv",
        "rows": 10,
        "kept": 10,
        "rejects": {},
    }
    return result


def _assert_inert(page: str, payloads=(JINJA_EVAL, JINJA_PY, JINJA_BROKEN, JINJA_COMMENT)) -> None:
    assert "Bar 49" not in page
    assert os.getcwd() not in page
    # each payload is present as data (JSON escapes < > & only, braces stay)
    for payload in payloads:
        as_json = json.dumps(payload, ensure_ascii=False)[1:-1]
        assert as_json in page or payload.replace("{", "&#123;").replace("}", "&#125;") in page


@pytest.mark.parametrize("offline", [True, False])
def test_names_are_never_evaluated_as_templates_in_maps(offline):
    result = hostile_result()
    maps = {
        (JINJA_EVAL, JINJA_PY, JINJA_BROKEN, JINJA_COMMENT): result.explore(offline=offline),
        (JINJA_EVAL, JINJA_PY): cm.explore_establishments(result.establishments, offline=offline),
        (JINJA_PY,): cm.explore_lq(result, "25.62A", offline=offline),
    }
    for payloads, m in maps.items():
        _assert_inert(m.get_root().render(), payloads)
    # layer names, shown as HTML by Leaflet's layer control, are escaped for HTML and Jinja2
    page = maps[(JINJA_EVAL, JINJA_PY, JINJA_BROKEN, JINJA_COMMENT)].get_root().render()
    assert "Bar \\u0026#123;\\u0026#123;7*7\\u0026#125;\\u0026#125;" in page


def test_names_are_never_evaluated_as_templates_in_the_report(tmp_path):
    result = hostile_result()
    out = cm.write_report(result, tmp_path / "r.html", title="Titre {{7*7}}")
    page = out.read_text(encoding="utf-8")
    _assert_inert(page)
    assert "Titre {{7*7}}" in page


def test_report_policy_hashes_only_the_scripts_the_code_writes(tmp_path, monkeypatch):
    """A script that got into the page through data is not whitelisted by the CSP."""
    from clustermap import report

    result = make_result()
    injected = "document.title='pwned'"
    # simulate an escaping bug: the text escaper lets markup through
    monkeypatch.setattr(report, "_e", lambda value: str(value))
    result.clusters["place"] = [f"<script>{injected}</script>", "a", "b"]
    page = cm.write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"<script>{injected}</script>" in page  # the bug let it in ...
    policy = re.search(r"script-src ([^;]+);", page).group(1).split()
    assert script_hashes([injected])[0] not in policy  # ... but it may not run
    # (make_result's labels hold "<script>alert(1)</script>": let in too, not allowed either)
    assert script_hashes(["alert(1)"])[0] not in policy
    # the policy lists every script the page needs: the map's, the sorter's, Leaflet's
    bodies = SCRIPT_RE.findall(page)
    own = [b for b in bodies if b not in (injected, "alert(1)")]
    assert len(own) == 5
    assert set(script_hashes(own)) == set(policy)


def test_offline_explore_maps_carry_a_policy_of_their_own_scripts():
    result = make_result()
    page = result.explore(offline=True).get_root().render()
    meta = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert meta is not None
    assert page.index("Content-Security-Policy") < page.index("<script")
    policy = re.search(r"script-src ([^;]+);", meta.group(1)).group(1).split()
    assert set(policy) == set(script_hashes(SCRIPT_RE.findall(page)))
    assert not re.search(r"<script[^>]*\ssrc=", page)
    online = result.explore().get_root().render()
    assert "Content-Security-Policy" not in online  # CDN scripts: no policy claimed


def test_csv_export_neutralises_spreadsheet_formulas(tmp_path):
    result = make_result()
    result.clusters["place"] = ['=HYPERLINK("http://x")', "+SUM(A1)", "-2.5"]
    out = result.to_file(tmp_path / "c.csv")
    back = pd.read_csv(out, dtype=str)
    assert back["place"].tolist() == ["'=HYPERLINK(\"http://x\")", "'+SUM(A1)", "-2.5"]
