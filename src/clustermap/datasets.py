r"""Bundled demo data and a generator of synthetic registries with a known answer.

The demo set (``load_demo``) is a synthetic territory of about 1 500 communes with
French-looking names, placed over central France, and about 50 000 establishments in a few
dozen real NAF rév. 2 sous-classes, with planted clusters of graded strength (from obvious to
subtle) and null sectors. **Everything in it is synthetic**: names, ids, populations and
establishments are invented; only the NAF codes are real. It is regenerated exactly by
``python datasets/build_demo.py`` at the repository root.

:func:`make_registry` generates such registries over any polygons (e.g. real communes) or
over a synthetic territory made by :func:`make_territory`.

The **real** files come from their publishers through the fetchers re-exported here from
:mod:`clustermap.io.fetch` (:func:`fetch_sirene`, :func:`fetch_sirene_stock`,
:func:`fetch_communes`, :func:`fetch_cog`, :func:`fetch_urssaf`, :func:`fetch_cbp`), each
cached on disk after its first download (``clustermap fetch ...`` on the command line).

Generative model
----------------
Each unit *i* has a population :math:`P_i` (the units' ``population`` column, or a synthetic
surface: a few urban centres with exponentially decaying density plus a rural background).
Background establishments of sector *s* (national size :math:`n_s`, urban elasticity
:math:`\beta_s`) are spread over units by a multinomial draw with probabilities
:math:`P_i^{\beta_s} / \sum_j P_j^{\beta_s}`. Agriculture has :math:`\beta < 1` (more
establishments per inhabitant in the countryside), business services :math:`\beta > 1`;
**null sectors** have :math:`\beta = 1` and nothing planted, so their expected location
quotient is 1 everywhere and anything detected there is a false positive. A **planted
cluster** adds ``extra`` establishments of its sector, with larger staff size bands, to the
units whose centroid lies within ``radius_km`` of the centre unit's centroid, with weights
:math:`\exp(-2 d / r)` (multinomial draw). Each establishment is placed uniformly at random
inside its unit's polygon.
"""

from __future__ import annotations

import gzip
import io as _io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from .core.atomic import atomic_path
from .core.schema import UNIT_ID
from .errors import SchemaError
from .io.fetch import (
    cache_folder,
    fetch_cbp,
    fetch_cog,
    fetch_communes,
    fetch_sirene,
    fetch_sirene_stock,
    fetch_urssaf,
)
from .io.presets import SIRENE_COLUMNS

__all__ = [
    "DEMO_CLUSTERS",
    "DEMO_SECTORS",
    "HTML_NAMES",
    "Demo",
    "cache_folder",
    "demo_path",
    "fetch_cbp",
    "fetch_cog",
    "fetch_communes",
    "fetch_sirene",
    "fetch_sirene_stock",
    "fetch_urssaf",
    "load_demo",
    "make_registry",
    "make_territory",
    "write_registry_csv",
]

#: Sectors of the demo: NAF sous-classe, background size (establishments per 50 000),
#: urban elasticity beta, role ("background", "null" or "planted").
DEMO_SECTORS = pd.DataFrame(
    [
        ("01.11Z", 1500, 0.35, "background"),  # céréales
        ("01.21Z", 900, 0.4, "background"),  # vigne
        ("01.41Z", 700, 0.3, "background"),  # vaches laitières
        ("02.20Z", 250, 0.3, "background"),  # exploitation forestière
        ("16.10A", 150, 0.5, "background"),  # sciage
        ("10.71C", 1800, 1.0, "null"),  # boulangerie: ubiquitous negative control
        ("96.02A", 2200, 1.0, "null"),  # coiffure: ubiquitous negative control
        ("43.21A", 1700, 1.0, "null"),  # installation électrique
        ("86.21Z", 1500, 1.0, "null"),  # médecins généralistes
        ("56.10A", 3000, 1.1, "background"),  # restauration traditionnelle
        ("56.30Z", 1200, 0.95, "background"),  # débits de boissons
        ("47.11D", 500, 1.05, "background"),  # supermarchés
        ("47.73Z", 600, 1.05, "background"),  # pharmacies
        ("43.22A", 1500, 0.95, "background"),  # plomberie
        ("43.99C", 1500, 0.9, "background"),  # maçonnerie
        ("41.20A", 1000, 0.9, "background"),  # maisons individuelles
        ("45.20A", 1300, 0.95, "background"),  # garages
        ("49.41A", 800, 0.9, "background"),  # transport routier
        ("55.10Z", 500, 0.85, "background"),  # hôtels
        ("68.20A", 4000, 1.15, "background"),  # location de logements
        ("68.31Z", 1200, 1.2, "background"),  # agences immobilières
        ("62.01Z", 1400, 1.35, "planted"),  # programmation informatique
        ("69.20Z", 1000, 1.2, "background"),  # comptabilité
        ("70.22Z", 2600, 1.3, "background"),  # conseil
        ("70.10Z", 1200, 1.4, "background"),  # sièges sociaux (registry artefact)
        ("78.20Z", 200, 1.3, "background"),  # travail temporaire (registry artefact)
        ("85.59A", 900, 1.2, "background"),  # formation continue
        ("46.90Z", 700, 1.1, "background"),  # commerce de gros
        ("47.71Z", 1300, 1.15, "background"),  # habillement
        ("81.21Z", 800, 1.2, "background"),  # nettoyage
        ("90.01Z", 800, 1.25, "background"),  # spectacle vivant
        ("25.62A", 150, 0.9, "planted"),  # décolletage
        ("22.29A", 200, 0.9, "planted"),  # plasturgie
        ("11.02A", 120, 0.5, "planted"),  # vins effervescents
        ("25.71Z", 60, 0.8, "planted"),  # coutellerie
        ("20.42Z", 80, 1.1, "planted"),  # parfums
    ],
    columns=["naf", "size", "beta", "role"],
)

