"""Write the analyst notebooks of clustermap (stored without outputs).

Run from the repository root or from ``notebooks/``::

    python notebooks/build_notebooks.py

The notebooks are executed by ``tests/test_notebooks.py`` (cwd = ``notebooks/``), so every
code cell must run offline, in well under a minute per notebook, and write nothing into the
repository (temporary folders only). Edit the cells here, not in the ``.ipynb`` files.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent


def _nb(cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "name": "python3",
    }
    nb.metadata["language_info"] = {"name": "python"}
    for i, (kind, text) in enumerate(cells):
        text = text.strip("\n")
        cell = new_markdown_cell(text) if kind == "md" else new_code_cell(text)
        cell["id"] = f"cell-{i:02d}"  # stable ids: rebuilding gives identical files
        nb.cells.append(cell)
    return nb


# --------------------------------------------------------------------------- 01 quickstart

QUICKSTART = [
    (
        "md",
        """
# clustermap in ten minutes: from a registry to a map of clusters

This notebook runs the whole analysis on the **bundled demo data**: a synthetic registry of
about 52 000 SIRENE-like rows over 1 500 invented communes in central France, with six
*planted* clusters of graded strength and four sectors where nothing was planted. Because
the answer is known, you can see what the method finds and what it misses.

Everything runs offline; nothing is written into the repository.
""",
    ),
    (
        "code",
        """
import clustermap as cm

demo = cm.load_demo()
demo
""",
    ),
    (
        "md",
        """
`demo.registry` was read with `cm.read_registry(..., format="sirene")`. Every row that was
dropped is counted by reason, and rows that were repaired (latitude and longitude swapped)
are kept and listed:
""",
    ),
    ("code", "print(demo.registry.summary())"),
    (
        "md",
        """
The establishments are points with a NAF rév. 2 sous-classe (`sector`), a head-count
imputed from the SIRENE size band (`employees`, with the band bounds in `employees_low` and
`employees_high`) and the commune code. The units are polygons indexed by `unit_id`.
""",
    ),
    (
        "code",
        """
demo.registry.establishments[["establishment_id", "sector", "employees", "name", "commune"]].head()
""",
    ),
    ("code", "demo.units.head(3)"),
    (
        "md",
        """
## Detect the clusters

One call analyses every sector. A commune *seeds* a cluster when it and its neighbours
hold significantly more establishments of the sector than their overall activity predicts
(exact Poisson test, Benjamini-Hochberg false discovery rate across the communes of the
sector) and it is itself specialised (LQ ≥ 1.5); nearby specialised communes with a small
p-value grow the region around the seeds. A region is kept when it is big enough (at least
10 establishments), specialised (LQ ≥ 1.5 with a 95 % interval above 1) and significant.
`help(cm.detection)` gives every step. `permutations` only concerns the complementary Gi*
hot-spot statistic added to the table; 199 keeps this notebook fast.
""",
    ),
    (
        "code",
        """
result = cm.detect_clusters(
    demo.registry, demo.units, random_state=1, options={"permutations": 199}
)
result
""",
    ),
    (
        "code",
        """
columns = ["cluster_id", "sector_label", "place", "n_units", "establishments",
           "employees", "lq", "lq_low", "lq_high", "stars", "strong_cluster", "artefact"]
result.clusters[columns].head(10).round(2)
""",
    ),
    (
        "md",
        """
## Compare with the answer key

The answer key lists the planted clusters (with their *core* communes) and the null sectors.
The strongest cluster of each planted sector should cover its core; a null sector should
have no cluster at all. The subtle clusters (about one extra establishment per commune, or
diluted in the largest city) may be missed: that is the honest limit of any method on
counts this small.
""",
    ),
    (
        "code",
        """
import pandas as pd

key = demo.answer_key
rows = []
for _, planted in key[key["kind"] == "planted"].iterrows():
    found = result.clusters[result.clusters["sector"] == planted["naf"]]
    best = found.iloc[0] if len(found) else None
    core = set(planted["core"])
    rows.append({
        "planted": planted["name"],
        "naf": planted["naf"],
        "strength": planted["strength"],
        "clusters found": len(found),
        "core communes covered": len(core & set(best["unit_ids"])) if best is not None else 0,
        "core communes": len(core),
        "LQ of the best": round(best["lq"], 1) if best is not None else None,
    })
check = pd.DataFrame(rows)
null_sectors = key.loc[key["kind"] == "null_sector", "name"].tolist()
print("clusters in null sectors:", int(result.clusters["sector"].isin(null_sectors).sum()))
check
""",
    ),
    (
        "code",
        """
# the obvious and clear planted clusters must be found, and nothing in the null sectors
by_naf = check.set_index("naf")
for naf in ["25.62A", "22.29A", "11.02A"]:
    assert by_naf.loc[naf, "core communes covered"] >= by_naf.loc[naf, "core communes"] // 2, naf
assert not result.clusters["sector"].isin(null_sectors).any()
""",
    ),
    (
        "md",
        """
## The map

One layer per sector; click a cluster to open its *fiche* (labels in French by default,
`lang="en"` for English). Base-map tiles need an internet connection; pass
`map_options={"tiles": None}` for a plain background, and `map_options={"offline": True}` to
embed Leaflet in the page.
""",
    ),
    ("code", "result.explore(sectors=['25.62A', '22.29A', '11.02A', '25.71Z'])"),
    (
        "md",
        """
## The report

`result.to_html(path)` writes a self-contained HTML report (summary, rejected rows by reason,
sortable cluster table, map, one page per leading cluster) that opens offline in any browser.
Here it goes to a temporary folder; the command line does the same in one step:
`clustermap demo --out clustermap_demo.html`.
""",
    ),
    (
        "code",
        """
import tempfile
from pathlib import Path

out = result.to_html(Path(tempfile.mkdtemp(prefix="clustermap_")) / "clusters_demo.html")
print(out.name, f"{out.stat().st_size / 1e6:.1f} MB")
""",
    ),
]


# --------------------------------------------------------------------------- 02 SIRENE

SIRENE = [
    (
        "md",
        """
# A SIRENE workflow, step by step

The workflow of an economic-development analyst on the French business register:

1. read a geolocated SIRENE file and **check what was rejected**;
2. choose the **NAF level** and the **zoning** (communes, EPCI, a grid);
3. detect the clusters and **read the scores** (LQ and its interval, stars, strong-cluster
   flags);
4. export the **HTML report** for colleagues and a **GeoPackage** for QGIS.

The notebook runs on the bundled demo registry, which is written exactly like an Etalab
`geo_siret` file (same column names), so the same code runs on the real file.

## Where to get the real data

- **Etalab, « Base Sirene des entreprises et de leurs établissements géolocalisée »**
  (data.gouv.fr): one `geo_siret_<département>.csv.gz` file per département (or the national
  file), the SIRENE columns plus `longitude` / `latitude` in WGS84. This is the easiest
  input: `cm.read_registry(path)` recognises it (`format="sirene"`).
- **INSEE, `StockEtablissement`** (the monthly stock of establishments, on data.gouv.fr / the
  INSEE SIRENE open-data page) **plus the INSEE geolocation file**
  (`GeolocalisationEtablissement_Sirene_pour_etudes_statistiques`: `siret`, `x`, `y`,
  `epsg`), joined on the SIRET:
  `cm.read_registry(stock_path, geolocation=geoloc_path)` (`format="sirene_stock"`).
  Coordinates are in Lambert-93 in metropolitan France and in UTM zones in the DOM; the
  `epsg` column says which.
- **Old extracts (2016 names)** such as `apet700`, `tefet`, `depcomet`, `longitude`,
  `latitude`: `format="sirene2016"`.

