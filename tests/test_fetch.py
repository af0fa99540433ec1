"""Fetchers against a local HTTP server on 127.0.0.1 standing in for the publishers: download,
cache hit, checksum failure, retry, offline and moved-URL errors, the CLI, and the fetched
files read by clustermap. No test touches the network."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shutil
import socket
import threading
from collections import Counter
from pathlib import Path

import pytest

import clustermap as cm
from clustermap.cli import main
from clustermap.errors import FetchError
from clustermap.io import fetch

ROOT = Path(__file__).resolve().parents[1]
DEMO_REGISTRY = ROOT / "datasets" / "demo_registry.csv.gz"
DEMO_UNITS = ROOT / "datasets" / "demo_units.parquet"


class _Server:
    """Serves a folder; counts requests per path; can fail a path with 500 a few times."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.hits: Counter[str] = Counter()
        self.fail: dict[str, int] = {}
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *a, **k):
                super().__init__(*a, directory=str(server.folder), **k)

            def do_GET(self):
                path = self.path.split("?", 1)[0]
                server.hits[path] += 1
                if server.fail.get(path, 0) > 0:
                    server.fail[path] -= 1
                    self.send_error(500, "try again")
                    return
                super().do_GET()

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def publisher(tmp_path):
    """A local 'publisher' with files in the Etalab, URSSAF and GeoJSON layouts."""
    site = tmp_path / "site"
    (site / "dep").mkdir(parents=True)
    shutil.copy(DEMO_REGISTRY, site / "dep" / "geo_siret_74.csv.gz")  # Etalab columns
    units = cm.read_units(DEMO_UNITS, unit_id="code", name="nom")
    geo = site / "2018" / "geojson"
    geo.mkdir(parents=True)
    etalab = units.reset_index().rename(columns={"unit_id": "code", "name": "nom"}).head(40)
    etalab[["code", "nom", "geometry"]].to_file(geo / "communes.geojson", driver="GeoJSON")
    with (
        open(geo / "communes.geojson", "rb") as src,
        gzip.open(geo / "communes-100m.geojson.gz", "wb") as dst,
    ):
        dst.write(src.read())
    ds = site / fetch._URSSAF_DATASET / "exports"
    ds.mkdir(parents=True)
    (ds / "csv").write_text(
        "Commune;APE;Code commune;Code APE;Nombre d'établissements 2021;Effectifs salariés 2021\n"
        "74081 Cluses;2562A Décolletage;74081;2562A;12;240\n"
        "74081 Cluses;4711B Commerce;74081;4711B;3;20\n"
        "74264 Scionzier;2562A Décolletage;74264;2562A;5;60\n",
        encoding="utf-8",
    )
    server = _Server(site)
    yield server, site
    server.close()


def test_download_then_cache_hit_without_network(publisher, tmp_path):
    server, site = publisher
    cache = tmp_path / "cache"
    [path] = fetch.fetch_sirene("74", base_url=server.url + "dep/", cache=cache, progress=False)
    assert path == cache / "sirene" / "geo_siret_74.csv.gz"
    assert path.read_bytes() == (site / "dep" / "geo_siret_74.csv.gz").read_bytes()
    assert server.hits["/dep/geo_siret_74.csv.gz"] == 1
    server.close()  # the publisher is gone: the cached file is still returned
    again = fetch.fetch_sirene(["74"], base_url=server.url + "dep/", cache=cache, progress=False)
    assert again == [path]
    # and the file is a registry clustermap reads
    assert len(cm.read_registry(path).establishments) == 50_050


def test_environment_variables_choose_the_cache_and_the_url(publisher, tmp_path, monkeypatch):
    server, _ = publisher
    monkeypatch.setenv("CLUSTERMAP_CACHE", str(tmp_path / "env_cache"))
    monkeypatch.setenv("CLUSTERMAP_SIRENE_URL", server.url + "dep")  # no trailing slash
    [path] = fetch.fetch_sirene("74", progress=False)
    assert path == tmp_path / "env_cache" / "sirene" / "geo_siret_74.csv.gz"
    assert fetch.cache_folder() == tmp_path / "env_cache"


def test_checksum_mismatch_is_an_error_and_leaves_no_file(publisher, tmp_path):
    server, site = publisher
    cache = tmp_path / "cache"
    with pytest.raises(FetchError, match="SHA-256 is not the expected"):
        fetch.fetch_sirene(
            "74", base_url=server.url + "dep/", cache=cache, sha256="0" * 64, progress=False
        )
    assert not (cache / "sirene" / "geo_siret_74.csv.gz").exists()
    good = hashlib.sha256((site / "dep" / "geo_siret_74.csv.gz").read_bytes()).hexdigest()
    [path] = fetch.fetch_sirene(
        "74", base_url=server.url + "dep/", cache=cache, sha256=good, progress=False
    )
    assert path.is_file()


def test_a_failing_server_is_retried(publisher, tmp_path):
    server, _ = publisher
    server.fail["/dep/geo_siret_74.csv.gz"] = 2
    [path] = fetch.fetch_sirene(
        "74", base_url=server.url + "dep/", cache=tmp_path / "c", progress=False
    )
    assert path.is_file()
    assert server.hits["/dep/geo_siret_74.csv.gz"] == 3


def test_moved_file_names_the_url_and_the_override(publisher, tmp_path):
    server, _ = publisher
    with pytest.raises(FetchError) as info:
        fetch.fetch_sirene("39", base_url=server.url + "dep/", cache=tmp_path / "c", progress=False)
    text = str(info.value)
    assert f"{server.url}dep/geo_siret_39.csv.gz answered HTTP 404" in text
    assert "base_url=" in text and "CLUSTERMAP_SIRENE_URL" in text
    assert server.hits["/dep/geo_siret_39.csv.gz"] == 1  # not retried: it will not come back


