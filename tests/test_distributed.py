"""The Dask path (``client=``) against the single-machine path, on a LocalCluster.

Two worker processes of one thread each, as the issue asks. Every comparison is exact: the
same reject report row for row, the same tables, the same statistics, p-values and
clusters. Needs the ``dask`` extra (``pip install -e ".[test,dask]"``); skipped without it.
"""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

import clustermap as cm
from clustermap.core.distributed import close_started
from clustermap.errors import ClustermapWarning, SchemaError
from conftest import shared_file

distributed = pytest.importorskip(
    "distributed", reason="needs the dask extra: pip install -e '.[test,dask]'"
)
pytest.importorskip("dask_geopandas", reason="needs the dask extra: pip install -e '.[test,dask]'")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    with distributed.Client(cluster) as c:
        yield c
    close_started()  # the clients that client="tcp://..." (or --scheduler) opened
    cluster.close()


@pytest.fixture(scope="module")
def demo():
    return cm.load_demo()


def _partitioned(table, folder, n_parts: int):
    """Write ``table`` (pyarrow) as ``n_parts`` Parquet files named as Dask names them."""
    folder.mkdir()
    cuts = np.linspace(0, table.num_rows, n_parts + 1).astype(int)
    for i, (a, b) in enumerate(itertools.pairwise(cuts)):
        pq.write_table(table.slice(a, b - a), folder / f"part.{i}.parquet")
    return folder


def _as_text(path) -> pa.Table:
    """A CSV registry as a pyarrow table of strings (as read_registry reads a CSV)."""
    read = pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(auto_dict_encode=False))
    return read.cast(pa.schema([(n, pa.string()) for n in read.schema.names]))


def _same_registry(single, spread):
    pd.testing.assert_frame_equal(single.rejects, spread.rejects)
    pd.testing.assert_frame_equal(single.repairs, spread.repairs)
    est = spread.establishments.compute()
    left = pd.DataFrame(single.establishments.drop(columns="geometry"))
    pd.testing.assert_frame_equal(left, pd.DataFrame(est.drop(columns="geometry")))
    assert single.establishments.geometry.geom_equals_exact(est.geometry, 0).all()
    expected = {**single.summary_dict(), "partitions": spread.notes["partitions"]}
    assert spread.summary_dict() == {**expected, "source": spread.source}


def _same(a, b, path: str = "result") -> None:
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=path)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b, (path, a, b)


def _same_clusters(a, b, *, skip=("timings",)) -> None:
    for f in dataclasses.fields(a):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "parameters":
            x = {k: v for k, v in x.items() if k not in skip}
            y = {k: v for k, v in y.items() if k not in skip}
        if f.name == "establishments" and y is None:
            continue  # a partitioned registry keeps its establishments on the workers
        if f.name == "registry_summary" and y is not None and "partitions" in y:
            y = {k: v for k, v in y.items() if k != "partitions"} | {"source": x["source"]}
        _same(x, y, f.name)


# ----------------------------------------------------------------------------- reading


