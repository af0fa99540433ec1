"""Fetch the official files a territory's analysis needs, into a local cache.

One call (or ``clustermap fetch ...``) downloads a publisher's file once, keeps it in a cache
folder and returns its path; later calls return the cached file without a network. Built
on ``pooch`` (the fetcher of scikit-image, MetPy, xarray's tutorial data): downloads go to a
temporary file and are moved into place when complete, so an interrupted download never
leaves a truncated file in the cache; a failed download is retried.

The cache folder is, in order: the ``cache=`` argument, the ``CLUSTERMAP_CACHE``
environment variable, or the user cache folder of the platform (``platformdirs``:
``~/.cache/clustermap`` on Linux). Every publisher's base URL can be changed with
``base_url=`` or with its environment variable (:data:`SOURCES`), since publishers move
files; a moved or unreachable file gives a :class:`~clustermap.errors.FetchError` that names
the URL and the way to override it.

Publishers' files change with each release (SIRENE monthly, URSSAF yearly), so no checksum
is fixed here; pass ``sha256=`` to pin the file you expect.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FetchError

__all__ = [
    "SOURCES",
    "Source",
    "cache_folder",
    "fetch_cbp",
    "fetch_cog",
    "fetch_communes",
    "fetch_sirene",
    "fetch_sirene_stock",
    "fetch_urssaf",
]


@dataclass(frozen=True)
class Source:
    """A publisher's files: base URL, its environment variable, publisher and licence."""

    base_url: str
    env: str
    publisher: str
    licence: str


#: every publisher's base URL, overridable by its environment variable or ``base_url=``
SOURCES: dict[str, Source] = {
    "sirene": Source(
        "https://files.data.gouv.fr/geo-sirene/last/dep/",
        "CLUSTERMAP_SIRENE_URL",
        "Etalab (base Sirene des entreprises et de leurs établissements géolocalisée, INSEE)",
        "Licence Ouverte 2.0",
    ),
    "sirene_stock": Source(
        "https://files.data.gouv.fr/insee-sirene/",
        "CLUSTERMAP_SIRENE_STOCK_URL",
        "INSEE (stock des établissements et géolocalisation, base Sirene)",
        "Licence Ouverte 2.0",
    ),
    "communes": Source(
        "https://etalab-datasets.geo.data.gouv.fr/contours-administratifs/",
        "CLUSTERMAP_COMMUNES_URL",
        "Etalab (contours administratifs, from IGN Admin Express COG)",
        "Licence Ouverte 2.0",
    ),
    "cog": Source(
        "https://unpkg.com/@etalab/decoupage-administratif@6.0.0/data/",
        "CLUSTERMAP_COG_URL",
        "Etalab package @etalab/decoupage-administratif (INSEE COG, DGCL BANATIC)",
        "MIT (package), Licence Ouverte 2.0 (data)",
    ),
    "urssaf": Source(
        "https://open.urssaf.fr/api/explore/v2.1/catalog/datasets/",
        "CLUSTERMAP_URSSAF_URL",
        "URSSAF (établissements et effectifs salariés au niveau commune x APE)",
        "Licence Ouverte 2.0",
    ),
    "cbp": Source(
        "https://www2.census.gov/",
        "CLUSTERMAP_CENSUS_URL",
        "U.S. Census Bureau (County Business Patterns; cartographic boundary files)",
        "public domain (U.S. federal work)",
    ),
}

_URSSAF_DATASET = "etablissements-et-effectifs-salaries-au-niveau-commune-x-ape-last"


