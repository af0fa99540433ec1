"""Command line for people who do not write Python: ``clustermap detect`` and ``clustermap demo``.

A thin layer over the public API (:func:`clustermap.read_registry`,
:func:`clustermap.read_units`, :func:`clustermap.detect_clusters`,
:meth:`clustermap.ClusterResult.to_html`); it has no logic of its own. Long steps print a
line with their duration on standard error (``--quiet`` silences them), a summary is printed
at the end, and user mistakes (missing file, missing column, unknown CRS ...) give a one-line
error without traceback.

Exit codes: 0 success, 2 usage or input error, 1 unexpected error (``--debug`` shows the
traceback), 130 interrupted.

Examples
--------
>>> from clustermap.cli import main
>>> main(["--version"])  # doctest: +ELLIPSIS
clustermap ...
0
"""

from __future__ import annotations

import argparse
import inspect
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from ._version import __version__
from .core.display import display_text
from .errors import ClustermapError
from .taxonomy import is_category_id
from .viz import i18n as _i18n

__all__ = ["main"]

#: Seed of the permutations when --seed is not given, so a report can be made again.
DEFAULT_SEED = 12345

_MESSAGES = {
    "read_registry": ("Lecture du registre", "Reading the registry"),
    "read_units": ("Lecture des unités spatiales", "Reading the spatial units"),
    "read_counts": ("Lecture des effectifs par unité et secteur", "Reading the counts"),
    "counts_need_units": (
        "{path} contient des effectifs par unité et secteur : donnez les polygones de ces "
        "unités avec --units FICHIER",
        "{path} holds counts per unit and sector: give the polygons of those units with "
        "--units FILE",
    ),
    "year_needs_counts": (
        "--year s'applique aux fichiers d'effectifs (URSSAF) ; ajoutez --counts si c'en est un",
        "--year applies to count files (URSSAF); add --counts if this is one",
    ),
    "load_demo": ("Chargement des données de démonstration", "Loading the demo data"),
    "detect": ("Détection des clusters", "Detecting clusters"),
    "trends": (
        "Détection à chaque date et suivi des clusters",
        "Detecting at each date and following the clusters",
    ),
    "bad_dates": (
        "{opt} attend des années ou des dates ISO séparées par des virgules, par exemple "
        "{opt} 2010,2015,2020,2025 ; reçu {value!r}",
        "{opt} expects years or ISO dates separated by commas, e.g. {opt} 2010,2015,2020,2025; "
        "got {value!r}",
    ),
    "years_need_counts": (
        "--years sert aux fichiers d'effectifs annuels (URSSAF) ; pour un registre, utilisez "
        "--dates 2010,2015,2020,2025",
        "--years is for yearly count files (URSSAF); for a registry use "
        "--dates 2010,2015,2020,2025",
    ),
    "dates_need_registry": (
        "--dates sert aux registres datés (SIRENE) ; pour un fichier d'effectifs annuels, "
        "utilisez --years 2010,2015,2020",
        "--dates is for dated registries (SIRENE); for a yearly count file use "
        "--years 2010,2015,2020",
    ),
    "report": ("Écriture du rapport", "Writing the report"),
    "gpkg": ("Écriture du GeoPackage", "Writing the GeoPackage"),
    "done": ("Terminé en", "Done in"),
    "found": (
        "{n} cluster(s) détecté(s) dans {s} secteur(s)",
        "{n} cluster(s) found in {s} sector(s)",
    ),
    "kept": (
        "{kept} établissements retenus, {dropped} lignes écartées",
        "{kept} establishments kept, {dropped} rows dropped",
    ),
    "report_at": ("Rapport : {path}", "Report: {path}"),
    "gpkg_at": ("GeoPackage : {path}", "GeoPackage: {path}"),
    "top": ("Principaux clusters :", "Leading clusters:"),
    "top_traded": (
        "Principaux clusters exportateurs (secteurs qui vendent hors du territoire) :",
        "Leading traded clusters (industries that sell beyond their region):",
    ),
    "top_local": (
        "Principaux clusters de proximité (secteurs présents partout) :",
        "Leading local clusters (industries present everywhere):",
    ),
    "error": ("erreur", "error"),
    "unexpected": (
        "erreur inattendue ({kind}) : {msg} — relancez avec --debug pour le détail",
        "unexpected error ({kind}): {msg} — run again with --debug for details",
    ),
    "interrupted": ("interrompu", "interrupted"),
    "same_as_input": (
        "{flag} {path} désigne le fichier d'entrée {what} : il serait écrasé. "
        "Choisissez un autre chemin pour {flag}.",
        "{flag} {path} is the input file {what}: it would be overwritten. "
        "Choose another path for {flag}.",
    ),
    "same_output": (
        "{flag} et {other} désignent le même fichier {path} : l'un écraserait l'autre. "
        "Donnez-leur des chemins différents.",
        "{flag} and {other} name the same file {path}: one would overwrite the other. "
        "Give them different paths.",
    ),
    "no_folder": (
        "le dossier de {flag} {path} n'existe pas : créez-le ou choisissez un autre chemin.",
        "the folder of {flag} {path} does not exist: create it or choose another path.",
    ),
    "is_folder": (
        "{flag} {path} est un dossier : donnez un nom de fichier.",
        "{flag} {path} is a folder: give a file name.",
    ),
    "not_writable": (
        "impossible d'écrire dans le dossier de {flag} {path} ({reason}) : "
        "choisissez un dossier accessible en écriture.",
        "cannot write to the folder of {flag} {path} ({reason}): choose a writable folder.",
    ),
    "first_run": (
        "Premier lancement sur cette machine : les noyaux de calcul sont compilés une fois "
        "(15 à 20 secondes sur 2 cœurs) ; les lancements suivants démarrent en quelques "
        "secondes.",
        "First run on this machine: the statistics kernels are compiled once (15 to 20 "
        "seconds on 2 cores); later runs start in seconds.",
    ),
    "unsupported": (
        "l'option {opt} n'est pas prise en charge par cette version de detect_clusters",
        "option {opt} is not supported by this version of detect_clusters",
    ),
}


