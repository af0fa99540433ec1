"""Security and reliability regressions: registry text is data, outputs never destroy inputs.

Each test here failed before its fix (see the module of the mechanism named in each).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from test_maps import make_result

import clustermap as cm
from clustermap.viz.offline import SCRIPT_RE, script_hashes

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
    from clustermap.viz import report

    result = make_result()
    injected = "document.title='pwned'"
    # simulate an escaping bug: the text escaper lets markup through
    monkeypatch.setattr(report, "_e", lambda value: str(value))
    result.clusters["place"] = [f"<script>{injected}</script>", "a", "b"]
    page = cm.write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"<script>{injected}</script>" in page  # the bug let it in ...
    assert page.count("Content-Security-Policy") == 1  # one policy: the map's own is dropped
    policy = re.search(r"script-src ([^;]+);", page).group(1).split()
    assert script_hashes([injected])[0] not in policy  # ... but it may not run
    # (make_result's labels hold "<script>alert(1)</script>": let in too, not allowed either)
    assert script_hashes(["alert(1)"])[0] not in policy
    # the policy lists every script the page needs: the map's, the sorter's, the CSV
    # download's, Leaflet's
    bodies = SCRIPT_RE.findall(page)
    own = [b for b in bodies if b not in (injected, "alert(1)")]
    assert len(own) == 6  # + the CSV download of the tables
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
    online = result.explore(map_options={"offline": False}).get_root().render()
    assert "Content-Security-Policy" not in online  # CDN scripts: no policy claimed


def test_csv_export_neutralises_spreadsheet_formulas(tmp_path):
    result = make_result()
    result.clusters["place"] = ['=HYPERLINK("http://x")', "+SUM(A1)", "-2.5"]
    out = result.to_file(tmp_path / "c.csv")
    back = pd.read_csv(out, dtype=str)
    assert back["place"].tolist() == ['\'=HYPERLINK("http://x")', "'+SUM(A1)", "-2.5"]


# ----------------------------------------------------------------------------- item 2


def _cli(argv, capsys):
    from clustermap import cli

    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def cli_inputs(tmp_path):
    demo = cm.load_demo()
    registry = tmp_path / "reg.csv"
    registry.write_bytes(b"siret,longitude,latitude\n00000000000018,6.5,46.0\n")
    units = tmp_path / "u.parquet"
    demo.units.head(3).to_parquet(units)
    return registry, units


@pytest.mark.parametrize(
    ("extra", "flag"),
    [
        (["--out", "{registry}"], "--out"),
        (["--out", "{units}"], "--out"),
        (["--gpkg", "{registry}"], "--gpkg"),
        (["--gpkg", "{units}"], "--gpkg"),
        (["--out", "{tmp}/x.gpkg", "--gpkg", "{tmp}/x.gpkg"], "--out"),
        (["--out", "{tmp}/./sub/../reg.csv"], "--out"),
    ],
)
def test_cli_refuses_outputs_that_overwrite_inputs_or_each_other(
    cli_inputs, capsys, monkeypatch, extra, flag
):
    registry, units = cli_inputs
    (registry.parent / "sub").mkdir()
    before = {p: p.read_bytes() for p in (registry, units)}
    called = []
    monkeypatch.setattr(cm, "read_registry", lambda *a, **k: called.append(1))
    fmt = {"registry": registry, "units": units, "tmp": registry.parent}
    argv = ["detect", str(registry), "--units", str(units), "-q"]
    argv += [a.format(**fmt) for a in extra]
    code, _out, err = _cli(argv, capsys)
    assert code == 2, err
    assert called == []  # refused before any work
    assert err.startswith(f"clustermap: erreur : {flag} ") and len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in (registry, units)} == before
    assert not (registry.parent / "x.gpkg").exists()


def test_cli_refuses_an_output_reached_through_a_symlink(cli_inputs, capsys):
    registry, _units = cli_inputs
    link = registry.parent / "link.html"
    link.symlink_to(registry)
    code, _, err = _cli(["detect", str(registry), "--out", str(link), "-q", "--lang", "en"], capsys)
    assert code == 2 and "is the input file registry" in err


def test_cli_checks_output_folders_are_writable_before_the_run(cli_inputs, capsys, monkeypatch):
    registry, _ = cli_inputs
    called = []
    monkeypatch.setattr(cm, "read_registry", lambda *a, **k: called.append(1))
    # /proc refuses new files even to root (a chmod'ed folder would not stop root)
    code, _, err = _cli(["detect", str(registry), "--out", "/proc/r.html", "-q"], capsys)
    assert code == 2 and called == []
    assert "impossible d'écrire dans le dossier de --out /proc/r.html" in err
    code, _, err = _cli(["detect", str(registry), "--out", str(registry.parent), "-q"], capsys)
    assert code == 2 and "est un dossier" in err


# ----------------------------------------------------------------------------- item 5


def _write_report(path: str) -> str:
    import sys

    sys.path.insert(0, os.path.dirname(__file__))
    from test_maps import make_result

    try:
        cm.write_report(make_result(), path, date="2026-01-01")
    except Exception as exc:  # reported to the parent
        return f"{type(exc).__name__}: {exc}"
    return ""


def test_concurrent_report_writers_never_leave_a_partial_file(tmp_path):
    import multiprocessing as mp

    target = tmp_path / "race.html"
    with mp.get_context("spawn").Pool(4) as pool:
        errors = pool.map(_write_report, [str(target)] * 8)
    assert errors == [""] * 8
    page = target.read_text(encoding="utf-8")
    expected = tmp_path / "one.html"
    cm.write_report(make_result(), expected, date="2026-01-01")
    assert len(page) == len(expected.read_text(encoding="utf-8")) and page.endswith("</html>\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.html", "race.html"]


def test_interrupted_writes_leave_the_target_and_no_temporary_file(tmp_path, monkeypatch):
    from clustermap.core import atomic as _atomic

    target = tmp_path / "r.html"
    target.write_text("previous report", encoding="utf-8")

    def interrupted_write(self, text, encoding=None):
        with open(self, "w", encoding=encoding) as fh:
            fh.write(text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(_atomic.Path, "write_text", interrupted_write)
    with pytest.raises(KeyboardInterrupt):
        cm.write_report(make_result(), target)
    assert target.read_text(encoding="utf-8") == "previous report"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]


def test_geopackage_is_written_atomically_and_replaced_whole(tmp_path, monkeypatch):
    import pyogrio

    result = make_result()
    out = tmp_path / "c.gpkg"
    result.to_file(out)
    result.to_file(out)  # a second write replaces the file, it does not append
    layers = dict(pyogrio.list_layers(out))
    assert set(layers) == {"clusters", "units_x_sectors"}
    assert len(pyogrio.read_dataframe(out, layer="clusters")) == len(result.clusters)

    def broken(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pyogrio, "write_dataframe", broken)
    with pytest.raises(KeyboardInterrupt):
        result.to_file(out)
    assert [p.name for p in tmp_path.iterdir()] == ["c.gpkg"]
    assert len(pyogrio.read_dataframe(out, layer="clusters")) == len(result.clusters)


# ----------------------------------------------------------------------------- item 3

_CHILD = """
import warnings
warnings.simplefilter("always")
import numpy as np
with warnings.catch_warnings(record=True) as caught:
    from clustermap.core import numba_cache as _numba_cache
    from clustermap.stats import _kernels
    import numba