#: Planted clusters of the demo, from obvious to subtle. ``setting`` picks the centre
#: among "town" units (population quantiles 0.5-0.95), "rural" ones (0.1-0.5), or the most
#: populated unit ("city": an urban cluster diluted by a large total, as in big metros).
DEMO_CLUSTERS = pd.DataFrame(
    [
        ("Vallée du décolletage", "25.62A", 12.0, 400, "obvious", "town"),
        ("Vallée de la plasturgie", "22.29A", 18.0, 220, "clear", "town"),
        ("Coteaux des vins effervescents", "11.02A", 25.0, 300, "clear", "rural"),
        ("Pays de la coutellerie", "25.71Z", 20.0, 50, "moderate", "town"),
        ("Parfumeurs du plateau", "20.42Z", 20.0, 25, "subtle", "rural"),
        ("Pôle numérique de la métropole", "62.01Z", 8.0, 150, "subtle", "city"),
    ],
    columns=["name", "naf", "radius_km", "extra", "strength", "setting"],
)

#: Size bands (trancheEffectifsEtablissement) and their probabilities.
_BANDS = np.array(["NN", "00", "01", "02", "03", "11", "12", "21", "22", "31", "32", "41"])
_P_BACKGROUND = np.array(
    [0.45, 0.12, 0.18, 0.09, 0.06, 0.05, 0.03, 0.012, 0.005, 0.001, 0.001, 0.001]
)
_P_PLANTED = np.array([0.10, 0.05, 0.15, 0.15, 0.15, 0.18, 0.12, 0.06, 0.03, 0.005, 0.004, 0.001])

#: Names holding HTML: every HTML output must show them escaped.
HTML_NAMES = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "Dupont & Fils <b>SARL</b>",
    'L\'Atelier "Chez Léa" <i>&</i> Cie',
)

_ANSWER_COLUMNS = [
    "kind",
    "name",
    "naf",
    "centre",
    "radius_km",
    "extra",
    "strength",
    "communes",
    "core",
]

_SURNAMES = (  # noqa: SIM905
    "Martin Bernard Dubois Thomas Robert Richard Petit Durand Leroy Moreau Simon Laurent "
    "Lefèvre Michel Garcia David Bertrand Roux Vincent Fournier Morel Girard André "
    "Mercier Dupont Lambert Bonnet François Martinez Legrand Garnier Faure Rousseau Blanc "
    "Guérin Muller Henry Roussel Nicolas Perrin Morin Mathieu Clément Gauthier Dumont "
    "Lopez Fontaine Chevalier Robin Masson Sanchez Gérard Nguyen Boyer Denis Lemaire "
    "Duval Joly Gautier Roger Roche Roy Noël Meyer Lucas Meunier Jean Perez Marchand "
    "Dufour Blanchard Marie Barbier Brun Dumas Brunet Schmitt Leroux Colin Fernandez "
    "Pierre Renard Arnaud Rolland Caron Aubert Giraud Leclerc Vidal Bourgeois Renaud "
    "Lemoine Picard Gaillard Philippe Leclercq Lacroix Fabre Dupuis Olivier Rodriguez Da "
    "Silva Hubert Louis Charles Guillot"
).split()
_FORMS = (
    "SARL",
    "SAS",
    "EURL",
    "Ets",
    "Maison",
    "Atelier",
    "Société",
    "Groupe",
    "Cabinet",
    "Entreprise",
)
_SUFFIXES = ("", "", "", "& Fils", "et Associés", "Frères", "Industrie", "Services", "Père et Fils")

_SYLL_START = (  # noqa: SIM905
    "Bel Mar Mont Roc Beau Cour Vil Fer Chan Char Bour Sau Mau Ver Lan Bre Cha Pon Sal "
    "Tour Ro Fon Gre Mal Quin Ar Au Bar Cler Jo Lu Mon Pé Ri Sé Tau Vau Bri Cor Dam Es Ga "
    "Lé Or"
).split()
_SYLL_MID = [*"a e i o an en on ar er or il el ou au in".split(), "", "", ""]  # noqa: SIM905
_SYLL_END = (  # noqa: SIM905
    "ac at ay ville court ieu ières ans on ens erre ol eix oux ange ignac ès y is as agne "
    "ette ot aux ey illac ost uejouls eaux"
).split()
_PREFIXES = ("Saint-", "Sainte-", "Le ", "La ", "Les ", "Saint-", "")
_SUFFIX_PLACES = (
    "-sur-Allier",
    "-sur-Dore",
    "-en-Forez",
    "-les-Bains",
    "-le-Château",
    "-la-Forêt",
    "-d'Auvergne",
    "-sur-Sioule",
    "-le-Vieux",
    "-en-Velay",
)

#: Territory of make_territory: centre in Lambert-93 (central France) and radius.
_TERRITORY_CENTRE = (720_000.0, 6_520_000.0)
_TERRITORY_RADIUS_KM = 75.0


# --------------------------------------------------------------------------- random streams


def _rng(random_state: int, stream: int) -> np.random.Generator:
    """Independent generator per component, so changing one does not shift the others."""
    return np.random.default_rng([int(random_state), stream])


# --------------------------------------------------------------------------- names


def _place_names(n: int, rng: np.random.Generator) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    vowels = set("aeiouyéèAEIOUYÉÈ")
    consonants = ("r", "n", "l", "v", "s", "m", "ch", "d", "rs", "nt")
    while len(names) < n:
        core = _SYLL_START[rng.integers(len(_SYLL_START))]
        mid = _SYLL_MID[rng.integers(len(_SYLL_MID))]
        if core[-1] in vowels:
            mid = consonants[rng.integers(len(consonants))] + mid
        core += mid
        end = _SYLL_END[rng.integers(len(_SYLL_END))]
        if core[-1] in vowels and end[0] in vowels:
            core += consonants[rng.integers(len(consonants))]
        core += end
        u = rng.random()
        if u < 0.22:
            prefix = _PREFIXES[rng.integers(len(_PREFIXES))]
            if prefix in ("Saint-", "Sainte-"):
                core = _SURNAMES[rng.integers(len(_SURNAMES))].replace(" ", "-")
            if prefix in ("Le ", "La ") and core[0] in vowels:
                prefix = "L'"
            name = prefix + core
        elif u < 0.32:
            name = core + _SUFFIX_PLACES[rng.integers(len(_SUFFIX_PLACES))]
        else:
            name = core
        if name not in seen:
            seen.add(name)
            names.append(name)
    return names