def _msg(key: str, lang: str, **fmt: Any) -> str:
    fr, en = _MESSAGES[key]
    text = fr if lang == "fr" else en
    return text.format(**fmt) if fmt else text


def _fmt_seconds(seconds: float, lang: str) -> str:
    text = f"{seconds:.1f}"
    return f"{text.replace('.', ',') if lang == 'fr' else text} s"


class _Progress:
    """Stage lines with timings on stderr: ``[2/4] Détection des clusters … 3,2 s``."""

    def __init__(self, total: int, lang: str, quiet: bool, stream: TextIO) -> None:
        self.total, self.lang, self.quiet, self.stream = total, lang, quiet, stream
        self.index = 0
        self.start = time.perf_counter()

    def run(self, key: str, func: Callable[[], Any]) -> Any:
        self.index += 1
        label = f"[{self.index}/{self.total}] {_msg(key, self.lang)} …"
        if not self.quiet:
            print(label, end=" ", file=self.stream, flush=True)
        t0 = time.perf_counter()
        try:
            out = func()
        except BaseException:
            if not self.quiet:
                print("", file=self.stream, flush=True)
            raise
        if not self.quiet:
            print(_fmt_seconds(time.perf_counter() - t0, self.lang), file=self.stream, flush=True)
        return out

    def done(self) -> None:
        if not self.quiet:
            elapsed = _fmt_seconds(time.perf_counter() - self.start, self.lang)
            print(f"{_msg('done', self.lang)} {elapsed}", file=self.stream, flush=True)


