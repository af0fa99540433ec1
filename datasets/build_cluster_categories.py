"""Build the NAF cluster-category mapping shipped with clustermap (run from anywhere).

    python datasets/build_cluster_categories.py CONCORDANCES_FOLDER [output_folder]

``CONCORDANCES_FOLDER`` holds the public concordance tables described below; the output
folder defaults to ``src/clustermap/data``. Writes two UTF-8 CSV files:

``naf_cluster_categories.csv``
    one row per NAF rév. 2 sous-classe (732): ``naf``, ``category`` (a short id),
    ``type`` (``traded`` / ``local``), ``share`` (share of the NAICS links of the class
    that lead to this category), ``confidence`` (``high`` share >= 0.75, ``medium``
    >= 0.5, ``low``, ``override``), ``second_category``, ``source`` (``chain`` or
    ``override``) and ``note`` (why an override was made).
``cluster_categories.csv``
    one row per category: ``category``, ``name_en`` (the U.S. benchmark name),
    ``name_fr`` (written for this project), ``type``, ``sous_classes`` (how many).
``naics_cluster_categories.csv``
    the U.S. benchmark clusters themselves on NAICS 2012 (for County Business Patterns):
    ``naics``, ``category``, ``type``, ``subcluster``, ``source`` (``benchmark``, or
    ``override`` for the industries the benchmark leaves out: public administration 92 is
    local public administration, as for NAF; notaries 541120 local commercial services;
    private households 814110, local without a cluster name in the benchmark, local personal
    services as NAF 97.00Z).

Where the categories come from
------------------------------
The U.S. Cluster Mapping Project's benchmark cluster definitions (Delgado, Porter & Stern
2016, *J. Econ. Geogr.* 16(1)) put every NAICS 2012 industry in one of 51 *traded* clusters
(industries that sell beyond their region and concentrate in a few places) or in one of the
*local* clusters (industries present everywhere in proportion to population). No
machine-readable European definition on NACE exists, so the chain is mechanical: NAF
sous-classe -> its NACE Rev. 2 class -> ISIC Rev. 4 (UN table) -> NAICS 2012 (U.S. Census
technical concordance, each link weighted 1 when it covers the whole NAICS industry or most of
it, 0.1 when it covers a described part) -> benchmark cluster. A class takes the cluster
holding the largest share of its weighted links (``primary_cluster`` of the input table
``naf2_sous_classe_us_cluster.csv``, which carries that share and a confidence).

The input table was derived from the UN NACE Rev. 2 - ISIC Rev. 4 concordance, the U.S. Census
NAICS 2012 - ISIC Rev. 4 concordance and the benchmark cluster file of the U.S. Cluster Mapping
Project; this script only reads it, applies the overrides below and writes the package's files.

Overrides
---------
The chain is wrong for France where a U.S. industry definition does not match the French
activity, or where the U.S. benchmark does not cover it. Every override is listed in
``OVERRIDES`` with its reason and is flagged ``source=override`` in the output.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pandas as pd

#: sous-classe (or class prefix) -> (category English name, reason). Applied in this order.
OVERRIDES: dict[str, tuple[str, str]] = {
    "25.62A": (
        "Metalworking Technology",
        "Décolletage is precision turned product manufacturing (NAICS 332721, traded "
        "Metalworking Technology, subcluster Fasteners); the chain reaches class 25.62 mostly "
        "through Machine Shops (332710), a local industry in the U.S. benchmark, so its "
        "confidence was only medium.",
    ),
    "25.62B": (
        "Metalworking Technology",
        "Mécanique industrielle is subcontract machining for manufacturers that sells well "
        "beyond its region (the Arve valley, the Vallée de la Bresle); the U.S. benchmark "
        "counts job-shop machining (332710) as local. Kept traded.",
    ),
    "28.23Z": (
        "Information Technology and Analytical Instruments",
        "Office machinery: the chain's first choice (Downstream Chemical Products, share "
        "0.25) comes from a toner-cartridge link; the machines themselves are IT equipment.",
    ),
    "33.19Z": (
        "Local Industrial Products and Services",
        "Repair of other equipment: the chain's first choice (Performing Arts, share 0.33) "
        "comes from musical-instrument repair; industrial repair is a local service.",
    ),
    "49.32Z": (
        "Local Logistical Services",
        "Taxis serve their own town (U.S. taxi service is local); the chain's Business "
        "Services came from a shared ISIC class.",
    ),
    "49.39A": (
        "Local Logistical Services",
        "Regular road passenger transport (buses, coaches) serves its own area.",
    ),
    "84": (
        "Local Public Administration",
        "Public administration is not covered by the U.S. benchmark (government payrolls are "
        "left out of County Business Patterns); it serves its population, so it is local "
        "here, in a category of its own.",
    ),
    "85.10Z": (
        "Local Education and Training",
        "Pre-primary schools serve their population (the U.S. Education and Knowledge "
        "Creation cluster is universities and research).",
    ),
    "85.20Z": (
        "Local Education and Training",
        "Primary schools serve their population (the U.S. Education and Knowledge Creation "
        "cluster is universities and research).",
    ),
    "97.00Z": (
        "Local Personal Services (Non-Medical)",
        "Households employing domestic staff: a local service, not covered by the U.S. benchmark.",
    ),
    "98": (
        "Local Personal Services (Non-Medical)",
        "Households producing for their own use: local by nature, not covered by the U.S. "
        "benchmark.",
    ),
    "99.00Z": (
        "Local Public Administration",
        "Extraterritorial organisations (embassies, international bodies) are public bodies "
        "placed by policy; not covered by the U.S. benchmark.",
    ),
}

#: French names written for this project (English names are the U.S. benchmark's).
NAMES_FR: dict[str, str] = {
    "Aerospace Vehicles and Defense": "Aéronautique, spatial et défense",
    "Agricultural Inputs and Services": "Agriculture et services agricoles",
    "Apparel": "Habillement",
    "Automotive": "Automobile",
    "Biopharmaceuticals": "Pharmacie et biotechnologies",
    "Business Services": "Services aux entreprises",
    "Coal Mining": "Extraction de charbon",
    "Communications Equipment and Services": "Équipements et services de communication",
    "Construction Products and Services": "Produits et services de construction",
    "Distribution and Electronic Commerce": "Commerce de gros et vente à distance",
    "Downstream Chemical Products": "Chimie de spécialité et de consommation",
    "Downstream Metal Products": "Articles métalliques",
    "Education and Knowledge Creation": "Enseignement supérieur et recherche",
    "Electric Power Generation and Transmission": "Production et transport d'électricité",
    "Environmental Services": "Services environnementaux",
    "Financial Services": "Services financiers",
    "Fishing and Fishing Products": "Pêche et produits de la mer",
    "Food Processing and Manufacturing": "Industries agroalimentaires et boissons",
    "Footwear": "Chaussure",
    "Forestry": "Sylviculture",
    "Furniture": "Ameublement",
    "Hospitality and Tourism": "Tourisme et hébergement",
    "Information Technology and Analytical Instruments": (
        "Informatique, électronique et instruments de mesure"
    ),
    "Insurance Services": "Assurance",
    "Jewelry and Precious Metals": "Bijouterie et métaux précieux",
    "Leather and Related Products": "Cuir et maroquinerie",
    "Lighting and Electrical Equipment": "Éclairage et équipements électriques",
    "Livestock Processing": "Transformation des viandes",
    "Marketing, Design, and Publishing": "Marketing, design et édition",
    "Medical Devices": "Dispositifs médicaux",
    "Metal Mining": "Extraction de minerais métalliques",
    "Metalworking Technology": "Mécanique et travail des métaux (décolletage, outillage)",
    "Music and Sound Recording": "Musique et enregistrement sonore",
    "Nonmetal Mining": "Carrières et minéraux non métalliques",
    "Oil and Gas Production and Transportation": "Pétrole et gaz",
    "Paper and Packaging": "Papier et emballage",
    "Performing Arts": "Spectacle vivant",
    "Plastics": "Plasturgie",
    "Printing Services": "Imprimerie",
    "Production Technology and Heavy Machinery": "Machines et équipements industriels",
    "Recreational and Small Electric Goods": "Articles de loisirs, de sport et petit électrique",
    "Textile Manufacturing": "Textile",
    "Tobacco": "Tabac",
    "Trailers, Motor Homes, and Appliances": "Remorques, camping-cars et électroménager",
    "Transportation and Logistics": "Transport et logistique",
    "Upstream Chemical Products": "Chimie de base",
    "Upstream Metal Manufacturing": "Métallurgie et première transformation",
    "Video Production and Distribution": "Audiovisuel et cinéma",
    "Vulcanized and Fired Materials": "Caoutchouc, verre et céramique",
    "Water Transportation": "Transport maritime et fluvial",
    "Wood Products": "Bois",
    "Local Commercial Services": "Services de proximité aux entreprises",
    "Local Community and Civic Organizations": "Associations et organisations locales",
    "Local Education and Training": "Enseignement et formation de proximité",
    "Local Entertainment and Media": "Loisirs et médias locaux",
    "Local Financial Services": "Banque et finance de proximité",
    "Local Food and Beverage Processing and Distribution": (
        "Commerce et artisanat alimentaires de proximité"
    ),
    "Local Health Services": "Santé et action sociale de proximité",
    "Local Hospitality Establishments": "Restauration et cafés",
    "Local Household Goods and Services": "Commerce et services aux ménages",
    "Local Industrial Products and Services": "Services industriels de proximité",
    "Local Logistical Services": "Transport et logistique de proximité",
    "Local Motor Vehicle Products and Services": "Commerce et réparation automobile",
    "Local Personal Services (Non-Medical)": "Services à la personne",
    "Local Public Administration": "Administration publique",
    "Local Real Estate, Construction, and Development": "Bâtiment et immobilier",
    "Local Retailing of Clothing and General Merchandise": "Commerce de détail non alimentaire",
    "Local Utilities": "Réseaux et services urbains (eau, énergie, déchets)",
}


def slug(name: str) -> str:
    """Short id of a category: lower case, words joined by underscores."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def category_type(name: str) -> str:
    """Traded unless the U.S. benchmark name says local (and our own local category)."""
    return "local" if name.startswith("Local ") else "traded"