The national files hold tens of millions of rows (closed establishments included);
`read_registry` streams them by chunks and keeps only what it needs. Commune polygons come
from IGN (Admin Express) and EPCI membership from the INSEE *Code officiel géographique* /
DGCL BANATIC; read them with `cm.read_units(path, unit_id=..., name=...)`.
""",
    ),
    (
        "md",
        """
## 1. Read the file and check the rejects
""",
    ),
    (
        "code",
        """
import warnings

import geopandas as gpd
import pandas as pd

import clustermap as cm
from clustermap.datasets import demo_path

path = demo_path("registry")          # a geo_siret-style CSV (gzip)
print(path.name)
print(pd.read_csv(path, nrows=0).columns.tolist())
""",
    ),
    (
        "code",
        """
registry = cm.read_registry(path, format="sirene")
print(registry.summary())
""",
    ),
    (
        "md",
        """
Nothing is dropped silently. `registry.rejects` has one row per dropped line: its number in
the file (1 = first data row), the establishment id, the reason and a detail.
`registry.repairs` lists rows that were kept after a repair (here: latitude and longitude
exchanged). The reasons, in the order they are tested:

| reason | meaning |
| --- | --- |
| `closed_establishments` | state `F` (fermé); kept with `options={"include_closed": True}` |
| `missing_coordinates` | empty or non-numeric coordinates, or no geolocation row |
| `swapped_lat_lon` | x and y exchanged: repaired and kept (`swapped="reject"` drops) |
| `coordinates_out_of_bounds` | outside France (DOM included) |
| `other_nomenclature` | the activity is coded in an older nomenclature (NAF rév. 1, NAP) |
| `invalid_sector_code` | not a NAF rév. 2 sous-classe (`99.99Z`, `25.62`, empty…) |
| `duplicated_id` | a SIRET already seen on an earlier row (the first wins) |
""",
    ),
    (
        "code",
        """
print(registry.rejects["reason"].value_counts().to_string())
registry.rejects.groupby("reason").head(1)
""",
    ),
    ("code", "registry.repairs.head(3)"),
    (
        "code",
        """
# the demo's answer key says how many dirty rows were planted: the reader finds them all
key = cm.load_demo().answer_key
planted_dirt = key[key["kind"] == "dirt"].set_index("name")["extra"]
found = pd.concat([registry.rejects["reason"], registry.repairs["reason"]]).value_counts()
comparison = pd.DataFrame({"planted": planted_dirt, "found": found.reindex(planted_dirt.index)})
assert (comparison["planted"] == comparison["found"]).all()
comparison
""",
    ),
    (
        "md",
        """
The same reader takes the INSEE stock and its geolocation file. To show it without the real
files, we rewrite a few demo rows as a `StockEtablissement` table and a geolocation table in
Lambert-93 (in practice: two file paths).
""",
    ),
    (
        "code",
        """
est = registry.establishments.head(500)
stock = pd.DataFrame({
    "siret": est["establishment_id"],
    "activitePrincipaleEtablissement": est["sector"],
    "nomenclatureActivitePrincipaleEtablissement": "NAFRev2",
    "trancheEffectifsEtablissement": est["size_band"],
    "etatAdministratifEtablissement": "A",
    "codeCommuneEtablissement": est["commune"],
})
xy = est.geometry.to_crs(2154)
geolocation = pd.DataFrame({"siret": est["establishment_id"], "x": xy.x.round(1),
                            "y": xy.y.round(1), "epsg": "2154"})
from_stock = cm.read_registry(stock, geolocation=geolocation)
print(from_stock.format, from_stock.crs.to_epsg(), len(from_stock.establishments))
""",
    ),
    (
        "md",
        """
## 2. Choose the NAF level

NAF rév. 2 has five levels: section (`C`), division (`25`), groupe (`25.6`), classe
(`25.62`) and sous-classe (`25.62A`). A Porter cluster is a *field*, usually finer than a
division: division 25 (metal products) mixes décolletage with boilermaking and cutlery, so
a specialised valley is diluted at that level. Start at the sous-classe or the classe; use a
mapping to named groups (`level={"25.62A": "mécanique de précision", ...}`, or a
NAF-to-cluster table) to study a whole value chain.
""",
    ),
    (
        "code",
        """
codes = pd.Series(["25.62A", "25.71Z", "22.29A"])
pd.DataFrame({
    "sous-classe": codes,
    "label": cm.sector_labels(codes).to_numpy(),
    "classe": cm.roll_up(codes, "class").to_numpy(),
    "division": cm.roll_up(codes, "division").to_numpy(),
    "division label": cm.sector_labels(cm.roll_up(codes, "division"), level="division").to_numpy(),
})
""",
    ),
    (
        "md",
        """
## 3. Choose the zoning