def _time_options(detect: argparse.ArgumentParser) -> None:
    detect.add_argument(
        "--dates",
        default=None,
        help="follow the clusters over time: the registry's stock at these dates (years or "
        "ISO dates, e.g. 2010,2015,2020,2025); adds the Trends section to the report",
    )
    detect.add_argument(
        "--years",
        default=None,
        help="follow the clusters over these years of a yearly count file (URSSAF), e.g. "
        "2008,2014,2022",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clustermap",
        description="Find business clusters in a company registry and write an HTML report.",
    )
    parser.add_argument("--version", action="version", version=f"clustermap {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def common(p: argparse.ArgumentParser, out_default: str) -> None:
        p.add_argument(
            "--out", default=out_default, help=f"HTML report to write (default {out_default})"
        )
        p.add_argument(
            "--level",
            default=None,
            help="sector level: subclass, class, group, division, section, or cluster_category "
            "(groups of related industries)",
        )
        p.add_argument("--permutations", type=int, default=None, help="permutations per test")
        p.add_argument(
            "--seed",
            type=int,
            default=None,
            help=f"seed of the permutations (default {DEFAULT_SEED}: reports are reproducible)",
        )
        p.add_argument("--alpha", type=float, default=None, help="significance level")
        p.add_argument("--lang", choices=_i18n.LANGS, default="fr", help="report language")
        p.add_argument("--gpkg", default=None, help="also write the clusters to this GeoPackage")
        p.add_argument(
            "--territory",
            default=None,
            help="open the report on a territory: an EPCI code (with --cog), a département "
            "code, or unit ids separated by commas",
        )
        p.add_argument(
            "--cog",
            default=None,
            help="commune table with 'code' and 'codeEpci' (or epci.json); its 'population' "
            "column serves --exposure population",
        )
        p.add_argument("--territory-name", default=None, help="the territory's name in the report")
        p.add_argument(
            "--exposure",
            default=None,
            help="expected counts proportional to this column (of --cog by commune code, or "
            "of --units), e.g. population: bars per inhabitant in a one-sector file",
        )
        p.add_argument(
            "--xlsx", default=None, help="also write the territory's firms to this Excel file"
        )
        p.add_argument(
            "--scheduler",
            default=None,
            help="run on a Dask cluster: a scheduler address (tcp://host:8786) or 'local' "
            "(one worker per core); needs pip install 'clustermap[dask]'",
        )
        p.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
        p.add_argument("--debug", action="store_true", help="show tracebacks of errors")

    detect = sub.add_parser(
        "detect",
        help="detect clusters in a registry and write the report",
        description="Detect clusters in a registry file and write the HTML report.",
    )
    detect.add_argument(
        "registry", help="registry file (SIRENE CSV/CSV.gz, Parquet...) or folder of Parquet files"
    )
    detect.add_argument("--format", default=None, help="registry format, e.g. sirene")
    detect.add_argument("--units", default=None, help="polygons of the spatial units")
    detect.add_argument("--unit-id", default=None, help="column of the unit ids in --units")
    detect.add_argument("--unit-name", default=None, help="column of the unit names")
    detect.add_argument("--crs", default=None, help="CRS of the registry coordinates")
    detect.add_argument("--sector-column", default=None, help="column of the sector codes")
    detect.add_argument("--x-column", default=None, help="column of the x coordinates")
    detect.add_argument("--y-column", default=None, help="column of the y coordinates")
    detect.add_argument("--id-column", default=None, help="column of the establishment ids")
    detect.add_argument("--encoding", default="utf-8", help="text encoding (e.g. latin-1)")
    detect.add_argument(
        "--counts",
        action="store_true",
        help="the file holds counts per unit and sector (URSSAF or a long table); "
        "detected from the header when not given",
    )
    detect.add_argument("--year", type=int, default=None, help="year of a URSSAF count file")
    _time_options(detect)
    common(detect, "report.html")

    demo = sub.add_parser(
        "demo",
        help="run the whole analysis on the bundled demo data",
        description="Read the bundled demo registry, detect clusters, write the report.",
    )
    common(demo, "clustermap_demo.html")

    fetch = sub.add_parser(
        "fetch",
        help="download official data into the local cache and print the paths",
        description="Download a publisher's files once into the local cache (see "
        "clustermap.datasets.fetch_*) and print their paths, one per line.",
    )
    fetch.add_argument("what", choices=FETCH_KINDS, help="which files")
    fetch.add_argument(
        "--departement",
        "--departements",
        nargs="+",
        default=None,
        help="sirene: département codes, e.g. 74 01 39",
    )
    fetch.add_argument("--year", type=int, default=None, help="communes: COG vintage; cbp: year")
    fetch.add_argument(
        "--cache",
        default=None,
        help="cache folder (default $CLUSTERMAP_CACHE or the user cache folder)",
    )
    fetch.add_argument("--base-url", default=None, help="publisher's folder URL, when it moved")
    fetch.add_argument("--sha256", default=None, help="expected SHA-256 of the file")
    fetch.add_argument("--lang", choices=_i18n.LANGS, default="fr", help="language of messages")
    fetch.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    fetch.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    return parser


#: what ``clustermap fetch`` downloads
FETCH_KINDS = ("sirene", "sirene-stock", "communes", "cog", "urssaf", "cbp")


def _fetch(args: argparse.Namespace, out: TextIO) -> int:
    """``clustermap fetch``: download into the cache, print the paths."""
    from .io import fetch as f

    common = {"cache": args.cache, "base_url": args.base_url, "progress": not args.quiet}
    if args.what == "sirene":
        if not args.departement:
            raise ValueError("clustermap fetch sirene needs --departement, e.g. --departement 74")
        paths = f.fetch_sirene(args.departement, sha256=args.sha256, **common)
    elif args.what == "sirene-stock":
        paths = list(f.fetch_sirene_stock(**common).values())
    elif args.what == "communes":
        paths = [f.fetch_communes(year=args.year or 2018, sha256=args.sha256, **common)]
    elif args.what == "cog":
        paths = list(f.fetch_cog(**common).values())
    elif args.what == "urssaf":
        paths = [f.fetch_urssaf(**common)]
    else:
        paths = list(f.fetch_cbp(args.year or 2021, **common).values())
    for path in paths:
        print(path, file=out)
    return 0


def _detect_kwargs(detect: Callable[..., Any], args: argparse.Namespace, lang: str) -> dict:
    """Options given on the command line, under the names ``detect`` accepts.

    An option is passed as a keyword of ``detect`` when it has one, else in its
    ``options=`` (:class:`~clustermap.detect.options.DetectionOptions`); an option ``detect``
    cannot take is refused before any work.
    """
    from .detect.options import DetectionOptions

    params = inspect.signature(detect).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    in_options = set(DetectionOptions.__dataclass_fields__) if "options" in params else set()
    wanted = {
        "--level": ("level", args.level),
        "--permutations": ("permutations", args.permutations),
        "--seed": ("random_state", args.seed),
        "--alpha": ("alpha", args.alpha),
        "--exposure": ("exposure", _exposure_value(args)),
    }
    out: dict[str, Any] = {}
    for opt, (name, value) in wanted.items():
        if value is None:
            continue
        if name in params:
            out[name] = value
        elif name in in_options:
            out.setdefault("options", {})[name] = value
        elif accepts_any:
            out[name] = value
        else:
            raise ValueError(_msg("unsupported", lang, opt=opt))
    if args.seed is None and "random_state" in params:
        out["random_state"] = DEFAULT_SEED  # the same report every run
    return out


def _exposure_value(args: argparse.Namespace) -> Any:
    """The value of ``--exposure``: a column of ``--cog`` by commune code, else of the units.

    A COG table with the column gives a Series (commune code -> value); otherwise the name
    is passed on, as a column of the units.
    """
    name = getattr(args, "exposure", None)
    if not name or not getattr(args, "cog", None) or str(args.cog).lower().endswith(".json"):
        return name
    import pandas as pd

    table = pd.read_csv(args.cog, dtype=str)
    if name not in table.columns or "code" not in table.columns:
        return name
    return pd.Series(pd.to_numeric(table[name], errors="coerce").to_numpy(), index=table["code"])


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_outputs(
    outputs: dict[str, str | None], inputs: dict[str, str | None], lang: str
) -> dict[str, Path]:
    """Refuse, before any work, outputs that would overwrite an input or each other.

    Also checks that each output's folder exists and is writable (by creating and removing
    a temporary file there), so a long run never ends on an unwritable folder.
    """
    outs = {flag: Path(p) for flag, p in outputs.items() if p}
    ins = {flag: Path(p) for flag, p in inputs.items() if p}
    for flag, path in outs.items():
        for what, src in ins.items():
            if _same_file(path, src):
                raise ValueError(_msg("same_as_input", lang, flag=flag, path=path, what=what))
    flags = list(outs)
    for i, flag in enumerate(flags):
        for other in flags[i + 1 :]:
            if _same_file(outs[flag], outs[other]):
                raise ValueError(_msg("same_output", lang, flag=flag, other=other, path=outs[flag]))
    for flag, path in outs.items():
        folder = path.parent
        if not folder.is_dir():
            raise ValueError(_msg("no_folder", lang, flag=flag, path=path))
        if path.is_dir():
            raise ValueError(_msg("is_folder", lang, flag=flag, path=path))
        try:
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".clustermap-probe-")
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ValueError(
                _msg("not_writable", lang, flag=flag, path=path, reason=reason)
            ) from None
        os.close(fd)
        os.unlink(probe)
    return outs