def test_partitioned_demo_registry_reads_as_the_single_file(demo, client, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        single_file = cm.read_registry(demo.registry_path, format="sirene")
    table = _as_text(demo.registry_path)
    # kept rows repeated at the end (in another partition): the first row wins
    rejected = set(single_file.rejects["row"]) | set(single_file.repairs["row"])
    copied = [p for p in range(5, table.num_rows, 997) if p + 1 not in rejected][:3]
    table = pa.concat_tables([table, table.take(copied)])
    folder = _partitioned(table, tmp_path / "registry", 12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        single = cm.read_registry(folder, format="sirene")
    spread = cm.read_registry(folder, format="sirene", client=client)
    _same_registry(single, spread)
    assert spread.notes["partitions"] == 12
    n = table.num_rows
    dup = spread.rejects[spread.rejects["row"] > n - 3]
    assert dup["reason"].tolist() == ["duplicated_id"] * 3
    assert dup["detail"].tolist() == [f"same establishment_id as row {p + 1}" for p in copied]
    # the rejects of the single file are those of the folder, less the 3 copies
    head = spread.rejects[spread.rejects["row"] <= n - 3].reset_index(drop=True)
    pd.testing.assert_frame_equal(single_file.rejects, head)
    assert len(spread) == len(single_file)


def test_a_dask_frame_reads_as_the_pandas_frame(demo, client):
    import dask.dataframe as dd

    frame = _as_text(demo.registry_path).to_pandas()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        single = cm.read_registry(frame, format="sirene")
    spread = cm.read_registry(dd.from_pandas(frame, npartitions=5), format="sirene", client=client)
    _same_registry(single, spread)
    assert spread.source == "Dask frame (5 partitions)"


def test_a_geoparquet_folder_reads_as_one_file(demo, client, tmp_path):
    import geopandas as gpd

    frame = _as_text(demo.registry_path).to_pandas()
    lon = pd.to_numeric(frame.pop("longitude"), errors="coerce")
    lat = pd.to_numeric(frame.pop("latitude"), errors="coerce")
    points = gpd.GeoDataFrame(frame, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    folder = tmp_path / "geo"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(points)), 3)):
        points.iloc[part].to_parquet(folder / f"part.{i}.parquet")
    kw = {"sector": "activitePrincipaleEtablissement", "id": "siret"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        whole = cm.read_registry(points, **kw)
        single = cm.read_registry(folder, **kw)
    spread = cm.read_registry(folder, client=client, **kw)
    _same_registry(single, spread)
    pd.testing.assert_frame_equal(whole.rejects, spread.rejects)
    assert spread.summary_dict()["rejects"]["duplicated_id"] == 50


def test_a_folder_of_files_with_other_columns_is_refused_by_name(tmp_path):
    folder = tmp_path / "reg"
    folder.mkdir()
    pd.DataFrame({"siret": ["1"], "naf": ["25.62A"]}).to_parquet(folder / "part.0.parquet")
    pd.DataFrame({"siret": ["2"], "ape": ["25.62A"]}).to_parquet(folder / "part.1.parquet")
    with pytest.raises(cm.errors.DataFileError, match=r"part\.1\.parquet has the columns"):
        cm.read_registry(folder, sector="naf", id="siret")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(cm.errors.DataFileError, match="holds no Parquet file"):
        cm.read_registry(empty)


# ----------------------------------------------------------------------------- tables


@pytest.fixture(scope="module")
def demo_parts(demo, client, tmp_path_factory):
    folder = _partitioned(_as_text(demo.registry_path), tmp_path_factory.mktemp("d") / "r", 7)
    return cm.read_registry(folder, format="sirene", client=client)


@pytest.mark.parametrize(
    ("level", "measure", "sparse"),
    [("subclass", "establishments", False), ("division", "employees", True)],
)
def test_partitioned_aggregate_equals_the_single_table(demo, demo_parts, level, measure, sparse):
    # some establishments fall outside the units: the anti-join keeps them as rejects
    units = demo.units.iloc[50:]
    with pytest.warns(ClustermapWarning, match="fall outside every unit"):
        spread = cm.aggregate(demo_parts, units, level=level, measure=measure, sparse=sparse)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        single = cm.aggregate(demo.registry, units, level=level, measure=measure, sparse=sparse)
    pd.testing.assert_frame_equal(single, spread)
    pd.testing.assert_frame_equal(single.attrs["rejects"], spread.attrs["rejects"])
    assert (single.attrs["rejects"]["reason"] == "outside_units").sum() > 100


# ----------------------------------------------------------------------------- statistics


@pytest.fixture(scope="module")
def demo_table(demo):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        table = cm.aggregate(demo.registry, demo.units)
    return table, cm.build_graph(demo.units, method="queen")


@pytest.mark.parametrize("name", ["local_moran", "local_getis_ord", "local_geary"])
def test_sector_blocks_give_the_single_machine_statistics(demo_table, client, name):
    table, graph = demo_table
    values = table.iloc[:, :40].astype(float)
    values["gamma"] = np.random.default_rng(0).gamma(2.0, 1.5, len(values))  # continuous
    func = getattr(cm, name)
    single = func(values, graph, permutations=199, random_state=7)
    spread = func(values, graph, permutations=199, random_state=7, client=client)
    for field in ("statistic", "p_value", "label", "count_greater", "count_lesser"):
        pd.testing.assert_frame_equal(getattr(single, field), getattr(spread, field))
    pd.testing.assert_frame_equal(single.n_permutations, spread.n_permutations)
    assert single.parameters == spread.parameters
    assert (single.label.to_numpy() != "ns").sum() > 50  # something was found


def test_early_stop_is_refused_with_a_client(demo_table, client):
    table, graph = demo_table
    with pytest.raises(SchemaError, match="early_stop"):
        cm.local_moran(table.iloc[:, :3], graph, early_stop=0.05, client=client)


def test_kd_and_m_by_sector_blocks(client):
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "x": rng.uniform(0, 50, 900),
            "y": rng.uniform(0, 50, 900),
            "sector": rng.choice(list("ABCDEF"), 900),
        }
    )
    for func in (cm.k_density, cm.m_function):
        single = func(df, simulations=39, random_state=5)
        spread = func(df, simulations=39, random_state=5, client=client)
        pd.testing.assert_frame_equal(single.table, spread.table)
        pd.testing.assert_frame_equal(single.summary, spread.summary)
        for s in "ABCDEF":
            np.testing.assert_array_equal(single.simulations[s], spread.simulations[s])
    # a sector's simulations do not depend on the other sectors of the call
    alone = cm.k_density(df, "C", simulations=39, random_state=5)
    both = cm.k_density(df, ["A", "C"], simulations=39, random_state=5)
    np.testing.assert_array_equal(alone.simulations["C"], both.simulations["C"])


# ----------------------------------------------------------------------------- detection