def _naics_table(concordances: Path) -> pd.DataFrame:
    """NAICS 2012 -> the U.S. benchmark clusters, with the two gaps of the benchmark filled."""
    src = pd.read_csv(
        concordances / "naics2012_us_cluster_resolved.csv", dtype=str, keep_default_na=False
    )
    name = src["cluster"].copy()
    source = pd.Series("benchmark", index=src.index)
    public = src["naics2012"].str.startswith("92") & (name == "")
    name[public] = "Local Public Administration"
    notaries = (src["naics2012"] == "541120") & (name == "")
    name[notaries] = "Local Commercial Services"
    households = (src["naics2012"] == "814110") & (name == "")
    name[households] = "Local Personal Services (Non-Medical)"
    source[public | notaries | households] = "override"
    missing = sorted(set(name) - set(NAMES_FR))
    if missing or (name == "").any():
        raise SystemExit(f"NAICS categories without a French name or code without one: {missing}")
    return pd.DataFrame(
        {
            "naics": src["naics2012"],
            "category": name.map(slug),
            "type": name.map(category_type),
            "subcluster": src["subcluster"],
            "source": source,
        }
    ).sort_values("naics")


def build(concordances: Path, folder: Path) -> dict[str, Path]:
    """Write the three files into ``folder`` and return their paths."""
    src = pd.read_csv(
        concordances / "naf2_sous_classe_us_cluster.csv", dtype=str, keep_default_na=False
    )
    out = pd.DataFrame(
        {
            "naf": src["sous_classe"],
            "name": src["primary_cluster"],
            "share": pd.to_numeric(src["primary_share"], errors="coerce").round(4),
            "confidence": src["confidence"],
            "second": src["second_cluster"],
            "source": "chain",
            "note": "",
        }
    )
    for key, (name, reason) in OVERRIDES.items():
        hit = out["naf"].str.startswith(key)
        if not hit.any():
            raise SystemExit(f"override {key!r} matches no sous-classe")
        out.loc[hit, ["name", "source", "note", "confidence"]] = [
            name,
            "override",
            reason,
            "override",
        ]
    missing = sorted(set(out["name"]) - set(NAMES_FR))
    if missing or (out["name"] == "").any():
        raise SystemExit(f"categories without a French name or code without one: {missing}")
    out["category"] = out["name"].map(slug)
    out["type"] = out["name"].map(category_type)
    out["second_category"] = out["second"].map(lambda n: slug(n) if n else "")
    table = out[
        ["naf", "category", "type", "share", "confidence", "second_category", "source", "note"]
    ]
    names = (
        out.groupby("name", sort=True)
        .size()
        .rename("sous_classes")
        .reset_index()
        .assign(
            category=lambda d: d["name"].map(slug),
            name_fr=lambda d: d["name"].map(NAMES_FR),
            type=lambda d: d["name"].map(category_type),
        )
        .rename(columns={"name": "name_en"})
        .sort_values(["type", "category"], ascending=[False, True])
    )[["category", "name_en", "name_fr", "type", "sous_classes"]]
    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "mapping": folder / "naf_cluster_categories.csv",
        "names": folder / "cluster_categories.csv",
        "naics": folder / "naics_cluster_categories.csv",
    }
    table.to_csv(paths["mapping"], index=False, lineterminator="\n")
    names.to_csv(paths["names"], index=False, lineterminator="\n")
    _naics_table(concordances).to_csv(paths["naics"], index=False, lineterminator="\n")
    return paths


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    here = Path(__file__).resolve().parent
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else here.parent / "src" / "clustermap" / "data"
    for path in build(Path(sys.argv[1]), target).values():
        print(path)
