"""Build the commune-code table shipped with clustermap (run from anywhere).

    python datasets/build_commune_codes.py COG_TABLE POLYGONS_2018 [output_folder]

``COG_TABLE`` is the current Code officiel géographique as published in the npm package
``@etalab/decoupage-administratif`` (``data/communes.json`` flattened to CSV: columns
``code``, ``nom``, ``type``, ``chefLieu``; INSEE data, MIT-licensed package by Etalab);
``POLYGONS_2018`` any table of the 2018 commune polygons with a ``code_insee`` column (IGN
Admin Express COG 2018). The output folder defaults to ``src/clustermap/data``. Writes
``commune_codes_2018.csv.gz``: ``code``, ``code_2018``, ``how``, one row per commune code the
COG knows, and one per 2018 polygon:

``same``
    the code is a 2018 commune.
``arrondissement``
    a municipal arrondissement of Paris (751xx), Lyon (6938x) or Marseille (132xx), which
    SIRENE and URSSAF use and the 2018 polygons do not: its city (75056, 69123, 13055).
``merged``
    a commune absorbed into a commune nouvelle (a delegated or associated commune) whose
    code is not a 2018 polygon: the commune that absorbed it.
``new_commune``
    a commune created after 2018 under a new code: the 2018 commune among those it absorbed
    that bears its name, else the first of them by code (its establishments land in one of
    its former communes; the table says which).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

#: arrondissement code prefixes -> their city
CITIES = {"751": "75056", "6938": "69123", "132": "13055"}


def build(cog_table: Path, polygons: Path, folder: Path) -> Path:
    """Write ``commune_codes_2018.csv.gz`` into ``folder`` and return its path."""
    cog = pd.read_csv(cog_table, dtype=str, keep_default_na=False)
    if polygons.suffix == ".parquet":
        codes_2018 = pd.read_parquet(polygons, columns=["code_insee"])["code_insee"]
    else:
        codes_2018 = pd.read_csv(polygons, dtype=str, usecols=["code_insee"])["code_insee"]
    s2018 = set(codes_2018.astype(str))
    rows = {c: (c, "same") for c in sorted(s2018)}
    for code, typ in zip(cog["code"], cog["type"]):
        if code in rows or typ != "arrondissement-municipal":
            continue
        city = next(v for k, v in CITIES.items() if code.startswith(k))
        rows[code] = (city, "arrondissement")
    absorbed = cog[cog["type"].isin(["commune-deleguee", "commune-associee"])]
    for code, parent in zip(absorbed["code"], absorbed["chefLieu"]):
        if code not in rows and parent in s2018:
            rows[code] = (parent, "merged")
    members = absorbed.groupby("chefLieu")
    names = dict(zip(cog["code"], cog["nom"]))
    for code, typ in zip(cog["code"], cog["type"]):
        if code in rows or typ != "commune-actuelle" or code not in members.groups:
            continue
        old = members.get_group(code)
        old = old[old["code"].isin(s2018)].sort_values("code")
        if not len(old):
            continue
        same_name = old[old["nom"] == names.get(code)]
        target = (same_name if len(same_name) else old)["code"].iloc[0]
        rows[code] = (target, "new_commune")
    out = pd.DataFrame(
        [(c, t, h) for c, (t, h) in rows.items()], columns=["code", "code_2018", "how"]
    ).sort_values("code")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "commune_codes_2018.csv.gz"
    with open(path, "wb") as raw:
        import gzip

        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:  # byte-stable output
            gz.write(out.to_csv(index=False, lineterminator="\n").encode("utf-8"))
    return path


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    here = Path(__file__).resolve().parent
    target = Path(sys.argv[3]) if len(sys.argv) > 3 else here.parent / "src" / "clustermap" / "data"
    print(build(Path(sys.argv[1]), Path(sys.argv[2]), target))