def _print_top(clusters: Any, lang: str, out: TextIO) -> None:
    """The five leading traded clusters, then the three leading local ones."""
    types = clusters["sector_type"] if "sector_type" in clusters.columns else None
    if types is None or not types.isin(["traded", "local"]).any():
        groups = [("top", clusters)]
    else:
        groups = [("top_traded", clusters[types == "traded"].head(5))]
        groups.append(("top_local", clusters[types == "local"].head(3)))
    for key, rows in groups:
        if not len(rows):
            continue
        print(_msg(key, lang), file=out)
        for rank, (_, row) in enumerate(rows.head(5).iterrows(), start=1):
            label = display_text(row.get("sector_label", ""), 80)
            place = display_text(row.get("place", ""), 120)
            lq = _i18n.fmt_num(row.get("lq"), lang)
            est = _i18n.fmt_int(row.get("establishments"), lang)
            word = _i18n.t("establishments", lang).lower()
            artefact = row.get("artefact", False)
            flag = " ⚠ artefact" if artefact == artefact and bool(artefact) else ""  # NaN-safe
            code = str(row["sector"])
            # a category id says nothing more than its name: print the name alone
            head = label if label and is_category_id(code) else f"{display_text(code, 20)} {label}"
            print(
                f"  {rank}. {head} — {place} "
                f"({_i18n.t('lq_short', lang)} {lq}, {est} {word}){flag}",
                file=out,
            )