- **Communes** (the demo's 1 500 polygons; 35 000 in France): the finest administrative
  level, which finds small specialised valleys but gives small, noisy counts.
- **EPCI** (intercommunalités): the level at which economic development is decided. The
  demo has no EPCI layer, so we build one the way a real one is built: **dissolve the
  commune polygons by a grouping column**. With real data the column is the commune's
  `codeEpci` from the COG table; here we invent it by giving every commune the 20-km grid
  cell its centroid falls in (about 5 communes per group, like a small communauté de
  communes).
- **A regular grid** (`cm.make_grid`, square or hexagonal cells in metres): equal areas, no
  administrative boundary effect, ids stable across data sets.
- **No polygons at all**: `cm.detect_clusters(registry)` uses the registry's commune codes
  as points with their 8 nearest neighbours.
""",
    ),
    (
        "code",
        """
communes = cm.read_units(demo_path("units"), unit_id="code", name="nom")
communes_l93 = communes.to_crs(2154)

# a pseudo-EPCI code per commune: the 20-km cell that holds the commune's centroid
cells = cm.make_grid(communes_l93, 20_000).rename_axis("cell").reset_index()
centroids = gpd.GeoDataFrame(geometry=communes_l93.centroid, index=communes_l93.index)
cell_of = gpd.sjoin(centroids, cells[["cell", "geometry"]], predicate="within")["cell"]
communes_l93["codeEpci"] = "EPCI-" + cell_of.str.replace("sq20000_", "", regex=False)

epci_layer = communes_l93.dissolve(by="codeEpci", aggfunc={"population": "sum"})
epci_layer["nom"] = "Groupe " + epci_layer.index.str[5:]
epci = cm.read_units(epci_layer.reset_index(), unit_id="codeEpci", name="nom")
grid = cm.make_grid(registry, 5_000)          # 5-km squares over the establishments
print(len(communes), "communes,", len(epci), "pseudo-EPCI,", len(grid), "grid cells")
assert communes_l93["codeEpci"].notna().all()
""",
    ),
    (
        "code",
        """
results = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")        # e.g. "2 units hold no establishment"
    for name, units in {"communes": communes, "EPCI": epci, "grid 5 km": grid}.items():
        results[name] = cm.detect_clusters(registry, units, level="class",
                                           random_state=1, options={"permutations": 199})
    results["commune points"] = cm.detect_clusters(registry, level="class",
                                                   random_state=1, options={"permutations": 199})

n_clusters = pd.DataFrame({
    name: res.clusters.groupby("sector").size() for name, res in results.items()
}).fillna(0).astype(int)
planted = ["25.62", "22.29", "11.02", "25.71", "20.42", "62.01"]
assert (n_clusters.reindex(["25.62", "22.29", "11.02"]) >= 1).all().all()  # at every zoning
n_clusters.reindex(planted).fillna(0).astype(int).assign(
    planted=["décolletage", "plastics", "sparkling wine", "cutlery", "perfumes", "software"])
""",
    ),
    (
        "md",
        """
The planted décolletage (classe 25.62), plastics (22.29) and sparkling-wine (11.02) clusters
are found at every zoning. The subtle ones depend on it: coarser units add up a few extra
establishments per commune into a detectable excess, but also dilute a cluster that covers
part of a unit. Other sectors with clusters (cereals, head offices…) are real
concentrations of the synthetic background, not planted ones: head offices (70.10) are
flagged as a **registry artefact** (a SIRET at the head office, not production).
""",
    ),
    (
        "code",
        """
# clusters in sectors where nothing was planted (background concentrations, artefacts)
n_clusters.drop(planted).sort_values("communes", ascending=False).head(8)
""",
    ),
    (
        "md",
        """
## 4. Read the scores

At the commune level, NAF classe:
""",
    ),
    (
        "code",
        """
result = results["communes"]
scores = ["cluster_id", "sector_label", "place", "establishments", "employees",
          "employees_low", "employees_high", "lq", "lq_low", "lq_high", "lq_employees",
          "share_of_sector", "focus", "stars", "strong_cluster", "strong_cluster_p90",
          "artefact", "strength"]
result.clusters[scores].head(8).round(2)
""",
    ),
    (
        "md",
        """
How to read a row:

- **establishments, employees**: in the cluster region. Employees are imputed from SIRENE
  size bands (band midpoint); `employees_low`–`employees_high` is the range the bands allow.
- **lq** (*quotient de localisation*): the sector's share of the region's establishments
  divided by its share in the whole territory. `lq_low`–`lq_high` is its exact 95 % Poisson
  (Garwood) interval: a region with LQ 8 built on 6 establishments can have an interval from
  3 to 17. `lq_employees` is the same ratio on employment.
- **share_of_sector**: the part of all the territory's establishments of the sector that are
  in the region; **focus**: the part of the region's establishments that are in the sector.
- **stars** (European Cluster Observatory, 0-3): one star each for size and focus among
  the top 10 % of the comparison regions of the same sector, and for specialisation
  (LQ ≥ 2).
- **strong_cluster** (U.S. Cluster Mapping Project): the LQ is in the top quarter of the
  comparison regions' LQs for the sector (and ≥ 1), and employment and establishments are
  above their bottom quarter; `strong_cluster_p90` uses the top 10 %.
- The **comparison regions** must be of a coarser zoning than the communes a cluster is
  built from, as CMP (economic areas) and ECO (NUTS-2) do: single communes have extreme LQs
  and tiny sizes. By default (`score_units="auto"`) they are départements for French
  commune codes, otherwise squares of about 50 units; `result.parameters["score_units_rule"]`
  says which. Pass your own zoning (zones d'emploi, EPCI polygons, or a Series unit → zone)
  with `score_units=`.
- **strength**: the Poisson log-likelihood ratio of the region (Kulldorff's scan statistic),
  used for sorting: it grows with both size and specificity.
- **artefact**: the sector is known to produce registry artefacts (head offices, holdings,
  temporary work).

The tidy units × sectors table behind the clusters holds the same measures per commune:
""",
    ),
    (
        "code",
        """
table = result.table
core = table[(table["sector"] == "25.62") & (table["cluster_id"] != "")]
core.sort_values("establishments", ascending=False)[
    ["unit_id", "establishments", "expected", "lq", "lq_low", "lq_high", "p_value",
     "statistic", "label", "cluster_id"]
].head(8).round(3)
""",
    ),
    (
        "md",
        """
## 5. Export the report and a GeoPackage

`to_html` writes the report (French by default, `lang="en"` for English) as one file that
works offline; `to_file` writes the cluster polygons (layer `clusters`) and the tidy table
(layer `units_x_sectors`) to a GeoPackage for QGIS. Here both go to a temporary folder:
choose your own folder in practice.
""",
    ),
    (
        "code",
        """
import tempfile
from pathlib import Path

out_dir = Path(tempfile.mkdtemp(prefix="clustermap_sirene_"))
report = result.to_html(out_dir / "rapport_clusters.html", lang="fr")
gpkg = result.to_file(out_dir / "clusters.gpkg")

layers = gpd.list_layers(gpkg)
back = gpd.read_file(gpkg, layer="clusters")
print(report.name, f"{report.stat().st_size / 1e6:.1f} MB")
print(layers.to_string(index=False))
assert len(back) == len(result.clusters)
back[["cluster_id", "sector", "establishments", "lq", "unit_ids"]].head(3)
""",
    ),
    (
        "md",
        """
The command line does steps 1 to 5 in one go:

```bash
clustermap detect geo_siret_74.csv.gz --units communes_74.gpkg --unit-id code_insee \\
    --unit-name nom --level class --out rapport.html --gpkg clusters.gpkg
```
""",
    ),
]


# --------------------------------------------------------------------------- 03 statistics

STATISTICS = [
    (
        "md",
        """
# What the statistics mean, and how sure they are

A cluster map is only as good as the uncertainty behind it. This notebook uses the demo
data (where the truth is known) to show:

1. why a location quotient on small counts needs an **interval**;
2. what **local Moran (LISA)** and **Getis-Ord Gi\\*** each detect;
3. **permutation p-values** and the **false discovery rate**: the resolution trap at 999
   permutations and the adaptive fix;
4. how much the **zoning** changes the answer;
5. the **employee-band** sensitivity (low / mid / high imputation);
6. distance-based measures (**Duranton-Overman Kd**, **Marcon-Puech M**), which need no
   zoning at all.
""",
    ),
    (
        "code",
        """
import warnings

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import clustermap as cm

demo = cm.load_demo()
units, registry = demo.units, demo.registry
counts = cm.aggregate(registry, units)              # communes x sous-classes
print(counts.shape, int(counts.to_numpy().sum()), "establishments")
""",
    ),
    (
        "md",
        """
## 1. Location quotients on small counts

LQ = (share of the sector in the commune) / (share of the sector in the territory). With
three establishments in a small commune, one more or one fewer changes the LQ by a third.
`interval="poisson"` gives the exact (Garwood) 95 % interval of O / E, where O is the count
and E the count expected from the commune's total activity, and the one-sided p-value of
"LQ > 1". `smooth=True` adds the empirical-Bayes LQ, which pulls small communes towards the
sector mean.

Cutlery (25.71Z) was planted as a *moderate* cluster: few establishments per commune.
""",
    ),
    (
        "code",
        """
with warnings.catch_warnings():
    warnings.simplefilter("ignore")                  # 2 communes have no activity at all
    lq = cm.location_quotient(counts, interval="poisson", smooth=True)
cut = lq.tidy().query("sector == '25.71Z' and observed > 0")
high = cut[cut["lq"] >= 2]
print(f"{len(high)} communes with LQ >= 2, of which {int((high['lq_low'] > 1).sum())} "
      "have a 95 % interval above 1")
high.sort_values("lq", ascending=False).head(6).round(2)
""",
    ),
    (
        "code",
        """
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
ax = axes[0]
ax.errorbar(cut["observed"], cut["lq"], yerr=[cut["lq"] - cut["lq_low"],
            cut["lq_high"] - cut["lq"]], fmt="o", ms=3, alpha=0.5, elinewidth=0.8)
ax.axhline(1, color="grey", lw=0.8)
ax.set(yscale="log", xlabel="establishments of 25.71Z in the commune",
       ylabel="LQ with 95 % interval", title="Small counts, wide intervals")
ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))   # counts: 1, 2, 3… not 2×10⁰
ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
ax = axes[1]
ax.scatter(cut["lq"], cut["lq_smoothed"], s=8, alpha=0.6)
ax.plot([0.1, 200], [0.1, 200], color="grey", lw=0.8)
ax.set(xscale="log", yscale="log", xlabel="raw LQ", ylabel="empirical-Bayes LQ",
       title="Smoothing shrinks the small communes")
for axis in (ax.xaxis, ax.yaxis):
    axis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
fig.tight_layout()
""",
    ),
    (
        "code",
        """
# by hand: with O = 1 the Garwood lower bound is chi2(0.025; 2) / 2 / E = -ln(0.975) / E,
# above 1 only when fewer than 0.025 establishments were expected
single = cut[cut["observed"] == 1]
assert np.allclose(single["lq_low"], -np.log(0.975) / single["expected"])
print(f"{len(single)} communes with a single cutlery establishment: LQ from "
      f"{single['lq'].min():.1f} to {single['lq'].max():.1f}, "
      f"{int((single['lq_low'] > 1).sum())} with a lower bound above 1")
""",
    ),
    (
        "md",
        """
**Read it as**: an LQ above 2 is a specialisation only when its lower bound stays above 1.
`detect_clusters` applies that rule to whole cluster regions (the region's LQ must reach
`min_lq`, 1.5 by default, *and* its Garwood lower bound must exceed 1), which is why it
joins neighbouring communes before judging.

## 2. LISA and Gi\\*: two different questions

- **Local Moran's I** (Anselin 1995) compares a commune's value with its neighbours' mean,
  both relative to the territory's mean: *HH* (high among high, a cluster core), *LL*,
  and the outliers *HL* (a high commune among low ones) and *LH*.
- **Getis-Ord Gi\\*** (Getis & Ord 1992) asks whether the commune *and* its neighbours
  together hold an unusually large share of the total: *hot* spots (and *cold* spots with a
  two-sided test). It does not separate a cluster core from a high commune in a low area.

Both use conditional permutations: the commune's value stays fixed and its neighbours'
values are redrawn from the other communes. We run them on the smoothed LQ of three sectors.
""",
    ),
    (
        "code",
        """
graph = cm.build_graph(units, "queen", islands="knn")
sectors = ["25.62A", "20.42Z", "10.71C"]   # obvious, subtle, null (bakeries)
values = lq.lq_smoothed[sectors].fillna(0)   # 2 communes without activity -> 0
lisa = cm.local_moran(values, graph, permutations=999, random_state=7)
gi = cm.local_getis_ord(values, graph, permutations=999, random_state=7)
pd.crosstab(lisa.label["25.62A"], gi.label["25.62A"],
            rownames=["LISA (25.62A)"], colnames=["Gi*"])
""",
    ),
    (
        "code",
        """
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
colours = {"HH": "#d7191c", "HL": "#fdae61", "LH": "#abd9e9", "LL": "#2c7bb6",
           "hot": "#d7191c", "ns": "#eeeeee"}
from matplotlib.patches import Patch

words = {"HH": "HH: high among high", "HL": "HL: high among low", "LH": "LH: low among high",
         "LL": "LL: low among low", "hot": "hot spot", "ns": "not significant"}
for ax, (name, res) in zip(axes, [("local Moran", lisa), ("Gi*", gi)]):
    lab = res.label["25.62A"].reindex(units.index)
    units.plot(ax=ax, color=lab.map(colours).fillna("#eeeeee"), linewidth=0)
    ax.set_title(f"{name}, décolletage 25.62A (uncorrected 5 %)")
    ax.set_axis_off()
    shown = [k for k in colours if (lab == k).any()] + ["ns"]
    ax.legend(handles=[Patch(color=colours[k], label=words[k]) for k in dict.fromkeys(shown)],
              loc="lower left", fontsize=8, frameon=True)
fig.tight_layout()
""",
    ),
    (
        "md",
        """
The HH communes are Gi\\* hot spots; Gi\\* also marks a few *LH* communes (low, but
surrounded by the cluster) as hot, and LISA reports *HL* outliers that Gi\\* ignores. Use
Gi\\* to find where the activity piles up, LISA to see cores and outliers. Either way these
labels are **uncorrected** (5 % per commune): over 1 500 communes, about 75 false alarms per
sector are expected under the null, which is why a correction is needed.

## 3. Permutations and the false discovery rate

A permutation p-value is (M + 1) / (P + 1), where M counts the draws at least as extreme as
observed: with P = 999 the smallest possible value is 0.001. The Benjamini-Hochberg (BH)
procedure at level q rejects the r smallest p-values when p_(r) ≤ r·q / N. With N = 1 500
communes and q = 0.05, the smallest p-value must be ≤ 0.05 / 1 500 = 0.000033 for a single
rejection, and at P = 999 at least **30** communes must sit at p = 0.001 before anything is
rejected. That is the **resolution trap**: the result is all or nothing, decided by the
number of permutations rather than by the data. With 35 000 French communes the trap needs
700 communes at the floor.
""",
    ),
    (
        "code",
        """
rows, runs = {}, {}
for label, kwargs in {
    "P = 99": {"permutations": 99},
    "P = 999": {"permutations": 999},
    "adaptive, up to 99 999": {"permutations": 999, "adaptive": True,
                               "max_permutations": 99_999},
}.items():
    res = runs[label] = cm.local_getis_ord(values, graph, random_state=7, **kwargs)
    rows[label] = {
        **{f"p < 0.05, {s}": int((res.p_value[s] < 0.05).sum()) for s in sectors},
        **{f"BH 5 %, {s}": int(res.significant(alpha=0.05)[s].sum()) for s in sectors},
        "smallest p": float(res.p_value.min().min()),
    }
fdr = pd.DataFrame(rows).T
fdr = fdr.astype({c: int for c in fdr.columns if c != "smallest p"})
fdr
""",
    ),
    (
        "code",
        """
assert fdr.loc["P = 99", "BH 5 %, 25.62A"] == 0            # the trap: 0.01 > 30 x 0.05 / 1500
assert fdr.loc["adaptive, up to 99 999", "BH 5 %, 25.62A"] > 0
assert fdr.loc["adaptive, up to 99 999", "BH 5 %, 10.71C"] == 0   # null sector: nothing
""",
    ),
    (
        "md",
        """
- With **P = 99** nothing survives BH, even for the obvious cluster.
- With **P = 999** the obvious cluster passes (enough communes at the floor), the subtle
  perfume cluster does not.
- **Adaptive** permutations (`adaptive=True`) keep drawing only for the cells whose p-value
  is still small after 999 draws (most cells stop early), so the small p-values get the
  resolution they need at a fraction of the cost. Then BH can rank them, and the subtle
  cluster appears. The null sector (bakeries) stays clean: raw p < 0.05 counts of about 5 %
  are what chance gives.

`detect_clusters` avoids the trap differently: its unit test is an exact Poisson test on
counts (no resolution floor), and Gi\\* only adds a second opinion to the table.
""",
    ),
    (
        "code",
        """
res = runs["adaptive, up to 99 999"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.5))
axes[0].hist(res.p_value["10.71C"], bins=20, color="grey")
axes[0].set(title="null sector 10.71C: p-values roughly uniform", xlabel="p-value")
axes[1].hist(np.log10(res.n_permutations.to_numpy().ravel()), bins=30)
axes[1].set(title="draws used per cell (adaptive)", xlabel="log10(permutations)")
fig.tight_layout()
""",
    ),
    (
        "md",
        """