draws = _kernels.unit_draws(np.uint64(7), 0, 10, 3, 0, 2)
print("draws", draws.shape, "cache", _numba_cache.CACHE, "dir", numba.config.CACHE_DIR)
for w in caught:
    print("warning", type(w.message).__name__, str(w.message))
"""


def _read_only_copy_of_the_package(tmp: str) -> str:
    import shutil

    src = os.path.dirname(cm.__file__)
    dest = os.path.join(tmp, "pkg", "clustermap")
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__"))
    for root, _dirs, files in os.walk(os.path.join(tmp, "pkg")):
        os.chmod(root, 0o555)
        for f in files:
            os.chmod(os.path.join(root, f), 0o444)
    return os.path.join(tmp, "pkg")


def _run_with_read_only(code: str, env: dict, read_only: list[str]) -> subprocess.CompletedProcess:
    """Run ``code`` in a child that cannot write to the ``read_only`` folders.

    Root writes through permission bits, so as root the folders are bind-mounted read-only
    in a private mount namespace (``unshare -m``); otherwise their permission bits suffice.
    """
    argv = [sys.executable, "-c", code]
    if os.geteuid() == 0:
        mounts = " && ".join(
            f"mount --bind {d} {d} && mount -o remount,bind,ro {d}" for d in read_only
        )
        argv = ["unshare", "-m", "sh", "-c", f'{mounts} && exec "$@"', "sh", *argv]
    return subprocess.run(
        argv,
        env=env,
        cwd=env.get("HOME"),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.mark.parametrize("tmp_writable", [True, False])
def test_read_only_package_and_home_fall_back_to_another_cache_or_none(tmp_writable):
    import shutil
    import tempfile

    tmp = tempfile.mkdtemp()
    try:
        os.chmod(tmp, 0o755)
        pkg = _read_only_copy_of_the_package(tmp)
        tmpdir = os.path.join(tmp, "tmpdir")
        os.mkdir(tmpdir)
        os.chmod(tmpdir, 0o777 if tmp_writable else 0o555)
        home = os.path.join(tmp, "home")
        os.mkdir(home, 0o555)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": pkg,
            "TMPDIR": tmpdir,
            "NUMBA_NUM_THREADS": "1",
            "HOME": home,
        }  # no XDG_CACHE_HOME
        # no writable temporary folder at all: Python's gettempdir() also tries /tmp,
        # /var/tmp and the working directory (only root can make those read-only here)
        read_only = [pkg, home] + ([] if tmp_writable else [tmpdir, "/tmp", "/var/tmp"])
        if not tmp_writable and os.geteuid() != 0:
            pytest.skip("making /tmp read-only needs root (a private mount namespace)")
        probe = _run_with_read_only(f"open({pkg!r} + '/x', 'w')", env, read_only)
        if os.geteuid() == 0 and "Read-only file system" not in probe.stderr:
            pytest.skip(f"cannot make a read-only folder here (unshare -m): {probe.stderr[-200:]}")
        proc = _run_with_read_only(_CHILD, env, read_only)
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.splitlines()
        assert lines[0].startswith("draws (2, 3) cache " + str(tmp_writable))
        warned = [line for line in lines if line.startswith("warning ClustermapWarning")]
        assert len(warned) == 1, proc.stdout
        if tmp_writable:
            cache_dir = os.path.join(tmpdir, f"clustermap-numba-{os.getuid()}")
            assert lines[0].endswith("dir " + cache_dir)
            assert any(f.endswith(".nbi") for _, _, fs in os.walk(cache_dir) for f in fs)
        else:
            assert "compiled for this process only" in warned[0]
    finally:
        for root, dirs, _ in os.walk(tmp):
            for d in dirs:
                os.chmod(os.path.join(root, d), 0o755)
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- items 6, 7


HEADER = "siret,activitePrincipaleEtablissement,codeCommuneEtablissement,longitude,latitude"


def test_zip_with_several_files_is_refused_with_the_list(tmp_path):
    import zipfile

    body = f"{HEADER}\n00000000000018,25.62A,74081,6.5,46.0\n"
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a.csv", body)
        archive.writestr("b.csv", body)
    with pytest.raises(cm.errors.DataFileError, match=r"holds 2 \(a.csv, b.csv\)"):
        cm.read_registry(path)
    fake = tmp_path / "fake.zip"
    fake.write_bytes(b"not a zip archive")
    with pytest.raises(cm.errors.DataFileError, match=r"fake\.zip: cannot be opened as a zip"):
        cm.read_registry(fake)


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_header_longer_than_64_kib_and_any_line_end_are_read(tmp_path, newline):
    filler = [f"colonne_{i:05d}" for i in range(8000)]  # about 110 KB of header
    header = ",".join([*filler, HEADER])
    row = ",".join([*([""] * len(filler)), "00000000000018,25.62A,74081,6.5,46.0"])
    path = tmp_path / "wide.csv"
    path.write_text(header + newline + row + newline, encoding="utf-8")
    reg = cm.read_registry(path)
    assert reg.establishments["sector"].tolist() == ["25.62A"]
    assert reg.establishments["commune"].tolist() == ["74081"]


def test_commune_codes_that_lost_their_leading_zero_are_completed_and_counted(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        f"{HEADER}\n00000000000018,25.62A,1001,5.0,46.0\n00000000000026,25.62A,74081,6.5,46.0\n"
        "00000000000034,25.62A,2A004,8.7,41.9\n",
        encoding="utf-8",
    )
    reg = cm.read_registry(path)
    assert reg.establishments["commune"].tolist() == ["01001", "74081", "2A004"]
    assert reg.summary_dict()["repairs"] == {"zero_stripped_commune": 1}
    assert reg.repairs["detail"].tolist() == ["'1001' completed to '01001'"]
    counts = pd.DataFrame(
        {
            "Code commune": ["1001", "01001", "74081"],
            "Code APE": ["2562A"] * 3,
            "Nombre d'établissements 2022": ["1", "2", "3"],
        }
    )
    tables = cm.read_counts(counts)
    assert tables.establishments["25.62A"].to_dict() == {"01001": 3, "74081": 3}
    assert tables.info["zero_stripped_commune"] == 1


@pytest.mark.parametrize("bad", [np.inf, -np.inf, 1e19, -1e300])
def test_non_finite_or_huge_numbers_in_id_and_code_columns_are_rejected_not_raised(bad):
    frame = pd.DataFrame(
        {
            "siret": [bad, 2.0],
            "activitePrincipaleEtablissement": [bad, 2562.0],
            "codeCommuneEtablissement": [bad, 74081.0],
            "longitude": [6.5, 6.5],
            "latitude": [46.0, 46.0],
        }
    )
    reg = cm.read_registry(frame)
    summary = reg.summary_dict()
    assert summary["rejects"] == {"invalid_sector_code": 2}  # 2562.0 has lost its letter
    frame["activitePrincipaleEtablissement"] = ["25.62A", "25.62A"]
    reg = cm.read_registry(frame)
    assert reg.establishments["commune"].tolist()[1] == "74081"
    assert len(reg.establishments) == 2


# ----------------------------------------------------------------------------- items 10, 12


def _units(geoms, crs=2154):
    import geopandas as gpd

    return gpd.GeoDataFrame({"code": [f"u{i}" for i in range(len(geoms))]}, geometry=geoms, crs=crs)


def test_units_repaired_to_nothing_are_dropped_and_counted():
    from shapely.geometry import Polygon, box

    flat = Polygon([(0, 0), (1, 0), (2, 0), (0, 0)])  # zero area: make_valid leaves a line
    with pytest.warns(cm.errors.ClustermapWarning, match=r"1 unit\(s\).*no area left.*\['u1'\]"):
        units = cm.read_units(_units([box(0, 0, 1, 1), flat]), unit_id="code")
    assert units.index.tolist() == ["u0"]


def test_nan_vertex_in_a_unit_is_a_schema_error_naming_it():
    from shapely.geometry import Polygon, box

    broken = Polygon([(0, 0), (1, float("nan")), (1, 1), (0, 1)])
    with pytest.raises(
        cm.errors.SchemaError, match=r"NaN or infinite coordinates \(units \['u1'\]"
    ):
        cm.read_units(_units([box(0, 0, 1, 1), broken]), unit_id="code")


def test_metres_declared_as_degrees_are_refused():
    from shapely.geometry import box

    layer = _units([box(940_000, 6_540_000, 950_000, 6_550_000)], crs=4326)
    with pytest.raises(cm.errors.CRSError, match="do not fit their CRS EPSG:4326"):
        cm.read_units(layer, unit_id="code")
    ok = _units([box(6.5, 46.0, 6.6, 46.1)], crs=4326)
    assert len(cm.read_units(ok, unit_id="code")) == 1


# ----------------------------------------------------------------------------- item 11


def test_terminal_output_carries_no_control_or_bidi_characters(tmp_path):
    import io

    from clustermap import cli

    result = make_result()
    result.clusters["place"] = ["Cluses\x1b[2J\x1b]0;pwned\x07", "a\u202eb", "c\x00d"]
    result.clusters["sector_label"] = ["Déco\x1b[31mlletage", "x", "y"]
    out = io.StringIO()
    cli._summary(result, "fr", tmp_path / "r.html", None, out)
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\x00" not in text
    assert "\u202e" not in text
    assert "Cluses [2J ]0;pwned " in text and "Déco [31mlletage" in text and "ab" in text


def test_very_long_names_are_cut_for_display_but_kept_in_the_data(tmp_path):
    result = make_result()
    long_name = "Établissement " + "x" * 200_000
    result.establishments.loc[0, "name"] = long_name
    result.clusters.loc[0, "place"] = "\u202eesrever " + "y" * 200_000
    page = cm.write_report(result, tmp_path / "r.html").read_text(encoding="utf-8")
    assert len(page) < 1_000_000 and "x" * 1000 not in page and "y" * 1000 not in page
    assert "Établissement " + "x" * 285 + "…" in page
    assert "\u202e" not in page
    assert result.establishments.loc[0, "name"] == long_name  # the data are untouched
    m = result.explore().get_root().render()
    assert "x" * 1000 not in m and "\u202e" not in m