def _summary(result: Any, lang: str, report: Path, gpkg: Path | None, out: TextIO) -> None:
    clusters = result.clusters
    n_sectors = clusters["sector"].nunique() if "sector" in clusters.columns else 0
    print(_msg("found", lang, n=len(clusters), s=n_sectors), file=out)
    summary = result.registry_summary or {}
    if summary.get("kept") is not None:
        rejects = summary.get("rejects") or {}
        dropped = sum(int(v) for v in dict(rejects).values())
        kept = _i18n.fmt_int(summary["kept"], lang)
        print(_msg("kept", lang, kept=kept, dropped=_i18n.fmt_int(dropped, lang)), file=out)
    if len(clusters):
        _print_top(clusters, lang, out)
    print(_msg("report_at", lang, path=report), file=out)
    if gpkg is not None:
        print(_msg("gpkg_at", lang, path=gpkg), file=out)


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    import clustermap as cm

    lang = args.lang
    if args.command == "fetch":
        return _fetch(args, out)
    inputs = {}
    if args.command == "detect":
        inputs = {"registry": args.registry, "--units": args.units}
    if getattr(args, "xlsx", None) and not args.territory:
        raise ValueError("--xlsx writes the firms of a territory: give --territory too.")
    outs = _check_outputs(
        {"--out": args.out, "--gpkg": args.gpkg, "--xlsx": args.xlsx},
        {**inputs, "--cog": args.cog},
        lang,
    )
    report, gpkg = outs["--out"], outs.get("--gpkg")
    client = None
    if args.scheduler:
        from .core.distributed import resolve_client

        client = resolve_client(args.scheduler, name="--scheduler")
    if args.command == "detect":
        registry_path = Path(args.registry)
        if not registry_path.exists():
            raise FileNotFoundError(f"Registry file not found: {args.registry!r}.")
        if args.units and not Path(args.units).exists():
            raise FileNotFoundError(f"Units file not found: {args.units!r}.")
        if args.unit_id and not args.units:
            raise ValueError("--unit-id needs --units FILE (the polygons holding that column).")
        steps = 3 + bool(args.units) + bool(gpkg)
        progress = _Progress(steps, lang, args.quiet, err)
        registry = _read_input(cm, args, registry_path, progress, lang, client)
        units = None
        if args.units:
            units = progress.run(
                "read_units",
                lambda: cm.read_units(args.units, unit_id=args.unit_id, name=args.unit_name),
            )
    else:
        steps = 3 + bool(gpkg)
        progress = _Progress(steps, lang, args.quiet, err)
        demo = progress.run("load_demo", cm.load_demo)
        registry, units = demo.registry, demo.units
    detect_kwargs = _detect_kwargs(cm.detect_clusters, args, lang)
    if args.scheduler:
        detect_kwargs["client"] = client
    if not args.quiet:
        from .stats.autocorrelation import kernels_compiled

        if kernels_compiled() is False:
            print(_msg("first_run", lang), file=err, flush=True)
    trends = None
    if getattr(args, "dates", None) or getattr(args, "years", None):
        trends = progress.run(
            "trends", lambda: _trends(cm, args, registry, units, detect_kwargs, lang)
        )
        result = trends.results[trends.dates[-1]]
    else:
        result = progress.run(
            "detect", lambda: cm.detect_clusters(registry, units, **detect_kwargs)
        )
    source = Path(args.registry).name if args.command == "detect" else None
    territory = None
    if args.territory:
        code = args.territory
        spec = code if "," not in code else [c.strip() for c in code.split(",") if c.strip()]
        territory = cm.resolve_territory(spec, result.units, cog=args.cog, name=args.territory_name)
    progress.run(
        "report",
        lambda: (trends or result).to_html(report, lang=lang, source=source, territory=territory),
    )
    if outs.get("--xlsx") is not None:
        from .detect.territory import export_firms

        export_firms(result, territory, outs["--xlsx"], language=lang)
    if gpkg is not None:
        progress.run("gpkg", lambda: result.to_file(gpkg))
    progress.done()
    _summary(result, lang, report, gpkg, out)
    return 0