@pytest.fixture
def shard_always(monkeypatch):
    """Shard the window tests whatever the table's size (the demo's is far below the bar)."""
    from clustermap.detect import shards

    monkeypatch.setattr(shards, "WINDOW_CELLS", 0)


def test_detection_on_the_demo_equals_the_single_machine_run(
    demo, demo_parts, client, shard_always
):
    single = cm.detect_clusters(demo.registry, demo.units, random_state=1)
    spread = cm.detect_clusters(demo.registry, demo.units, random_state=1, client=client)
    _same_clusters(single, spread)
    assert len(single.clusters) >= 20
    # from the partitioned registry: the same clusters, the firms staying on the workers
    parts = cm.detect_clusters(demo_parts, demo.units, random_state=1, client=client)
    assert parts.establishments is None
    _same_clusters(single, parts)
    with pytest.raises(SchemaError, match="needs units="):
        cm.detect_clusters(demo_parts, client=client)
    with pytest.raises(SchemaError, match="partitioned on a Dask cluster"):
        cm.stock_at_dates(demo_parts, demo.units, ["2020-01-01", "2024-01-01"])


def test_trends_on_a_cluster_equal_the_single_machine_ones(client, shard_always):
    from test_trends import _grid, _panel

    units, panel = _grid(), _panel()
    single = cm.cluster_trends(panel, units)
    spread = cm.cluster_trends(panel, units, client=client)
    pd.testing.assert_frame_equal(single.trends, spread.trends)
    pd.testing.assert_frame_equal(single.series, spread.series)
    assert sorted(single.trends["trend"]) == [
        "disappeared", "growing", "new", "shrinking", "stable",
    ]  # fmt: skip


def test_detection_on_the_synthetic_registry(client, tmp_path, shard_always):
    path = shared_file("synthetic_france", "registry.csv.gz")
    communes = cm.read_units(
        shared_file("france_boundaries", "communes_2018_simplified.parquet"),
        unit_id="code_insee",
        name="nom",
    )
    folder = _partitioned(_as_text(path), tmp_path / "registry", 8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClustermapWarning)
        single = cm.read_registry(path)
        spread = cm.read_registry(folder, client=client)
        pd.testing.assert_frame_equal(single.rejects, spread.rejects)
        assert spread.summary_dict()["rejects"] == single.summary_dict()["rejects"]
        assert sum(single.summary_dict()["rejects"].values()) > 1000
        kw = {"random_state": 3, "local_statistic": None}
        one = cm.detect_clusters(single, communes, **kw)
        many = cm.detect_clusters(spread, communes, client=client, **kw)
    _same_clusters(one, many)
    assert len(one.clusters) >= 10


# ----------------------------------------------------------------------------- setup


def test_client_argument_errors(monkeypatch):
    from clustermap.core import distributed as engine
    from clustermap.core.distributed import resolve_client

    monkeypatch.setattr(engine, "CONNECT_TIMEOUT", "2s")
    with pytest.raises(TypeError, match="scheduler address"):
        resolve_client(3)
    with pytest.raises(cm.errors.SchedulerError, match="no Dask scheduler answers"):
        resolve_client("tcp://127.0.0.1:9", name="--scheduler")


def test_the_base_path_never_imports_dask():
    code = (
        "import sys, warnings, clustermap as cm\n"
        "warnings.simplefilter('ignore')\n"
        "d = cm.load_demo()\n"
        "r = cm.detect_clusters(d.registry, d.units, random_state=1)\n"
        "cm.k_density(d.registry, r.clusters['sector'].iloc[0], simulations=9, random_state=1)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('dask', 'distributed', 'dask_geopandas')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_scheduler_runs_a_partitioned_registry(demo, client, tmp_path, capsys):
    from clustermap import cli

    folder = _partitioned(_as_text(demo.registry_path), tmp_path / "registry", 4)
    units = demo.units_path
    common = ["--format", "sirene", "--units", str(units), "--unit-id", "code", "--quiet"]
    assert (
        cli.main(["detect", str(demo.registry_path), *common, "--out", str(tmp_path / "a.html")])
        == 0
    )
    single = capsys.readouterr().out
    address = client.scheduler.address
    argv = [
        "detect",
        str(folder),
        *common,
        "--scheduler",
        address,
        "--out",
        str(tmp_path / "b.html"),
    ]
    assert cli.main(argv) == 0
    spread = capsys.readouterr().out
    # the same clusters, in the same order, with the same figures
    assert [x for x in single.splitlines() if x.lstrip()[:2].rstrip(".").isdigit()] == [
        x for x in spread.splitlines() if x.lstrip()[:2].rstrip(".").isdigit()
    ]
    assert "25.62A" in spread and (tmp_path / "b.html").stat().st_size > 100_000
    assert (
        cli.main(
            [
                "detect",
                str(folder),
                *common,
                "--scheduler",
                "nowhere",
                "--out",
                str(tmp_path / "c.html"),
            ]
        )
        == 2
    )
    assert "--scheduler" in capsys.readouterr().err