def cache_folder(cache: str | os.PathLike[str] | None = None) -> Path:
    """The cache folder: ``cache``, else ``$CLUSTERMAP_CACHE``, else the user cache folder.

    Examples
    --------
    >>> cache_folder("/data/cache").as_posix()
    '/data/cache'
    """
    if cache is not None:
        return Path(cache)
    env = os.environ.get("CLUSTERMAP_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("clustermap"))


def _base(name: str, base_url: str | None) -> str:
    url = base_url or os.environ.get(SOURCES[name].env) or SOURCES[name].base_url
    return url if url.endswith("/") else url + "/"


def _download(
    url: str,
    fname: str,
    *,
    name: str,
    cache: Any,
    sha256: str | None,
    progress: bool,
    retries: int = 2,
) -> Path:
    """Download ``url`` once into the cache (sub-folder ``name``), retrying on failure."""
    import pooch
    import requests

    folder = cache_folder(cache) / name
    target = folder / fname
    if target.is_file() and sha256 is None:
        return target  # a cache hit needs no network
    known = None if sha256 is None else f"sha256:{sha256}"
    override = f"pass base_url= (CLI: --base-url) or set {SOURCES[name].env}"
    for attempt in range(retries + 1):
        try:
            path = pooch.retrieve(
                url,
                known_hash=known,
                fname=fname,
                path=folder,
                progressbar=progress,
                downloader=pooch.HTTPDownloader(progressbar=progress, timeout=60),
            )
            return Path(path)
        except ValueError as exc:  # pooch: hash mismatch (the bad file is removed)
            raise FetchError(
                f"{url} was downloaded but its SHA-256 is not the expected {sha256}: the "
                f"publisher changed the file. Check it, then pass the new sha256= or none. "
                f"({exc})"
            ) from None
        except requests.HTTPError as exc:
            status = exc.response.status_code if exc.response is not None else None
            if status is not None and status < 500:
                raise FetchError(
                    f"{url} answered HTTP {status}: the file has moved or is not published "
                    f"under this name. Find its new address on the publisher's site and "
                    f"{override}."
                ) from None
            error = f"HTTP {status}"
        except (requests.ConnectionError, requests.Timeout) as exc:
            error = type(exc).__name__
        if attempt < retries:
            time.sleep(0.5 * 2**attempt)
    raise FetchError(
        f"Cannot download {url} ({error} after {retries + 1} attempts): no network, or the "
        f"server is down. Try again later, or {override}."
    )


def fetch_sirene(
    departements: str | Iterable[str],
    *,
    cache: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> list[Path]:
    """The geolocated SIRENE establishments of one or more départements.

    Publisher: Etalab, *Base Sirene des entreprises et de leurs établissements (SIREN,
    SIRET) géolocalisée* (INSEE data geocoded by Etalab), one gzip CSV per département,
    ``geo_siret_<dep>.csv.gz``, updated monthly. Licence Ouverte 2.0. Read the files with
    :func:`clustermap.read_registry` (preset ``"sirene"``).

    Parameters
    ----------
    departements : str or iterable of str
        Département codes (``"74"``, ``"2A"``, ``"971"``; ``"1"`` is read as ``"01"``).
    cache : path, optional
        Cache folder (see :func:`cache_folder`).
    base_url : str, optional
        Folder URL of the files (default :data:`SOURCES` ``["sirene"]``, or
        ``$CLUSTERMAP_SIRENE_URL``).
    sha256 : str, optional
        Expected SHA-256 of the file (one département only).
    progress : bool, default True
        Progress bar on stderr.

    Returns
    -------
    list of pathlib.Path
        The cached files, in the order asked.

    Raises
    ------
    clustermap.errors.FetchError
        Offline, file moved, or checksum mismatch (the message says what to do).

    Examples
    --------
    >>> paths = cm.datasets.fetch_sirene(["74", "01"])  # doctest: +SKIP
    >>> registry = cm.read_registry(paths)  # doctest: +SKIP
    """
    deps = [departements] if isinstance(departements, str) else list(departements)
    if not deps:
        raise ValueError("Give at least one département code, e.g. fetch_sirene('74').")
    base = _base("sirene", base_url)
    out = []
    for dep in deps:
        code = str(dep).strip().upper()
        code = code.zfill(2) if code.isdigit() and len(code) == 1 else code
        fname = f"geo_siret_{code}.csv.gz"
        out.append(
            _download(
                base + fname, fname, name="sirene", cache=cache, sha256=sha256, progress=progress
            )
        )
    return out


def fetch_sirene_stock(
    *,
    cache: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """The national SIRENE stock of establishments and its geolocation file (all France).

    Publisher: INSEE, *StockEtablissement* (about 2 GB zipped) and
    *GeolocalisationEtablissement_Sirene_pour_etudes_statistiques* (Lambert coordinates per
    SIRET), monthly. Licence Ouverte 2.0. :func:`clustermap.read_registry` reads the pair
    with ``geolocation=``.

    Returns
    -------
    dict
        ``{"stock": path, "geolocation": path}``.

    Examples
    --------
    >>> files = cm.datasets.fetch_sirene_stock()  # doctest: +SKIP
    """
    base = _base("sirene_stock", base_url)
    names = {
        "stock": "StockEtablissement_utf8.zip",
        "geolocation": "GeolocalisationEtablissement_Sirene_pour_etudes_statistiques_utf8.zip",
    }
    return {
        key: _download(
            base + fname, fname, name="sirene_stock", cache=cache, sha256=None, progress=progress
        )
        for key, fname in names.items()
    }


def fetch_communes(
    *,
    year: int = 2018,
    cache: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    sha256: str | None = None,
    progress: bool = True,
) -> Path:
    """Commune polygons of a stated COG vintage (GeoJSON, about 100 m generalisation).

    Publisher: Etalab, *Contours administratifs* (``<year>/geojson/communes-100m.geojson.gz``),
    derived from IGN Admin Express COG of that year. Licence Ouverte 2.0. Read with
    ``cm.read_units(path, unit_id="code", name="nom")``. Commune codes of other vintages in
    counts are mapped to these communes by :func:`clustermap.io.communes.harmonise_communes`
    (2018).

    Examples
    --------
    >>> path = cm.datasets.fetch_communes(year=2018)  # doctest: +SKIP
    """
    fname = "communes-100m.geojson.gz"
    url = f"{_base('communes', base_url)}{int(year)}/geojson/{fname}"
    return _download(
        url, f"{int(year)}_{fname}", name="communes", cache=cache, sha256=sha256, progress=progress
    )


def fetch_cog(
    *,
    cache: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """The commune reference table (COG) with EPCI membership and population.

    Publisher: Etalab, npm package ``@etalab/decoupage-administratif`` (``communes.json``
    with population, ``epci.json`` with membership), built from the INSEE Code officiel
    géographique and the DGCL BANATIC. MIT (package), Licence Ouverte 2.0 (data).

    Returns
    -------
    dict
        ``{"communes": path, "epci": path}`` (JSON files).

    Examples
    --------
    >>> files = cm.datasets.fetch_cog()  # doctest: +SKIP
    """
    base = _base("cog", base_url)
    return {
        key: _download(
            base + f"{key}.json",
            f"{key}.json",
            name="cog",
            cache=cache,
            sha256=None,
            progress=progress,
        )
        for key in ("communes", "epci")
    }


def fetch_urssaf(
    *,
    cache: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> Path:
    """URSSAF establishments and salaried employment per commune × APE code, every year.

    Publisher: URSSAF, *Établissements et effectifs salariés au niveau commune x APE*
    (open.urssaf.fr, national CSV export, ``;``-separated). Licence Ouverte 2.0. Read with
    :func:`clustermap.read_counts`.

    Examples
    --------
    >>> path = cm.datasets.fetch_urssaf()  # doctest: +SKIP
    """
    url = f"{_base('urssaf', base_url)}{_URSSAF_DATASET}/exports/csv?delimiter=%3B"
    return _download(
        url, "urssaf_commune_x_ape.csv", name="urssaf", cache=cache, sha256=None, progress=progress
    )


def fetch_cbp(
    year: int = 2021,
    *,
    cache: str | os.PathLike[str] | None = None,
    base_url: str | None = None,
    progress: bool = True,
) -> dict[str, Path]:
    """U.S. County Business Patterns (county file) and the Census cartographic counties.

    Publisher: U.S. Census Bureau, *County Business Patterns* ``cbp<yy>co.zip`` (employment
    and establishments per county × NAICS) and the 1:20 000 000 cartographic boundary file
    of counties ``cb_<year>_us_county_20m.zip``; public domain. Group NAICS codes into the
    U.S. benchmark clusters with ``level=`` a NAICS → cluster mapping
    (``nomenclature="naics"``).

    Returns
    -------
    dict
        ``{"cbp": path, "counties": path}`` (zip files).

    Examples
    --------
    >>> files = cm.datasets.fetch_cbp(2021)  # doctest: +SKIP
    """
    base = _base("cbp", base_url)
    yy = f"{int(year) % 100:02d}"
    files = {
        "cbp": (f"programs-surveys/cbp/datasets/{int(year)}/cbp{yy}co.zip", f"cbp{yy}co.zip"),
        "counties": (
            f"geo/tiger/GENZ{int(year)}/shp/cb_{int(year)}_us_county_20m.zip",
            f"cb_{int(year)}_us_county_20m.zip",
        ),
    }
    return {
        key: _download(base + rel, fname, name="cbp", cache=cache, sha256=None, progress=progress)
        for key, (rel, fname) in files.items()
    }