def _date_list(value: str, opt: str, lang: str) -> list[Any]:
    """``2010,2015`` -> [2010, 2015]; ISO dates kept as text; anything else refused."""
    out: list[Any] = []
    for part in (p.strip() for p in str(value).split(",") if p.strip()):
        if re.fullmatch(r"\d{4}", part):
            out.append(int(part))
        elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", part):
            out.append(part)
        else:
            raise ValueError(_msg("bad_dates", lang, opt=opt, value=value))
    if len(out) < 2:
        raise ValueError(_msg("bad_dates", lang, opt=opt, value=value))
    return out


def _trends(cm: Any, args: argparse.Namespace, data: Any, units: Any, kwargs: dict, lang: str):
    """Detection at every date (--dates, registry) or year (--years, counts), followed."""
    kwargs = dict(kwargs)
    level = kwargs.pop("level", "subclass")
    kwargs.pop("random_state", None)  # the window test is exact: no permutation to seed
    if args.dates:
        dates = _date_list(args.dates, "--dates", lang)
        panel = cm.stock_at_dates(data, units, dates, level=level)
        return cm.cluster_trends(panel, units, **kwargs)
    return cm.cluster_trends(data, units, level=level, **kwargs)


def _read_input(
    cm: Any, args: argparse.Namespace, path: Path, progress: Any, lang: str, client: Any = None
) -> Any:
    """The registry, or the count tables when the file holds counts (--counts or header).

    A folder is a partitioned registry (Parquet files), read on the Dask cluster when
    ``--scheduler`` gives one.
    """
    from .io.counts import header_columns, looks_like_counts

    counts = args.counts or (
        args.format is None
        and not path.is_dir()
        and looks_like_counts(header_columns(path, args.encoding))
    )
    if counts:
        if not args.units:
            raise ValueError(_msg("counts_need_units", lang, path=path.name))
        if args.dates:
            raise ValueError(_msg("dates_need_registry", lang))
        if args.years:
            years = [int(y) for y in _date_list(args.years, "--years", lang)]
            return progress.run(
                "read_counts",
                lambda: cm.read_count_panel(path, years=years, encoding=args.encoding),
            )
        kwargs = {"year": args.year, "encoding": args.encoding}
        if args.sector_column:
            kwargs["sector"] = args.sector_column
        return progress.run("read_counts", lambda: cm.read_counts(path, **kwargs))
    if args.year is not None:
        raise ValueError(_msg("year_needs_counts", lang))
    if args.years:
        raise ValueError(_msg("years_need_counts", lang))
    kwargs: dict[str, Any] = {"encoding": args.encoding}
    if args.dates:  # the stock at past dates needs the establishments closed since
        kwargs["options"] = {"include_closed": True}
    for key, value in (
        ("format", args.format),
        ("crs", args.crs),
        ("sector", args.sector_column),
        ("x", args.x_column),
        ("y", args.y_column),
        ("id", args.id_column),
    ):
        if value:
            kwargs[key] = value
    if client is not None:
        kwargs["client"] = client
    return progress.run("read_registry", lambda: cm.read_registry(path, **kwargs))