## 4. The zoning changes the answer (the modifiable areal unit problem)

The same establishments, aggregated to communes, to 5-km squares and to 15-km squares.
""",
    ),
    (
        "code",
        """
zonings = {
    "communes": units,
    "grid 5 km": cm.make_grid(registry, 5_000),
    "grid 15 km": cm.make_grid(registry, 15_000),
}
planted = demo.answer_key.query("kind == 'planted'").set_index("naf")["strength"]
summary = {}
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    for name, z in zonings.items():
        r = cm.detect_clusters(registry, z, sectors=list(planted.index) + ["10.71C", "96.02A"],
                               local_statistic=None)
        best = r.clusters.groupby("sector").first()
        summary[name] = {
            **{f"{naf} ({planted[naf]})": (f"{best.loc[naf, 'establishments']:.0f} est., "
                                            f"LQ {best.loc[naf, 'lq']:.1f}"
                                            if naf in best.index else "-")
               for naf in planted.index},
            "clusters in null sectors": int(r.clusters["sector"].isin(["10.71C", "96.02A"]).sum()),
            "units": len(z),
        }
pd.DataFrame(summary)
""",
    ),
    (
        "md",
        """
Coarser units gather more establishments into each cluster but dilute its LQ (décolletage:
17 on communes, 11 on 15-km squares; perfumes: 18 down to 3); finer units find tighter,
more specialised cores with counts so small that a subtle cluster holds few establishments.
Grids also cut through towns, and a null sector can then show a spurious cluster: the false
discovery rate is controlled *per zoning*, not across the zonings you try. No zoning is
"right": report the one that matches the decision (EPCI for economic-development policy),
and check that a cluster you care about survives a change of zoning. The distance-based
measures of section 6 avoid zoning altogether.