def _firm_names(n: int, rng: np.random.Generator) -> np.ndarray:
    forms = np.array(_FORMS)[rng.integers(len(_FORMS), size=n)]
    surnames = np.array(_SURNAMES)[rng.integers(len(_SURNAMES), size=n)]
    suffixes = np.array(_SUFFIXES)[rng.integers(len(_SUFFIXES), size=n)]
    names = np.char.add(np.char.add(forms, " "), surnames)
    with_suffix = np.char.add(np.char.add(names, " "), suffixes)
    return np.where(suffixes == "", names, with_suffix).astype(object)


# --------------------------------------------------------------------------- identifiers


def _luhn_check_digit(digits: np.ndarray) -> np.ndarray:
    """Luhn check digit of each row of ``digits`` (int array, most significant first)."""
    d = digits[:, ::-1].copy()
    d[:, 0::2] *= 2  # the digit next to the check digit is doubled
    d = np.where(d > 9, d - 9, d)
    return (10 - d.sum(axis=1) % 10) % 10


def _to_digits(values: np.ndarray, width: int) -> np.ndarray:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers[None, :]) % 10


def _siren_siret(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Unique Luhn-valid SIREN (9 digits) and SIRET (SIREN + 5-digit NIC, Luhn-valid)."""
    body = 10_000_000 + rng.choice(90_000_000, size=n, replace=False).astype(np.int64)
    siren_digits = np.concatenate(
        [_to_digits(body, 8), _luhn_check_digit(_to_digits(body, 8))[:, None]], axis=1
    )
    nic = rng.integers(1, 9999, size=n, dtype=np.int64)
    body14 = np.concatenate([siren_digits, _to_digits(nic, 4)], axis=1)
    siret_digits = np.concatenate([body14, _luhn_check_digit(body14)[:, None]], axis=1)
    to_str = lambda a: np.array(["".join(map(str, row)) for row in a.tolist()], dtype=object)  # noqa: E731
    return to_str(siren_digits), to_str(siret_digits)


# --------------------------------------------------------------------------- territory


def _region(rng: np.random.Generator) -> shapely.Polygon:
    cx, cy = _TERRITORY_CENTRE
    radius = _TERRITORY_RADIUS_KM * 1000.0
    theta = np.linspace(0.0, 2 * np.pi, 181)[:-1]
    phases = rng.uniform(0, 2 * np.pi, size=3)
    r = radius * (
        1
        + 0.12 * np.sin(2 * theta + phases[0])
        + 0.07 * np.sin(3 * theta + phases[1])
        + 0.04 * np.sin(5 * theta + phases[2])
    )
    return shapely.Polygon(np.stack([cx + r * np.cos(theta), cy + 0.8 * r * np.sin(theta)], 1))


def _uniform_in(poly: shapely.Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    minx, miny, maxx, maxy = poly.bounds
    shapely.prepare(poly)
    out = np.empty((0, 2))
    while len(out) < n:
        cand = rng.uniform([minx, miny], [maxx, maxy], size=(2 * n, 2))
        cand = cand[shapely.contains_xy(poly, cand[:, 0], cand[:, 1])]
        out = np.concatenate([out, cand])
    return out[:n]


def _population_surface(
    x: np.ndarray, y: np.ndarray, area_km2: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Synthetic municipal population: urban centres with decaying density + rural base."""
    n = len(x)
    # 1 city, 3 towns, 6 small towns: (population, decay scale in km)
    centres = [(150_000, 1.8)] + [(30_000, 1.2)] * 3 + [(8_000, 0.8)] * 6
    pop = rng.lognormal(np.log(280.0), 0.7, size=n) * np.clip(area_km2 / 12.0, 0.2, 5.0)
    chosen: list[int] = []
    order = rng.permutation(n)
    spread = 0.25 * max(np.ptp(x), np.ptp(y), 1.0)
    for total, scale in centres:
        for i in order:
            if all(math.hypot(x[i] - x[j], y[i] - y[j]) > spread for j in chosen):
                break
        else:  # pragma: no cover - few units: accept any
            i = order[len(chosen) % n]
        chosen.append(int(i))
        spread *= 0.8
        d_km = np.hypot(x - x[i], y - y[i]) / 1000.0
        kernel = np.exp(-d_km / scale)
        pop += total * kernel / kernel.sum()
    return np.maximum(np.round(pop), 20).astype(np.int64)


def make_territory(n_units: int = 1500, random_state: int = 0) -> gpd.GeoDataFrame:
    """A synthetic territory of Voronoi "communes" in central France, with names and populations.

    Seeds are drawn uniformly in an irregular region of about 140 × 110 km centred on
    Lambert-93 (720 000, 6 520 000) and relaxed twice (Lloyd), their Voronoi cells clipped to
    the region (about 12 km² per unit for 1 500 units, like French communes). Unit ids are
    ``D0001``… numbered from north-west to south-east, names are invented from French-sounding
    syllables (unique), populations follow :func:`make_registry`'s population surface.

    Parameters
    ----------
    n_units : int, default 1500
        Number of units.
    random_state : int, default 0
        Seed; the same seed gives the same territory.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``code``, ``nom``, ``population``, geometry (Polygons, EPSG:4326, vertices
        rounded to 1e-5 degree, about 1 m), one row per unit, ordered by ``code``.

    Examples
    --------
    >>> from clustermap.datasets import make_territory
    >>> t = make_territory(n_units=50, random_state=1)
    >>> len(t), t["code"].iloc[0], t.crs.to_epsg(), bool(t.is_valid.all())
    (50, 'D0001', 4326, True)
    """
    if n_units < 2:
        raise ValueError(f"'n_units' must be at least 2; got {n_units}.")
    rng = _rng(random_state, 1)
    region = _region(rng)
    seeds = _uniform_in(region, n_units, rng)
    for _ in range(2):  # Lloyd relaxation: more regular, commune-like cells
        cells = _voronoi_cells(seeds, region)
        cent = shapely.centroid(cells)
        seeds = np.stack([shapely.get_x(cent), shapely.get_y(cent)], axis=1)
    cells = _voronoi_cells(seeds, region)
    cent = shapely.centroid(cells)
    cx, cy = shapely.get_x(cent), shapely.get_y(cent)
    order = np.lexsort((cx, -np.floor(cy / 10_000.0)))  # 10-km bands north to south
    cells, cx, cy = cells[order], cx[order], cy[order]
    area_km2 = shapely.area(cells) / 1e6
    population = _population_surface(cx, cy, area_km2, _rng(random_state, 2))
    names = _place_names(n_units, _rng(random_state, 3))
    width = max(4, len(str(n_units)))
    lonlat = gpd.GeoSeries(cells, crs=2154).to_crs(4326)
    geoms = shapely.set_precision(lonlat.to_numpy(), 1e-5)
    return gpd.GeoDataFrame(
        {
            "code": [f"D{i + 1:0{width}d}" for i in range(n_units)],
            "nom": names,
            "population": population,
        },
        geometry=geoms,
        crs=4326,
    )


def _voronoi_cells(seeds: np.ndarray, region: shapely.Polygon) -> np.ndarray:
    diagram = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=region, ordered=True)
    cells = shapely.intersection(np.asarray(shapely.get_parts(diagram)), region)
    return np.asarray(cells)