_FLAGS = {
    "encoding": "--encoding",
    "unit_id": "--unit-id",
    "crs": "--crs",
    "sector": "--sector-column",
    "x": "--x-column",
    "y": "--y-column",
    "id": "--id-column",
    "year": "--year",
    "format": "--format",
}
_CALL = re.compile(
    r"(?:cm\.|clustermap\.)?read_(?:registry|counts)\((?:path|[a-z_]+)(?:, )?([^()]*)\)"
)
_KEYWORD = re.compile(r"\b(" + "|".join(_FLAGS) + r")=(['\"]?)([^'\",)\s]*)\2")


def _cli_words(text: str) -> str:
    """An API error message in the command line's vocabulary: flags, not keywords.

    Examples
    --------
    >>> _cli_words("Pass the file's encoding, e.g. encoding='latin-1'.")
    "Pass the file's encoding, e.g. --encoding latin-1."
    >>> _cli_words("Name them: read_registry(path, sector='naf', x='lon', crs=4326).")
    'Name them: clustermap detect FILE --sector-column naf --x-column lon --crs 4326.'
    """
    text = _CALL.sub(lambda m: "clustermap detect FILE " + m.group(1).replace(", ", " "), text)
    return _KEYWORD.sub(
        lambda m: _FLAGS[m.group(1)] + (f" {m.group(3)}" if m.group(3) else ""), text
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``clustermap`` command; return the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 on success, 2 for a usage or input error, 1 for an unexpected error, 130 when
        interrupted.

    Examples
    --------
    >>> main(["detect", "no_such_file.csv", "--quiet"])  # one line on stderr, no traceback
    2
    """
    parser = _parser()
    out, err = sys.stdout, sys.stderr
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version or a usage error
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help(out)
        return 2
    lang = args.lang
    previous = _sigterm_as_interrupt()
    from .core.progress import progress_setting, set_progress

    bars = progress_setting()
    if args.quiet:  # no progress line, and no progress bar inside the long steps
        set_progress(False)
    try:
        return _run(args, out, err)
    except KeyboardInterrupt:
        print(f"clustermap: {_msg('interrupted', lang)}", file=err)
        return 130
    except (ClustermapError, FileNotFoundError, ValueError, ImportError) as exc:
        if args.debug:
            traceback.print_exc(file=err)
        text = display_text(_cli_words(" ".join(str(exc).split())), 2000) or type(exc).__name__
        sep = " : " if lang == "fr" else ": "
        print(f"clustermap: {_msg('error', lang)}{sep}{text}", file=err)
        return 2
    except Exception as exc:
        if args.debug:
            traceback.print_exc(file=err)
        text = display_text(" ".join(str(exc).split()), 2000)
        print(
            f"clustermap: {_msg('unexpected', lang, kind=type(exc).__name__, msg=text)}", file=err
        )
        return 1
    finally:
        set_progress(bars)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _sigterm_as_interrupt() -> Any:
    """Make SIGTERM unwind like Ctrl-C, so partial outputs are removed; return the old handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