## 5. Employee bands: low, mid, high

SIRENE gives a size band per establishment, not a head-count (`12` means 20 to 49
employees). clustermap imputes the band midpoint by default (`employee_rule="mid"`) and
always keeps both bounds, so any employment figure can be given as a range. The LQ on
employment can be recomputed under the three rules with `interval="range"`:
""",
    ),
    (
        "code",
        """
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    emp = {m: cm.aggregate(registry, units, measure=m)
           for m in ["employees", "employees_low", "employees_high"]}
    emp_lq = cm.location_quotient(emp["employees"], interval="range",
                                  low=emp["employees_low"], high=emp["employees_high"])
result = cm.detect_clusters(registry, units, local_statistic=None)
top = result.clusters.head(6).set_index("cluster_id")
core = demo.answer_key.set_index("naf").loc["25.62A", "core"][:5]
pd.DataFrame({
    "LQ (mid)": emp_lq.lq.loc[core, "25.62A"],
    "LQ range low": emp_lq.lq_low.loc[core, "25.62A"],
    "LQ range high": emp_lq.lq_high.loc[core, "25.62A"],
}).round(2)
""",
    ),
    (
        "code",
        """
fig, ax = plt.subplots(figsize=(8, 3.5))
y = np.arange(len(top))
ax.errorbar(top["employees"], y, xerr=[top["employees"] - top["employees_low"],
            top["employees_high"] - top["employees"]], fmt="o", capsize=3)
ax.set_yticks(y, [f"{i} {p[:25]}" for i, p in zip(top.index, top["place"])])
ax.invert_yaxis()
ax.set(xlabel="employees (midpoint; bars: low-high band range)",
       title="Employment of the leading clusters under the three rules")
fig.tight_layout()
assert (top["employees_low"] <= top["employees"]).all()
assert (top["employees"] <= top["employees_high"]).all()
""",
    ),
    (
        "md",
        """
The ranking of clusters by establishments does not depend on the rule; employment totals
can move by a third either way, and the employment LQ of small communes can swing more.
Quote employment as a range.

## 6. Without zoning: Marcon-Puech M and Duranton-Overman Kd

Distance-based measures work on the points directly. **M** (Marcon & Puech 2010) is the
sector's share among the neighbours within r of its establishments, relative to its share
overall: M = 1 when the sector is spread like all activity, M > 1 when it concentrates.
**Kd** (Duranton & Overman 2005) is the density of distances between pairs of the sector's
establishments, compared with random draws among all establishment sites. Both come with
envelopes from random relocations (19 here to stay fast; use 100 or more for a study).
""",
    ),
    (
        "code",
        """
points = registry.establishments.to_crs(2154)
m = cm.m_function(points, ["25.62A", "86.21Z"], r=np.arange(1, 41, 2.0),
                  simulations=19, random_state=3)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
for ax, s in zip(axes, ["25.62A", "86.21Z"]):
    m.plot(ax=ax, sector=s)
    ax.set_title(f"M, {s}")
fig.tight_layout()
m.table.groupby("sector")["observed"].agg(["min", "max"]).round(3)
""",
    ),
    (
        "code",
        """
kd = cm.k_density(points, "25.62A", r=np.arange(0, 41, 1.0), options={"method": "binned"},
                  simulations=19, random_state=3)
ax = kd.plot(sector="25.62A")
ax.set_title("Kd, décolletage 25.62A")
print("localised between (km):", kd.localised_ranges("25.62A"))
assert bool(m.summary.loc["25.62A", "concentrated"]) and bool(kd.summary.loc["25.62A", "localised"])
""",
    ),
    (
        "md",
        """
The décolletage sector is concentrated at every distance, far above the envelope (M about
19 at 1 km, still above 2 at 40 km), and Kd locates the excess of short distances below
about 20 km, the radius of the planted valley. The general practitioners (86.21Z, a null
sector) follow population: their M stays within a few percent of 1, inside or grazing the
envelope. With only 19 simulations the envelope is itself noisy; a large sector can leave
it by a hair: read the size of M, not only the flag.

## What the statistics do not say

- A significant concentration is not a cluster in Porter's sense: it says nothing about
  links between the firms (supply chains, shared labour, institutions). Check with people
  on the ground.
- The registry counts **establishments**, and head-counts only as bands; a head office
  (70.10Z) or a temporary-work agency counts where it is registered, not where the work is
  done. Such sectors are flagged as artefacts.
- p-values are conditional on the zoning, the neighbour graph and the NAF level chosen; a
  different choice is a different question.
""",
    ),
]


# --------------------------------------------------------------------------- 04 related industries

RELATED = [
    (
        "md",
        """
# Related industries: cluster categories, relatedness, clusters of several codes

Porter's clusters are *interconnected* industries: the décolletage of the Arve valley is bar
turning, machining, surface treatment, tooling and the machine makers around them, not one
NAF code. This notebook shows the three tools clustermap offers for that:

1. the **cluster categories** shipped with the package (the U.S. benchmark definitions of
   Delgado, Porter & Stern 2016, carried to NAF through the official concordances, with the
   French overrides documented), usable as `level="cluster_category"`;
2. **relatedness** measured on your own registry (`cm.relatedness`): the
   Ellison-Glaeser-Kerr coagglomeration index, the locational correlation, and the
   co-location of significant concentrations;
3. **categories derived from that relatedness** (`cm.derive_categories`), and detection over
   them.

The first part runs on the bundled demo. The second part uses the national synthetic
registry and the real URSSAF file of the Rouen area when the `shared/datasets` folder sits
beside the project (or `CLUSTERMAP_SHARED_DATASETS` points to it), and says so otherwise.
""",
    ),
    (
        "code",
        """
import os
import warnings
from pathlib import Path

import pandas as pd

import clustermap as cm

warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
pd.set_option("display.width", 140)
cat = cm.cluster_categories()
print(len(cat), "sous-classes;", cat["category"].nunique(), "categories;",
      cat["type"].value_counts().to_dict())
cat.loc[["25.62A", "25.62B", "25.61Z", "25.73B", "28.41Z", "22.29A", "25.73A", "28.96Z"],
        ["name", "type", "share", "source"]]
""",
    ),
    (
        "md",
        """
The overrides and their reasons (the mechanical chain NACE → ISIC → NAICS → U.S. cluster is
wrong where a U.S. industry definition does not match the French activity):
""",
    ),
    (
        "code",
        """
overrides = cat[cat["source"] == "override"].drop_duplicates("note")
for code, row in overrides.iterrows():
    print(f"{code} -> {row['name_en']} ({row['type']}): {row['note'][:110]}…")