# --------------------------------------------------------------------------- units handling


def _prepare_units(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    from .units import read_units

    if not isinstance(units, gpd.GeoDataFrame):
        raise SchemaError(
            f"'units' must be a GeoDataFrame of polygons; got {type(units).__name__}."
        )
    if units.index.name == UNIT_ID:
        out = units.copy()
        out.index = out.index.astype(str)
        return out
    return read_units(units)


def _metric_points(units: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from .units import metric_crs

    metric = units.geometry.to_crs(metric_crs(units))
    # representative points stay inside concave or multi-part units
    cent = shapely.point_on_surface(metric.to_numpy())
    return shapely.get_x(cent), shapely.get_y(cent), shapely.area(metric.to_numpy()) / 1e6


# --------------------------------------------------------------------------- placement


def _place_points(
    geoms: np.ndarray, crs: Any, unit_of: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points inside ``geoms[unit_of]``; longitude/latitude rounded to 1e-6.

    The rounded point is re-projected into the units' CRS and must still lie strictly inside
    its unit, so point-in-polygon assignment agrees with the unit code exactly.
    """
    crs = CRS.from_user_input(crs)
    geographic = crs.equals(CRS.from_epsg(4326))
    if not geographic:
        to_ll = Transformer.from_crs(crs, 4326, always_xy=True)
        from_ll = Transformer.from_crs(4326, crs, always_xy=True)
    shapely.prepare(geoms)
    bounds = shapely.bounds(geoms)
    n = len(unit_of)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    pending = np.arange(n)
    for _ in range(1000):
        if len(pending) == 0:
            break
        b = bounds[unit_of[pending]]
        x = rng.uniform(b[:, 0], b[:, 2])
        y = rng.uniform(b[:, 1], b[:, 3])
        if geographic:
            plon, plat = np.round(x, 6), np.round(y, 6)
            tx, ty = plon, plat
        else:
            plon, plat = to_ll.transform(x, y)
            plon, plat = np.round(plon, 6), np.round(plat, 6)
            tx, ty = from_ll.transform(plon, plat)
        ok = shapely.contains_xy(geoms[unit_of[pending]], tx, ty)
        lon[pending[ok]] = plon[ok]
        lat[pending[ok]] = plat[ok]
        pending = pending[~ok]
    if len(pending):  # pragma: no cover - degenerate (zero-area) units
        raise SchemaError(
            f"Could not place establishments inside {len(np.unique(unit_of[pending]))} "
            "unit(s) with (almost) no area; remove them from 'units'."
        )
    return lon, lat


# --------------------------------------------------------------------------- generator


def _choose_centres(
    clusters: pd.DataFrame,
    x: np.ndarray,
    y: np.ndarray,
    population: np.ndarray,
    ids: np.ndarray,
    inner: np.ndarray,
    rng: np.random.Generator,
) -> list[int]:
    centres: list[int] = []
    q = np.argsort(np.argsort(population)) / max(len(population) - 1, 1)
    for row in clusters.itertuples(index=False):
        given = getattr(row, "centre", None)
        if isinstance(given, str) and given:
            where = np.flatnonzero(ids == given)
            if len(where) == 0:
                raise SchemaError(
                    f"Planted cluster {row.name!r}: centre unit {given!r} is not in 'units'."
                )
            centres.append(int(where[0]))
            continue
        setting = getattr(row, "setting", "town")
        if setting == "city":
            centres.append(int(np.argmax(population)))
            continue
        lo, hi = (0.1, 0.5) if setting == "rural" else (0.5, 0.95)
        ok = (q >= lo) & (q <= hi) & inner
        for j, r_km in zip(centres, clusters["radius_km"].iloc[: len(centres)]):
            gap = (float(r_km) + float(row.radius_km)) * 1000.0
            ok &= np.hypot(x - x[j], y - y[j]) > gap
        cand = np.flatnonzero(ok)
        if len(cand) == 0:
            cand = np.flatnonzero((q >= lo) & (q <= hi))
        centres.append(int(rng.choice(cand)))
    return centres


def make_registry(
    units: gpd.GeoDataFrame | None = None,
    *,
    n_establishments: int = 50_000,
    sectors: pd.DataFrame | None = None,
    clusters: pd.DataFrame | None = None,
    random_state: int = 0,
    n_units: int = 1500,
    closed_share: float = 0.03,
    html_names: bool = True,
    dirty: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Generate a synthetic SIRENE registry with planted clusters and its answer key.

    See the module docstring for the generative model.

    Parameters
    ----------
    units : geopandas.GeoDataFrame, optional
        Polygons to spread establishments over: indexed by ``unit_id`` (as returned by
        :func:`clustermap.read_units`) or with an id column :func:`read_units` recognises.
        A ``population`` column is used when present, otherwise a synthetic population
        surface is drawn. When omitted, ``make_territory(n_units, random_state)`` is used.
    n_establishments : int, default 50 000
        Active establishments (background plus planted), before closed and dirty rows.
    sectors : pandas.DataFrame, optional
        Columns ``naf`` (sous-classe), ``size`` (relative background size), ``beta`` (urban
        elasticity), ``role`` (``"background"``, ``"null"`` or ``"planted"``); default
        :data:`DEMO_SECTORS`.
    clusters : pandas.DataFrame, optional
        Planted clusters: ``name``, ``naf``, ``radius_km``, ``extra`` (establishments
        added), optional ``strength`` (a label), ``centre`` (unit id; drawn when missing)
        and ``setting`` (``"town"`` or ``"rural"``: population quantiles of the drawn
        centre); default :data:`DEMO_CLUSTERS`.
    random_state : int, default 0
        Seed. The same arguments give an identical registry.
    n_units : int, default 1500
        Units of the synthetic territory when ``units`` is omitted.
    closed_share : float, default 0.03
        Closed establishments (``etatAdministratifEtablissement == "F"``) added, as a share
        of the active ones; drawn from the background process.
    html_names : bool, default True
        Give four establishments (two in the first planted cluster, two in the background)
        a name holding HTML (:data:`HTML_NAMES`), so every HTML output's escaping is
        exercised. They are valid rows and must be kept.
    dirty : bool, default False
        Add dirty rows, each reason on extra rows drawn from the background process:
        missing coordinates, swapped latitude/longitude, invalid sector codes (``99.99Z``,
        ``ABCDE``, empty, ``25.62`` without its letter) and duplicated SIRET (a copy of an
        earlier row, placed after it; the first is the one to keep).

    Returns
    -------
    registry : pandas.DataFrame
        Etalab geolocated SIRENE columns: ``siren``, ``siret`` (14 digits, unique except
        for the duplicated dirty rows, Luhn-valid), ``trancheEffectifsEtablissement``,
        ``codeCommuneEtablissement`` (the unit id), ``etatAdministratifEtablissement``,
        ``denominationUsuelleEtablissement``, ``activitePrincipaleEtablissement``,
        ``nomenclatureActivitePrincipaleEtablissement`` (``NAFRev2``), ``longitude``,
        ``latitude`` (WGS84, 6 decimals). Rows are shuffled.
    answer : pandas.DataFrame
        One row per planted cluster (``kind="planted"``: ``name``, ``naf``, ``centre``
        unit, ``radius_km``, ``extra``, ``strength``, ``communes`` = list of units that
        received some, ``core`` = those within ``radius_km / 2`` of the centre that
        received some, by decreasing count), one per null sector (``kind="null_sector"``)
        and, with ``dirty=True``, one per dirt reason (``kind="dirt"``, ``name`` = the reject
        reason of :mod:`clustermap._schema`, ``extra`` = rows). ``attrs`` holds
        ``random_state``, ``n_active``, ``closed`` and ``dirt`` (counts by reason).

    Examples
    --------
    >>> from clustermap.datasets import make_territory
    >>> units = make_territory(n_units=60, random_state=3)
    >>> reg, key = cm.make_registry(units, n_establishments=3000, random_state=3)
    >>> int((reg["etatAdministratifEtablissement"] == "A").sum())
    3000
    >>> key.loc[key["kind"] == "planted", ["naf", "extra"]].values.tolist()[:2]
    [['25.62A', 400], ['22.29A', 220]]
    """
    sectors, clusters, n_background = _check_plan(sectors, clusters, n_establishments)
    if units is None:
        units = make_territory(n_units=n_units, random_state=random_state)
    units = _prepare_units(units)
    ids = units.index.to_numpy(dtype=object)
    x, y, area_km2 = _metric_points(units)
    if "population" in units:
        population = units["population"].to_numpy(dtype=float)
        population = np.where(np.isfinite(population) & (population > 0), population, 1.0)
    else:
        population = _population_surface(x, y, area_km2, _rng(random_state, 2)).astype(float)
    draw = _Background(sectors, population)
    # background: sector sizes then units (pop^beta)
    rng = _rng(random_state, 10)
    bu, bs = draw(rng.multinomial(n_background, draw.shares), rng)
    rows = _Rows([bu], [bs], [np.zeros(len(bu), dtype=np.int64)])  # flag k+1 = cluster k
    answer_rows = _plant(rows, clusters, sectors, units, (x, y, population, ids), random_state)
    answer_rows += [
        _answer_row("null_sector", naf=naf) for naf in sectors.loc[sectors["role"] == "null", "naf"]
    ]
    n_active = rows.close_planted()
    rng_x = _rng(random_state, 13)
    n_closed = round(closed_share * n_active)
    if n_closed:  # closed establishments: extra rows, background process
        rows.add(*draw(rng_x.multinomial(n_closed, draw.shares), rng_x), state="F")
    dirt_counts = _add_dirt(rows, draw, rng_x, n_active) if dirty else {}
    registry, order = _registry_frame(rows, sectors, units, ids, html_names, random_state)
    if dirty:
        registry = _duplicate_rows(registry, rows, order, dirt_counts, rng_x)
        answer_rows += [
            _answer_row("dirt", name=reason, extra=int(count))
            for reason, count in dirt_counts.items()
        ]
    answer = pd.DataFrame(answer_rows, columns=_ANSWER_COLUMNS)
    answer.attrs = {
        "random_state": int(random_state),
        "n_active": int(n_active),
        "closed": int(n_closed),
        "dirt": dict(dirt_counts),
    }
    return registry, answer


def _check_plan(sectors: Any, clusters: Any, n_establishments: int) -> tuple:
    sectors = DEMO_SECTORS.copy() if sectors is None else pd.DataFrame(sectors).copy()
    clusters = DEMO_CLUSTERS.copy() if clusters is None else pd.DataFrame(clusters).copy()
    for col in ("naf", "size", "beta", "role"):
        if col not in sectors:
            raise SchemaError(
                f"'sectors' lacks column {col!r}; expected naf, size, beta, role "
                "(see clustermap.datasets.DEMO_SECTORS)."
            )
    for col in ("name", "naf", "radius_km", "extra"):
        if col not in clusters:
            raise SchemaError(
                f"'clusters' lacks column {col!r}; expected name, naf, radius_km, extra "
                "(see clustermap.datasets.DEMO_CLUSTERS)."
            )
    if "strength" not in clusters:
        clusters["strength"] = ""
    if "setting" not in clusters:
        clusters["setting"] = "town"
    n_extra = int(clusters["extra"].sum())
    n_background = int(n_establishments) - n_extra
    if n_background <= 0:
        raise ValueError(
            f"n_establishments={n_establishments} is not larger than the {n_extra} planted "
            "establishments; raise it or plant fewer."
        )
    naf_list = sectors["naf"].tolist()
    for row in clusters.itertuples(index=False):
        if row.naf not in naf_list:
            raise SchemaError(
                f"Planted cluster {row.name!r} uses sector {row.naf!r}, which is not in "
                "'sectors'; add it there (role 'planted')."
            )
    return sectors, clusters, n_background


class _Background:
    """Draws establishments of each sector over the units in proportion to pop^beta."""

    def __init__(self, sectors: pd.DataFrame, population: np.ndarray) -> None:
        weights = sectors["size"].to_numpy(dtype=float)
        self.shares = weights / weights.sum()
        self.betas = sectors["beta"].to_numpy(dtype=float)
        self.population = population

    def __call__(self, counts: np.ndarray, g: np.random.Generator) -> tuple[np.ndarray, ...]:
        u_parts, s_parts = [], []
        n_units = len(self.population)
        for s, (n_s, beta) in enumerate(zip(counts, self.betas)):
            p = self.population**beta
            per_unit = g.multinomial(int(n_s), p / p.sum())
            u_parts.append(np.repeat(np.arange(n_units), per_unit))
            s_parts.append(np.full(int(n_s), s))
        return np.concatenate(u_parts), np.concatenate(s_parts)


class _Rows:
    """The generated rows: unit, sector, planted flag, state and kind of dirt of each."""

    def __init__(self, units: list, sectors: list, flags: list) -> None:
        self.parts = (units, sectors, flags)
        self.unit_of = self.sector_of = self.flag = self.state = self.dirt = None

    def close_planted(self) -> int:
        units, sectors, flags = self.parts
        self.unit_of = np.concatenate(units)
        self.sector_of = np.concatenate(sectors)
        self.flag = np.concatenate(flags)
        self.state = np.full(len(self.unit_of), "A", dtype=object)
        self.dirt = np.zeros(len(self.unit_of), dtype=np.int64)  # 0 clean
        return len(self.unit_of)

    def add(self, unit_of: np.ndarray, sector_of: np.ndarray, *, state: str, dirt: int = 0):
        n = len(unit_of)
        self.unit_of = np.concatenate([self.unit_of, unit_of])
        self.sector_of = np.concatenate([self.sector_of, sector_of])
        self.flag = np.concatenate([self.flag, np.zeros(n, dtype=np.int64)])
        self.state = np.concatenate([self.state, np.full(n, state, dtype=object)])
        self.dirt = np.concatenate([self.dirt, np.full(n, dirt)])


def _answer_row(kind: str, **values: Any) -> dict[str, Any]:
    row = {
        "kind": kind,
        "name": "",
        "naf": "",
        "centre": "",
        "radius_km": 0.0,
        "extra": 0,
        "strength": "",
        "communes": [],
        "core": [],
    }
    row.update(values)
    return row


def _plant(rows, clusters, sectors, units, points, random_state) -> list[dict[str, Any]]:
    """The planted clusters: extra establishments around chosen centres (answer rows)."""
    from .units import metric_crs

    x, y, population, ids = points
    naf_list = sectors["naf"].tolist()
    extent = shapely.coverage_union_all(units.geometry.to_numpy())
    boundary = gpd.GeoSeries([extent], crs=units.crs).to_crs(metric_crs(units)).boundary
    inner_dist = shapely.distance(shapely.points(x, y), boundary.iloc[0])
    inner = inner_dist > 0.5 * float(clusters["radius_km"].max() if len(clusters) else 0) * 1000
    centres = _choose_centres(clusters, x, y, population, ids, inner, _rng(random_state, 11))
    answer_rows = []
    rng_c = _rng(random_state, 12)
    unit_parts, sector_parts, flags = rows.parts
    for k, (row, c) in enumerate(zip(clusters.itertuples(index=False), centres)):
        r_m = float(row.radius_km) * 1000.0
        d = np.hypot(x - x[c], y - y[c])
        w = np.where(d <= r_m, np.exp(-2.0 * d / r_m), 0.0)
        per_unit = rng_c.multinomial(int(row.extra), w / w.sum())
        got = np.flatnonzero(per_unit)
        core = got[d[got] <= r_m / 2]
        core = core[np.argsort(-per_unit[core], kind="stable")]
        unit_parts.append(np.repeat(np.arange(len(ids)), per_unit))
        sector_parts.append(np.full(int(row.extra), naf_list.index(row.naf)))
        flags.append(np.full(int(row.extra), k + 1))
        answer_rows.append(
            _answer_row(
                "planted",
                name=row.name,
                naf=row.naf,
                centre=str(ids[c]),
                radius_km=float(row.radius_km),
                extra=int(row.extra),
                strength=str(row.strength),
                communes=[str(ids[i]) for i in got[np.argsort(d[got], kind="stable")]],
                core=[str(ids[i]) for i in core],
            )
        )
    return answer_rows


def _add_dirt(rows: _Rows, draw: _Background, rng_x, n_active: int) -> dict[str, int]:
    """Dirty rows (extra rows, background process) of each kind readers must catch."""
    from .core.schema import (
        REASON_DUPLICATED,
        REASON_INVALID_SECTOR,
        REASON_MISSING_COORDINATES,
        REASON_SWAPPED,
    )

    base = max(n_active // 1000, 4)
    plan = [
        (REASON_MISSING_COORDINATES, 1, 5 * base),
        (REASON_SWAPPED, 2, base),
        (REASON_INVALID_SECTOR, 3, 2 * base),
    ]
    dirt_counts = {}
    for reason, code, count in plan:
        rows.add(*draw(rng_x.multinomial(count, draw.shares), rng_x), state="A", dirt=code)
        dirt_counts[reason] = count
    dirt_counts[REASON_DUPLICATED] = base
    return dirt_counts


def _registry_frame(rows, sectors, units, ids, html_names, random_state) -> tuple:
    """The SIRENE-format table of the rows, shuffled; and the shuffle order."""
    n_rows = len(rows.unit_of)
    rng_p = _rng(random_state, 14)
    lon, lat = _place_points(units.geometry.to_numpy(), units.crs, rows.unit_of, rng_p)
    bands = np.where(
        rows.flag > 0,
        rng_p.choice(_BANDS, size=n_rows, p=_P_PLANTED / _P_PLANTED.sum()),
        rng_p.choice(_BANDS, size=n_rows, p=_P_BACKGROUND / _P_BACKGROUND.sum()),
    ).astype(object)
    rng_n = _rng(random_state, 15)
    siren, siret = _siren_siret(n_rows, rng_n)
    names = _firm_names(n_rows, rng_n)
    codes = sectors["naf"].to_numpy(dtype=object)[rows.sector_of]
    if html_names:
        html_rows = []
        first = np.flatnonzero((rows.flag == 1) & (rows.state == "A"))
        back = np.flatnonzero((rows.flag == 0) & (rows.state == "A") & (rows.dirt == 0))
        if len(first) >= 2:
            html_rows += rng_n.choice(first, size=2, replace=False).tolist()
        html_rows += rng_n.choice(back, size=4 - len(html_rows), replace=False).tolist()
        for i, text in zip(html_rows, HTML_NAMES):
            names[i] = text
    miss = rows.dirt == 1
    lon[miss] = np.nan
    lat[miss] = np.nan
    swap = rows.dirt == 2
    lon[swap], lat[swap] = lat[swap].copy(), lon[swap].copy()
    bad = np.flatnonzero(rows.dirt == 3)
    invalid = np.array(["99.99Z", "ABCDE", "", "25.62"], dtype=object)
    codes[bad] = invalid[np.arange(len(bad)) % len(invalid)]
    col = SIRENE_COLUMNS
    registry = pd.DataFrame(
        {
            "siren": siren,
            col["id"]: siret,
            col["size_band"]: bands,
            col["commune"]: ids[rows.unit_of],
            col["state"]: rows.state,
            col["name"][0]: names,
            col["sector"]: codes,
            col["nomenclature_column"]: "NAFRev2",
            "longitude": lon,
            "latitude": lat,
        }
    )
    order = rng_p.permutation(n_rows)
    return registry.iloc[order].reset_index(drop=True), order


def _duplicate_rows(registry, rows, order, dirt_counts, rng_x) -> pd.DataFrame:
    """Clean active rows copied at the end (duplicated ids a reader must catch)."""
    n_dup = dirt_counts["duplicated_id"]
    clean = np.flatnonzero(
        (rows.dirt[order] == 0) & (registry["etatAdministratifEtablissement"] == "A")
    )
    src = np.sort(rng_x.choice(clean, size=n_dup, replace=False))
    return pd.concat([registry, registry.iloc[src].copy()], ignore_index=True)


# --------------------------------------------------------------------------- writing


def write_registry_csv(registry: pd.DataFrame, path: str | Path) -> Path:
    """Write a registry as gzip CSV, byte-reproducible (no timestamp in the gzip header).

    Parameters
    ----------
    registry : pandas.DataFrame
        A registry from :func:`make_registry`.
    path : str or pathlib.Path
        Output path (``.csv.gz``).

    Returns
    -------
    pathlib.Path
        The path written.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from clustermap.datasets import write_registry_csv
    >>> df = pd.DataFrame({"siret": ["00000000000018"], "longitude": [2.5], "latitude": [45.0]})
    >>> p = write_registry_csv(df, pathlib.Path(tempfile.mkdtemp()) / "r.csv.gz")
    >>> pd.read_csv(p, dtype=str)["siret"].iloc[0]
    '00000000000018'
    """
    path = Path(path)
    text = registry.to_csv(index=False, float_format="%.6f", lineterminator="\n")
    with (
        atomic_path(path) as tmp,
        open(tmp, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as gz,
    ):
        gz.write(text.encode("utf-8"))
    return path


def _answer_to_csv(answer: pd.DataFrame) -> str:
    out = answer.copy()
    for col in ("communes", "core"):
        out[col] = out[col].map(lambda v: ";".join(v) if isinstance(v, list) else v)
    buf = _io.StringIO()
    out.to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def _answer_from_csv(path: Path) -> pd.DataFrame:
    answer = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("communes", "core"):
        answer[col] = answer[col].map(lambda v: v.split(";") if v else [])
    answer["radius_km"] = answer["radius_km"].astype(float)
    answer["extra"] = answer["extra"].astype("int64")
    return answer


# --------------------------------------------------------------------------- bundled demo

_DEMO_FILES = {
    "registry": "demo_registry.csv.gz",
    "units": "demo_units.parquet",
    "answer_key": "demo_answer_key.csv",
}


def _data_dirs() -> list[Path]:
    here = Path(__file__).resolve().parent
    return [here / "_bundled", here.parents[1] / "datasets"]


def demo_path(name: str) -> Path:
    """Path of a bundled demo file.

    Looks in the installed package's ``_bundled`` folder first (wheels), then in the
    repository's ``datasets/`` folder (editable installs).

    Parameters
    ----------
    name : str
        ``"registry"``, ``"units"``, ``"answer_key"`` or a file name such as
        ``"demo_units.parquet"``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    FileNotFoundError
        When the file is in neither place.

    Examples
    --------
    >>> from clustermap.datasets import demo_path
    >>> demo_path("units").name
    'demo_units.parquet'
    """
    filename = _DEMO_FILES.get(name, name)
    tried = []
    for folder in _data_dirs():
        path = folder / filename
        if path.is_file():
            return path
        tried.append(str(folder))
    raise FileNotFoundError(
        f"Demo file {filename!r} not found (looked in {tried}). Known names: "
        f"{sorted(_DEMO_FILES)}. In a source checkout, regenerate the files with "
        "`python datasets/build_demo.py`; otherwise reinstall clustermap."
    )


@dataclass
class Demo:
    """The bundled demo data set (see :func:`load_demo`).

    Attributes
    ----------
    registry_path, units_path, answer_key_path : pathlib.Path
        The files.
    registry : clustermap.Registry
        The registry read with ``clustermap.read_registry(registry_path, format="sirene")``.
    units : geopandas.GeoDataFrame
        ``read_units(units_path, unit_id="code", name="nom")``: indexed by ``unit_id``,
        columns ``name``, ``population``, geometry (EPSG:4326).
    answer_key : pandas.DataFrame
        Planted clusters (lists of unit ids in ``communes`` and ``core``), null sectors and
        dirt counts, as returned by :func:`make_registry`.

    Examples
    --------
    >>> demo = cm.load_demo()
    >>> demo
    <Demo: 50050 establishments over 1500 units, 6 planted clusters>
    >>> demo.answer_key.loc[demo.answer_key["kind"] == "planted", "naf"].tolist()
    ['25.62A', '22.29A', '11.02A', '25.71Z', '20.42Z', '62.01Z']
    """

    registry_path: Path
    units_path: Path
    answer_key_path: Path
    registry: Any
    units: gpd.GeoDataFrame
    answer_key: pd.DataFrame

    def __repr__(self) -> str:
        n = len(getattr(self.registry, "establishments", self.registry))
        planted = int((self.answer_key["kind"] == "planted").sum())
        return (
            f"<Demo: {n} establishments over {len(self.units)} units, {planted} planted clusters>"
        )


def load_demo() -> Demo:
    """Load the bundled demo: a synthetic registry, its units and the answer key.

    51 950 rows: 50 000 active clean establishments, plus 1 500 closed ones and a few dirty
    rows (missing coordinates, swapped latitude/longitude, invalid codes, duplicated SIRET),
    over 1 500 synthetic communes in central France, in 36 NAF sous-classes. Six planted
    clusters of graded strength: décolletage 25.62A (obvious); plastics 22.29A and sparkling
    wine 11.02A (clear); cutlery 25.71Z (moderate); perfumes 20.42Z (subtle, about one
    establishment per unit) and software 62.01Z in the largest city (subtle, diluted). Four
    null sectors: bakeries 10.71C and hairdressers 96.02A (ubiquitous negative controls),
    electricians 43.21A and GPs 86.21Z. All names and ids are invented; see
    ``datasets/README.md``.

    Returns
    -------
    Demo
        ``registry_path``, ``units_path``, ``answer_key_path``, ``registry`` (a
        :class:`clustermap.Registry` read with ``format="sirene"``), ``units`` (indexed by
        ``unit_id``, with ``name`` and ``population``), ``answer_key``.

    Raises
    ------
    FileNotFoundError
        When the demo files are missing (see :func:`demo_path`).

    Examples
    --------
    >>> demo = cm.load_demo()
    >>> demo
    <Demo: 50050 establishments over 1500 units, 6 planted clusters>
    >>> demo.units.index[:2].tolist(), demo.units.columns.tolist()
    (['D0001', 'D0002'], ['name', 'population', 'geometry'])
    >>> demo.answer_key.loc[0, ["naf", "strength", "centre"]].tolist()
    ['25.62A', 'obvious', 'D1387']
    """
    from .units import read_units

    registry_path = demo_path("registry")
    units_path = demo_path("units")
    key_path = demo_path("answer_key")
    registry = _read_demo_registry(registry_path)
    units = read_units(units_path, unit_id="code", name="nom")
    return Demo(
        registry_path=registry_path,
        units_path=units_path,
        answer_key_path=key_path,
        registry=registry,
        units=units,
        answer_key=_answer_from_csv(key_path),
    )


def _read_demo_registry(path: Path) -> Any:
    from .io.registry import read_registry

    return read_registry(path, format="sirene")