def test_offline_is_one_clear_error(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/dep/"
    with pytest.raises(
        FetchError,
        match=r"Cannot download http://127\.0\.0\.1:\d+/dep/geo_siret"
        r"_74\.csv\.gz \(ConnectionError after 3 attempts\): no network",
    ):
        fetch.fetch_sirene("74", base_url=url, cache=tmp_path / "c", progress=False)


def test_communes_and_urssaf_files_are_read_by_clustermap(publisher, tmp_path):
    server, _ = publisher
    cache = tmp_path / "cache"
    communes = fetch.fetch_communes(year=2018, base_url=server.url, cache=cache, progress=False)
    assert communes.name == "2018_communes-100m.geojson.gz"
    units = cm.read_units(communes, unit_id="code", name="nom")
    assert len(units) == 40
    urssaf = fetch.fetch_urssaf(base_url=server.url, cache=cache, progress=False)
    counts = cm.read_counts(urssaf)
    assert counts.establishments.loc["74081", "25.62A"] == 12


def test_fetch_then_detect_on_the_command_line(publisher, tmp_path, capsys):
    """`clustermap fetch sirene --departement 74` then `clustermap detect` on that file."""
    server, _ = publisher
    cache = tmp_path / "cache"
    code = main(
        [
            "fetch",
            "sirene",
            "--departement",
            "74",
            "--base-url",
            server.url + "dep/",
            "--cache",
            str(cache),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    path = Path(captured.out.strip())
    assert path == cache / "sirene" / "geo_siret_74.csv.gz"
    report = tmp_path / "rapport.html"
    code = main(
        [
            "detect",
            str(path),
            "--units",
            str(DEMO_UNITS),
            "--unit-id",
            "code",
            "--unit-name",
            "nom",
            "--out",
            str(report),
            "--quiet",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "geo_siret_74.csv.gz" in report.read_text(encoding="utf-8")
    # a moved file: exit 2, one line naming the flag to use
    code = main(
        [
            "fetch",
            "sirene",
            "--departement",
            "39",
            "--base-url",
            server.url + "dep/",
            "--cache",
            str(cache),
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--base-url" in err and "HTTP 404" in err
    assert main(["fetch", "sirene", "--quiet"]) == 2
    assert "--departement" in capsys.readouterr().err


def test_us_path_county_business_patterns_to_benchmark_clusters(tmp_path):
    """fetch_cbp from a local server: a CBP county file (zip) and the cartographic counties
    (zipped shapefile), read by clustermap and grouped into the U.S. benchmark clusters."""
    import zipfile

    import geopandas as gpd
    import numpy as np
    import pandas as pd
    from shapely.geometry import box

    site = tmp_path / "census"
    cbp_dir = site / "programs-surveys" / "cbp" / "datasets" / "2021"
    geo_dir = site / "geo" / "tiger" / "GENZ2021" / "shp"
    cbp_dir.mkdir(parents=True)
    geo_dir.mkdir(parents=True)
    side = 8
    fips = [f"39{i:03d}" for i in range(1, side * side + 1)]
    counties = gpd.GeoDataFrame(
        {"GEOID": fips, "NAME": [f"County {f}" for f in fips]},
        geometry=[box(i % side, i // side, i % side + 1, i // side + 1) for i in range(len(fips))],
        crs=4269,
    )
    shp = tmp_path / "shp"
    shp.mkdir()
    counties.to_file(shp / "cb_2021_us_county_20m.shp")
    with zipfile.ZipFile(geo_dir / "cb_2021_us_county_20m.zip", "w") as z:
        for part in shp.iterdir():
            z.write(part, part.name)
    rng = np.random.default_rng(1)
    rows = []
    block = {fips[r * side + c] for r in range(2, 5) for c in range(2, 5)}
    for f in fips:
        machine = rng.poisson(2) + (25 if f in block else 0)  # precision turned products
        rows += [
            (f[:2], f[2:], "332721", machine, machine * 20),
            (f[:2], f[2:], "722511", rng.poisson(60), 900),  # restaurants
            (f[:2], f[2:], "------", 999, 9999),
        ]  # the county total: an aggregate
    table = pd.DataFrame(rows, columns=["fipstate", "fipscty", "naics", "est", "emp"])
    with zipfile.ZipFile(cbp_dir / "cbp21co.zip", "w") as z:
        z.writestr("CBP2021.CB2100CBP-Data.txt", table.to_csv(index=False))
    server = _Server(site)
    try:
        files = fetch.fetch_cbp(2021, base_url=server.url, cache=tmp_path / "c", progress=False)
    finally:
        server.close()
    counts = cm.read_counts(files["cbp"])
    assert counts.info["format"] == "cbp" and counts.info["aggregate_rows"] == len(fips)
    assert counts.establishments.shape == (len(fips), 2)
    units = cm.read_units(files["counties"], unit_id="GEOID", name="NAME")
    res = cm.detect_clusters(
        counts,
        units,
        level="cluster_category",
        local_statistic=None,
        options={"nomenclature": "naics"},
    )
    top = res.clusters.iloc[0]
    assert top["sector"] == "metalworking_technology" and top["sector_type"] == "traded"
    assert block <= set(top["unit_ids"])
    assert res.composition["code"].iloc[0] == "332721"