""",
    ),
    (
        "md",
        """
## Detection over categories, on the demo

At `level="cluster_category"` a cluster is a concentration of a whole category; its
`composition` says which codes make it, and `codes` sums it up in the cluster table.
""",
    ),
    (
        "code",
        """
demo = cm.load_demo()
by_cat = cm.detect_clusters(demo.registry, demo.units, level="cluster_category",
                            local_statistic=None)
print(by_cat)
by_cat.clusters[["cluster_id", "sector_label", "sector_type", "place", "establishments",
                 "lq", "lq_within_type", "codes"]].head(6)
""",
    ),
    (
        "code",
        """
top = by_cat.clusters["cluster_id"].iloc[0]
by_cat.composition[by_cat.composition["cluster_id"] == top].round(2)
""",
    ),
    (
        "md",
        """
## Relatedness on a national registry

The rest needs the national synthetic registry `synthetic_france_v2` (planted groups of
related codes, each weak alone: *Arve decolletage and mechanical subcontracting* = 25.62B,
25.61Z, 25.73B, 28.41Z around Cluses; *Plastics Vallée* = 22.29B, 22.22Z, 25.73A, 28.96Z
around Oyonnax) and the real URSSAF counts of the Rouen area.
""",
    ),
    (
        "code",
        """
DATA = Path(os.environ.get("CLUSTERMAP_SHARED_DATASETS", Path("..", "..", "shared", "datasets")))
HAVE_DATA = (DATA / "synthetic_france_v2" / "registry.csv.gz").is_file()
print("national data found" if HAVE_DATA else
      "shared/datasets not found: the national part below is skipped")
if HAVE_DATA:
    registry = cm.read_registry(DATA / "synthetic_france_v2" / "registry.csv.gz")
    communes = cm.read_units(DATA / "france_boundaries" / "communes_2018_simplified.parquet",
                             unit_id="code_insee", name="nom")
    key = pd.read_csv(DATA / "synthetic_france_v2" / "answer_key.csv", dtype=str,
                      keep_default_na=False)
    groups = {row["name"]: row["naf_group"].split(";")
              for _, row in key[key["kind"] == "planted_group"].iterrows()}
    rel = cm.relatedness(registry, communes)
    print(len(rel.sectors), "sectors,", len(rel.pairs()), "pairs")
""",
    ),
    (
        "md",
        """
The coagglomeration index and the locational correlation at the commune level follow the
shared urban gradient: urban industries all co-locate in the large cities, so a code's most
related partners are other urban (or other rural) codes. The co-location of *significant
local concentrations* compares where the codes are concentrated beyond noise, and finds the
planted partners:
""",
    ),
    (
        "code",
        """
if HAVE_DATA:
    for code in ("25.62B", "22.29B"):
        show = pd.concat({m: rel.related(code, n=4, measure=m)["sector"].reset_index(drop=True)
                          for m in ("coagglomeration", "correlation", "colocation")}, axis=1)
        print(code, "- most related by each measure")
        print(show.to_string(index=False), end="\\n\\n")
""",
    ),
    (
        "md",
        """
## Categories derived from the registry

`derive_categories` clusters the sectors hierarchically on `1 - colocation` and keeps the
cut that groups the most sectors while 95 % of the grouped ones are more related to their
own category than to any other (the validation score of Delgado, Porter & Stern) and the
mean relatedness inside categories stays at 0.25 or more. Sectors related to no other stay
alone. A category sharing a single place with another code by chance (a planted code and a
small sector with one excess in the same town) is indistinguishable from a real link with
one place: read `within` and the codes.
""",
    ),
    (
        "code",
        """
if HAVE_DATA:
    derived = cm.derive_categories(rel)
    print("cut at distance", derived.threshold, "-", len(derived.categories),
          "categories of two codes or more")
    print(derived.scores.set_index("threshold").loc[[0.9, derived.threshold, 0.99]].round(3))
    for name, codes in groups.items():
        print(f"{name}: derived", sorted({derived.mapping[c] for c in codes}),
              "| shipped", sorted(set(cat.loc[codes, "category"])))
""",
    ),
    (
        "md",
        """
Agreement between the derived categories and the shipped ones: for each derived category
of two codes or more, the share of its codes in its most common shipped category.
""",
    ),
    (
        "code",
        """
if HAVE_DATA:
    rows = []
    for _, row in derived.categories.iterrows():
        shipped = cat.loc[row["sectors"], "category"]
        rows.append({"derived": row["category"], "codes": len(row["sectors"]),
                     "within": round(row["within"], 3),
                     "main shipped category": shipped.value_counts().index[0],
                     "agreement": round(shipped.value_counts().iloc[0] / len(shipped), 2)})
    agreement = pd.DataFrame(rows)
    print("mean agreement", round(agreement["agreement"].mean(), 2))
    print(agreement.head(15).to_string(index=False))
""",
    ),
    (
        "md",
        """
## Single codes against groups

Each code of a planted group is weak alone: single-code detection finds some of them; the
group is found as one cluster at the category level (the Arve group is one shipped
category; the Plastics Vallée spans three shipped categories, and is one derived category).
""",
    ),
    (
        "code",
        """
if HAVE_DATA:
    single = cm.detect_clusters(registry, communes, local_statistic=None)
    shipped = cm.detect_clusters(registry, communes, level="cluster_category",
                                 local_statistic=None)
    by_derived = cm.detect_clusters(registry, communes, level=derived.mapping,
                                    local_statistic=None)
    centre = {"Arve decolletage and mechanical subcontracting": "74081",
              "Plastics Vallee": "01283"}
    rows = []
    for name, codes in groups.items():
        for code in codes:
            here = single.clusters[single.clusters["sector"] == code]
            alone = bool(here["unit_ids"].map(lambda ids: centre[name] in ids).any())
            rows.append({"group": name, "code": code, "found alone": alone})
    print(pd.DataFrame(rows).to_string(index=False))
    for label, res in (("shipped categories", shipped), ("derived categories", by_derived)):
        for name, codes in groups.items():
            comp = res.composition
            hit = res.clusters[res.clusters["unit_ids"].map(lambda ids: centre[name] in ids)]
            hit = hit[hit["cluster_id"].isin(comp.loc[comp["code"].isin(codes), "cluster_id"])]
            inside = set(comp.loc[comp["cluster_id"].isin(hit["cluster_id"]), "code"])
            print(f"{label}: {name}: codes of the group in its cluster:",
                  sorted(set(codes) & inside))
""",
    ),
    (
        "md",
        """
## Real data: the most related pairs of the Rouen area

URSSAF counts establishments and salaried jobs per commune × APE code, in one zone
d'emploi. The locational correlation of employment is close to 1 for many pairs: where
both sectors have most of their jobs in Rouen itself, it measures the size of the city, not
a link. The coagglomeration index of employment compares each sector's spread with that of
all jobs; the co-location of significant concentrations keeps only concentrations beyond
noise, and finds few in one zone d'emploi (pairs with at least 20 establishments each).
""",
    ),
    (
        "code",
        """
urssaf = DATA / "urssaf" / "urssaf_commune_x_ape_ze_rouen_2006_2022.csv.gz"
if urssaf.is_file():
    tables = cm.read_counts(urssaf)
    rouen = communes[communes.index.isin(tables.establishments.index)]
    rel_rouen = cm.relatedness(tables, rouen)
    pairs = rel_rouen.pairs()
    pairs = pairs[(pairs["establishments_a"] >= 20) & (pairs["establishments_b"] >= 20)]
    labels = cm.sector_labels(pd.Series(rel_rouen.sectors["sector"]))
    labels.index = rel_rouen.sectors["sector"]
    share_high = (pairs["correlation_employees"] > 0.9).mean()
    print(f"pairs with an employment correlation above 0.9: {share_high:.0%}")
    for measure in ("coagglomeration_employees", "colocation"):
        best = pairs[pairs[measure] > 0].sort_values(measure, ascending=False).head(8)
        print("most related by", measure)
        for a, b, v in zip(best["sector_a"], best["sector_b"], best[measure]):
            print(f"  {v:6.3f}  {a} {labels[a][:38]:38s} | {b} {labels[b][:38]}")
