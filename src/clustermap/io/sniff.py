"""What a file really is, from its first bytes, so a wrong name gets the right diagnosis.

A gzip file named ``.csv``, an Excel workbook, a Parquet file, a program or an HTML error
page saved under a ``.csv`` name would otherwise be reported as "bytes that are not valid
utf-8". :func:`sniff` reads the magic bytes; :func:`mismatch` turns them into a one-line
message naming the file, what it is and what to do.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = ["mismatch", "sniff"]

_MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"PK\x03\x04", "zip"),
    (b"PAR1", "parquet"),
    (b"BZh", "bzip2"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"%PDF", "pdf"),
    (b"\x7fELF", "program"),
    (b"MZ", "program"),
    (b"SQLite format 3\x00", "sqlite"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)

_WHAT = {
    "gzip": "a gzip-compressed file",
    "zip": "a zip archive",
    "xlsx": "an Excel workbook (.xlsx)",
    "parquet": "a Parquet file",
    "bzip2": "a bzip2-compressed file",
    "zstd": "a zstd-compressed file",
    "xz": "an xz-compressed file",
    "pdf": "a PDF document",
    "program": "a program (an executable), not data",
    "sqlite": "an SQLite database (a GeoPackage?)",
    "xls": "an old Excel workbook (.xls)",
    "utf-16": "text in UTF-16",
    "html": "a web page (HTML), not data: often the error page of a failed download",
}

_FIX = {
    "gzip": "rename it to end in .csv.gz",
    "zip": "rename it to end in .zip",
    "xlsx": "open it and save the sheet as CSV (UTF-8), or read it with pandas.read_excel "
    "and pass the DataFrame",
    "parquet": "rename it to end in .parquet",
    "bzip2": "rename it to end in .csv.bz2",
    "zstd": "rename it to end in .csv.zst",
    "xz": "decompress it (xz -d) and read the CSV",
    "pdf": "a PDF table cannot be read; get the CSV publication of the data",
    "program": "check the path: this is not the data file",
    "sqlite": "rename it to end in .gpkg if it is a GeoPackage",
    "xls": "open it and save the sheet as CSV (UTF-8)",
    "utf-16": "save it as UTF-8, or pass encoding='utf-16'",
    "html": "download the file again (the address may have moved)",
}

# what the name promises: suffix -> kinds that match it
_EXPECTED = {
    ".gz": {"gzip"},
    ".zip": {"zip", "xlsx"},
    ".bz2": {"bzip2"},
    ".zst": {"zstd"},
    ".parquet": {"parquet"},
    ".pq": {"parquet"},
    ".geoparquet": {"parquet"},
    ".gpkg": {"sqlite"},
    ".xlsx": {"xlsx"},
    ".xls": {"xls"},
}
_TEXT_SUFFIXES = {".csv", ".txt", ".tsv", ".dat"}


def sniff(path: str | Path) -> str | None:
    r"""The kind of file its first bytes say it is (None: plain text or unknown).

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "registry.csv"
    >>> _ = p.write_bytes(gzip.compress(b"siret;naf\n1;25.62A\n"))
    >>> sniff(p)
    'gzip'
    """
    path = Path(path)
    with open(path, "rb") as fh:
        head = fh.read(512)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            if kind == "zip" and _is_xlsx(path):
                return "xlsx"
            return kind
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if start.startswith((b"<!doctype html", b"<html")):
        return "html"
    return None


def _is_xlsx(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def mismatch(path: str | Path, encoding: str = "utf-8") -> str | None:
    r"""A one-line diagnosis when the file's content does not match its name, else None.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "registry.csv"
    >>> _ = p.write_bytes(gzip.compress(b"siret;naf\n1;25.62A\n"))
    >>> print(mismatch(p))
    registry.csv is a gzip-compressed file, although its name says text: rename it ... .csv.gz.
    """
    path = Path(path)
    kind = sniff(path)
    suffix = path.suffix.lower()
    if kind == "utf-16" and encoding.lower().replace("_", "-").startswith("utf-16"):
        return None
    if kind is None:  # text, or unknown bytes: the reader's own checks say what is wrong
        return None
    if suffix in _EXPECTED and kind in _EXPECTED[suffix]:
        return None
    promised = "text" if suffix in _TEXT_SUFFIXES or not suffix else f"'{suffix}'"
    return f"{path.name} is {_WHAT[kind]}, although its name says {promised}: {_FIX[kind]}."