else:
    print("URSSAF file not found: skipped")
""",
    ),
]


# --------------------------------------------------------------------------- 05 territory

TERRITORY = [
    (
        "md",
        """
# Your territory: its clusters, and whom to call

A council, an EPCI or a chamber of commerce works for one territory. The analysis still runs
on the whole study area (a location quotient needs the rest of the country); the territory
selects what is shown: its **portfolio** (the clusters touching it, the sectors it is
specialised in), the **firms to call** in each cluster, and a report that opens on it.

A territory is a list of unit ids, an EPCI code (with the commune → EPCI table of the COG), a
département code, or a polygon. On the bundled demo, we take the area within 15 km of the
planted décolletage valley's centre.
""",
    ),
    (
        "code",
        """
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import pandas as pd

import clustermap as cm

warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
pd.set_option("display.width", 140)
demo = cm.load_demo()
result = cm.detect_clusters(demo.registry, demo.units, local_statistic=None)
centre = demo.units.to_crs(2154).loc["D1387"].geometry.centroid
area = gpd.GeoSeries([centre.buffer(15_000)], crs=2154)  # a 15 km circle, in metres
territory = cm.resolve_territory(area, result.units, name="Vallée du décolletage")
print(territory.name, "-", len(territory.ids), "units")
""",
    ),
    (
        "md",
        """
## The portfolio

Clusters touching the territory first (traded ones first, as in the whole list), with their
establishments inside the territory, then the sectors in which the territory as a whole is
significantly specialised without a cluster.
""",
    ),
    (
        "code",
        """
portfolio = result.portfolio(area, name="Vallée du décolletage")
portfolio[["kind", "sector", "sector_label", "sector_type", "establishments", "lq", "lq_low",
           "share_of_sector"]].round(2)
""",
    ),
    (
        "md",
        """
## Whom to call

The establishments of each cluster inside the territory, largest first. In a real SIRENE
file, establishments under statistical secrecy (`statutDiffusionEtablissement` other than
`O`) are counted in `attrs["withheld"]` and not listed.
""",
    ),
    (
        "code",
        """
firms = result.firms(area)
print(len(firms), "establishments to contact;", firms.attrs["withheld"], "withheld")
firms.head(8)
""",
    ),
    (
        "md",
        """
## The report and the Excel file

`write_report(..., territory=...)` opens on the territory: its map, the portfolio, one fiche
per cluster with its firm list, then the national context; every table can be downloaded as
CSV from the page. `export_firms` writes one Excel sheet per cluster. On the command line:
`clustermap detect FILE --territory 200033116 --cog communes_cog.csv --xlsx firms.xlsx`.
""",
    ),
    (
        "code",
        """
with tempfile.TemporaryDirectory() as folder:
    page = cm.write_report(result, Path(folder) / "territoire.html", territory=territory)
    book = result.export_firms(Path(folder) / "entreprises.xlsx", area)
    import openpyxl

    sheets = openpyxl.load_workbook(book).sheetnames
    print(page.name, f"{page.stat().st_size / 1e6:.1f} MB;", "Excel sheets:", sheets)
""",
    ),
]

DYNAMICS = [
    (
        "md",
        """
# Clusters over time: new, growing, stable, shrinking, disappeared

"Where are our clusters?" is followed by "are they growing?". clustermap answers with three
tools:

- `cm.stock_at_dates`: a registry's stock of establishments at several dates, in one pass
  (creation date, and closure date for the closed ones); or the creations / closures of each
  period;
- `cm.cluster_trends`: the same detection at every date, clusters followed across dates (same
  sector, shared places) over a fixed footprint, and classed by an exact test of the change of
  their **location quotient** between the first and the last date;
- `cm.space_time_scan`: Kulldorff's space-time permutation scan of every sector's creations
  (or closures), for activity that appeared (or vanished) in one place at one time.

Everything is *relative*. A registry's stock grows over time as establishments closed long
ago drop out of it, so a cluster that keeps its weight grows in raw counts too. A class says
whether the cluster's specialisation changed, and its growth is shown against the national
growth of its sector.

First, a planted answer on a 15 × 15 grid: five blocks of sector "a", one per class, while the
whole stock grows 2.2-fold over the ten years.
""",
    ),
    (
        "code",
        """
import os
import tempfile
import warnings
from pathlib import Path

import geopandas as gpd
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from shapely.geometry import box

import clustermap as cm

warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
pd.set_option("display.width", 160)
n = 15
ids = [f"c{i:03d}" for i in range(n * n)]
grid = gpd.GeoDataFrame({"name": [f"Ville {i}" for i in range(n * n)]},
                        geometry=[box(i % n, i // n, i % n + 1, i // n + 1) for i in range(n * n)],
                        index=pd.Index(ids, name="unit_id"), crs=2154)
planted = {  # block corner -> sector "a" in the block at 2010, 2015, 2020
    "stable": ((0, 0), (40, 40, 40)), "growing": ((0, 6), (30, 45, 75)),
    "new": ((0, 12), (8, 8, 45)), "shrinking": ((7, 0), (90, 60, 30)),
    "disappeared": ((7, 6), (45, 20, 8)),
}
panel = {}
for t, (year, g) in enumerate(zip((2010, 2015, 2020), (1.0, 1.5, 2.2))):
    a = np.full(n * n, 8.0)
    for (r, c), values in planted.values():
        a[[(r + i) * n + c + j for i in range(3) for j in range(3)]] = values[t]
    panel[year] = pd.DataFrame({"a": np.round(a * g), "other": round(200 * g) - np.round(a * g)},
                               index=ids)
trends = cm.cluster_trends(panel, grid)
print(trends)
cols = ["place", "trend", "establishments_first", "establishments_last", "growth",
        "national_growth", "lq_first", "lq_last", "change_q"]
print(trends.trends[cols].round(3).to_string())
found = {}
for _, row in trends.trends.iterrows():
    for name, ((r, c), _) in planted.items():
        if f"c{r * n + c:03d}" in row["unit_ids"]:
            found[name] = row["trend"]
assert found == {name: name for name in planted}
print("planted classes recovered:", found == {name: name for name in planted})
""",
    ),
    (
        "md",
        """
The stable block grew by 120 % in establishments — as much as the whole economy — and is
classed *stable*: its LQ did not move. Each class rests on the exact conditional test of two
Poisson rates (the establishments at the last date among those at both dates, against the
share their expected counts give), adjusted over the followed clusters (Benjamini–Hochberg).
Stocks at two dates share most of their establishments, which makes the test conservative.

## A national registry with dates

The rest needs the national synthetic registry `synthetic_france_v2` (planted *emerging* and
*declining* clusters with their answer key) and the real URSSAF counts of the Rouen area; it
runs when the `shared/datasets` folder sits beside the project (or
`CLUSTERMAP_SHARED_DATASETS` points to it), and says so otherwise. Read the registry with
`include_closed=True`: the establishments closed since were in the past stocks.
""",
    ),
    (
        "code",
        """
DATA = Path(os.environ.get("CLUSTERMAP_SHARED_DATASETS", Path("..", "..", "shared", "datasets")))
HAVE_DATA = (DATA / "synthetic_france_v2" / "registry.csv.gz").is_file()
print("national data found" if HAVE_DATA else
      "shared/datasets not found: the national part below is skipped")
if HAVE_DATA:
    registry = cm.read_registry(DATA / "synthetic_france_v2" / "registry.csv.gz",
                                options={"include_closed": True})
    communes = cm.read_units(DATA / "france_boundaries" / "communes_2018_simplified.parquet",
                             unit_id="code_insee", name="nom")
    key = pd.read_csv(DATA / "synthetic_france_v2" / "answer_key.csv", dtype=str,
                      keep_default_na=False)
    stocks = cm.stock_at_dates(registry, communes, [2005, 2010, 2015, 2020, 2025])
    totals = stocks.totals()
    print(totals.to_string())
    print(f"the stock grows {totals.iloc[-1] / totals.iloc[1]:.1f}-fold from 2010 to 2025")
""",
    ),
    (
        "code",
        """
if HAVE_DATA:
    codes = sorted(set(key["naf"]) | {c for g in key["naf_group"] for c in g.split(";") if c})
    followed = cm.cluster_trends(stocks, sectors=codes)  # the answer key's codes, for speed
    print(followed)
    show = ["sector", "place", "trend", "detected", "establishments_first",
            "establishments_last", "growth", "national_growth", "lq_first", "lq_last"]
    print(followed.trends[show].round(2).to_string())
    for kind in ("emerging", "declining"):
        row = key[key["kind"] == kind].iloc[0]
        holds = np.array([row["centre"] in u for u in followed.trends["unit_ids"]], dtype=bool)
        hit = followed.trends[(followed.trends["sector"] == row["naf"]).to_numpy() & holds]
        print(f"{kind} ({row['name']}): {hit['trend'].tolist()}")
    null = set(key.loc[key["kind"] == "null_sector", "naf"])
    print("null sectors with a followed cluster:", int(followed.trends["sector"].isin(null).sum()),
          "of", len(null))
""",
    ),
    (
        "md",
        """
The e-bike assembly of Bordeaux (planted from 2016, mostly 2020–2025) is *new*: not a
cluster in 2005, a clearly stronger specialisation in 2025. The Vosges textile cluster
(planted 1975–2004, 70 % closed between 2012 and 2024) is *disappeared*: detected up to 2020,
no longer in 2025, its LQ fell from about 21 to 4. The eight static clusters are *stable*
although their establishments grew four- to six-fold, as the whole stock did; no null sector
has a followed cluster at all.

A series of one followed cluster:
""",
    ),
    (
        "code",
        """
if HAVE_DATA:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for sector in ("30.92Z", "13.20Z", "25.62A"):
        track = followed.trends[followed.trends["sector"] == sector].iloc[0]
        series = followed.track(track["track_id"])
        ax.plot(series["date"].str[:4], series["lq"], marker="o",
                label=f"{sector} {track['place'][:28]} ({track['trend']})")
    ax.set_yscale("log")
    ax.set_ylabel("LQ of the footprint")
    ax.legend(fontsize=8)
    plt.show()
""",
    ),
    (
        "md",
        """
## The space-time scan

Where did a sector's **creations** concentrate in space and time beyond its map and its
calendar? `stock_at_dates(..., measure="created")` counts the creations of each period (the
first period holds everything created before its date), and `space_time_scan` looks at every
cylinder (a circle of communes × an interval of periods) of every sector at once, with Monte
Carlo inference (999 replications by default; 199 here). A static cluster is explained by its
map and is not found; the closures of a declining one are (`measure="closed"`).
""",
    ),
    (
        "code",
        """
if HAVE_DATA:
    scan_codes = ["30.92Z", "13.20Z", *sorted(null)]
    dates = [2005, 2010, 2015, 2020, 2025]
    for measure in ("created", "closed"):
        events = cm.stock_at_dates(registry, communes, dates, measure=measure)
        scan = cm.space_time_scan(events, sectors=scan_codes, n_permutations=199, random_state=1)
        cols = ["sector", "centre", "n_units", "first_period", "last_period", "observed",
                "expected", "llr", "p_value", "q_value"]
        significant = scan.loc[scan["q_value"] <= 0.05, "sector"].tolist()
        print(measure, "- significant sectors:", sorted(significant))
        print(scan[cols].head(4).round(4).to_string(), "\\n")
""",
    ),
    (
        "md",
        """
## The Rouen area: the fastest-growing specialisations (real URSSAF counts)

The URSSAF file gives salaried employment by commune × APE code for every year since 2006.
`read_count_panel` reads every year at once; `shift_share` splits each cell's change into
national growth, industry mix and regional share (they add up to the change exactly). Here
"national" is the whole file (the Rouen employment area). The five fastest-growing
specialisations: cells with an employment LQ of at least 2 in 2022 and at least 100 jobs,
ranked by their regional share (the growth beyond what their sector did in the area).
""",
    ),
    (
        "code",
        """
ROUEN = DATA / "urssaf" / "urssaf_commune_x_ape_ze_rouen_2006_2022.csv.gz"
if ROUEN.is_file():
    years = cm.read_count_panel(ROUEN)
    jobs = {y: t.employees for y, t in years.items()}
    change = cm.shift_share(jobs[2006], jobs[2022], years=16)
    parts = change[["national_growth", "industry_mix", "regional_share"]].sum(axis=1)
    print("components sum to the change, worst gap:", float((parts - change["change"]).abs().max()))
    top = change[(change["lq_after"] >= 2) & (change["after"] >= 100)]
    top = top.sort_values("regional_share", ascending=False).head(5)
    names = communes["name"] if HAVE_DATA else pd.Series(dtype=str)
    labels = cm.sector_labels(top["sector"])
    top = top.assign(commune=[names.get(u, u) for u in top["unit_id"]],
                     label=[str(v)[:40] for v in labels])
    print(top[["commune", "sector", "label", "before", "after", "cagr", "lq_after",
               "regional_share"]].round(3).to_string())
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for _, row in top.iterrows():
        series = [jobs[y].loc[row["unit_id"], row["sector"]] for y in sorted(jobs)]
        ax.plot(sorted(jobs), series, marker=".", label=f"{row['commune']} - {row['label'][:30]}")
    ax.set_ylabel("salaried jobs")
    ax.legend(fontsize=7)
    plt.show()
""",
    ),
    (
        "md",
        """
## The report and the command line

`TrendResult.to_html` writes the report of the last date with its *Dynamique / Trends*
section: each followed cluster's class, a small chart of its LQ at every date, its growth
against the national growth of its sector, and the specialisation-versus-change chart (of a
territory's sectors with `territory=`). The command line does the same with
`clustermap detect registry.csv.gz --dates 2010,2015,2020,2025` (a dated SIRENE file) or
`clustermap detect urssaf.csv --units communes.parquet --years 2008,2014,2022`.
""",
    ),
    (
        "code",
        """
with tempfile.TemporaryDirectory() as folder:
    page = trends.to_html(Path(folder) / "trends.html", lang="en")
    html_text = page.read_text(encoding="utf-8")
    print(page.name, "has the trends section:", 'id="cm-trends"' in html_text)
""",
    ),
]


def build(folder: Path = HERE) -> list[Path]:
    """Write the notebooks into ``folder`` and return their paths."""
    out = []
    for name, cells in [
        ("01_quickstart.ipynb", QUICKSTART),
        ("02_sirene_workflow.ipynb", SIRENE),
        ("03_statistics.ipynb", STATISTICS),
        ("04_dynamics.ipynb", DYNAMICS),
        ("05_territory.ipynb", TERRITORY),
        ("06_related_industries.ipynb", RELATED),
    ]:
        path = folder / name
        nbformat.write(_nb(cells), path)
        out.append(path)
    return out


if __name__ == "__main__":
    for p in build():
        print("wrote", p.name)
