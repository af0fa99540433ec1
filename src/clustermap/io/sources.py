"""File sources of the registry reader: CSV (plain, compressed, zipped), Parquet, others."""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from ..core.distributed import is_dask_frame
from ..errors import ClustermapWarning, DataFileError
from .presets import _COMPRESSIONS, _CSV_SUFFIXES, _PARQUET_SUFFIXES
from .sniff import mismatch

_BLOCK_SIZE = 1 << 24  # bytes of CSV per streamed batch (about 150 000 SIRENE rows)

# =========================================================================== sources


class _Source:
    """A tabular source: header, and an iterator of (pandas chunk, first row offset)."""

    name: str
    columns: list[str]
    geometry_crs: Any = None  # CRS of a geometry column, when the source has one
    has_geometry: bool = False

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:  # pragma: no cover
        raise NotImplementedError


class _FrameSource(_Source):
    def __init__(self, frame: pd.DataFrame, name: str = "DataFrame", chunksize: int = 500_000):
        self.frame = frame
        self.name = name
        self.chunksize = chunksize
        self.has_geometry = isinstance(frame, gpd.GeoDataFrame) and frame.geometry is not None
        if self.has_geometry:
            self.geometry_crs = frame.crs
            geom_name = frame.geometry.name
            self.columns = [str(c) for c in frame.columns if c != geom_name]
        else:
            self.columns = [str(c) for c in frame.columns]

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        frame = self.frame
        for start in range(0, max(len(frame), 1), self.chunksize):
            part = frame.iloc[start : start + self.chunksize]
            out = pd.DataFrame({c: part[c].to_numpy() for c in columns}, index=None)
            if self.has_geometry:
                geom = part.geometry
                if len(geom) and not geom.geom_type.dropna().eq("Point").all():
                    warnings.warn(
                        f"{self.name}: some geometries are not points; their representative "
                        "point (inside the shape) is used.",
                        ClustermapWarning,
                        stacklevel=3,  # generator -> read_registry -> user
                    )
                    geom = geom.representative_point()
                empty = geom.isna().to_numpy() | geom.is_empty.to_numpy()
                xs = np.where(empty, np.nan, geom.x.where(~empty).to_numpy(dtype=float))
                ys = np.where(empty, np.nan, geom.y.where(~empty).to_numpy(dtype=float))
                out["__geom_x"] = xs
                out["__geom_y"] = ys
            yield out


def _zip_members(archive: zipfile.ZipFile, name: str) -> list[str]:
    """The files of a zip archive; exactly one is read, so several are refused with the list."""
    members = [m for m in archive.namelist() if not m.endswith("/")]
    if len(members) != 1:
        listed = ", ".join(members[:10]) + (" …" if len(members) > 10 else "")
        raise DataFileError(
            f"{name}: a zip archive is read when it holds exactly one file; it holds "
            f"{len(members)} ({listed or 'none'}). Extract the one to read and pass it."
        )
    return members


def _open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise DataFileError(
            f"{path.name}: cannot be opened as a zip archive ({err}). Is the download "
            "complete? A file that is not a zip archive should not be named .zip."
        ) from err


def _open_binary(path: Path) -> io.BufferedIOBase:
    suffix = path.suffix.lower()
    if suffix == ".zip":
        archive = _open_zip(path)
        members = _zip_members(archive, path.name)
        member = archive.open(members[0])
        archive.close()  # the file stays open until the member is closed (shared handle)
        return member  # type: ignore[return-value]
    if suffix == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if suffix in _COMPRESSIONS:
        return pa.input_stream(str(path), compression=_COMPRESSIONS[suffix])  # type: ignore[return-value]
    return open(path, "rb")


_MAX_HEADER = 1 << 24  # 16 MiB: a header longer than that is not a registry's


def _header_line(fh: Any, name: str) -> bytes:
    """The whole first line (any length up to 16 MiB; LF, CRLF or CR-only endings)."""
    buf = b""
    while True:
        block = fh.read(1 << 16)
        buf += block
        cut = min((i for i in (buf.find(b"\n"), buf.find(b"\r")) if i >= 0), default=-1)
        if cut >= 0:
            return buf[:cut]
        if not block:
            return buf
        if len(buf) > _MAX_HEADER:
            raise DataFileError(
                f"{name}: the first line is longer than {_MAX_HEADER >> 20} MiB without a line "
                "end; a CSV header is expected. Is this a text CSV file?"
            )


class _CsvSource(_Source):
    def __init__(self, path: Path, sep: str | None, encoding: str):
        self.path = path
        self.name = path.name
        self.encoding = encoding
        try:
            with _open_binary(path) as fh:
                first = _header_line(fh, path.name)
        except (OSError, EOFError, zipfile.BadZipFile) as err:
            raise DataFileError(
                f"{path.name}: cannot be read ({err}). Is the file complete and really "
                f"{'compressed' if path.suffix.lower() in (*_COMPRESSIONS, '.zip') else 'text'}?"
            ) from err
        try:
            text = first.decode(encoding)
        except UnicodeDecodeError as err:
            raise DataFileError(
                f"{path.name}, line 1 (header): bytes that are not valid {encoding} "
                f"(position {err.start}). Pass the file's encoding, e.g. encoding='latin-1'."
            ) from err
        text = text.lstrip("\ufeff")
        if sep is None:
            counts = {s: text.count(s) for s in (",", ";", "\t", "|")}
            sep = max(counts, key=counts.get) if max(counts.values()) else ","
        self.sep = sep
        self.columns = next(csv.reader([text], delimiter=sep))
        if not text.strip():
            raise DataFileError(f"{path.name}: the first line is empty; a header is expected.")

    def _stream(self):
        if self.path.suffix.lower() == ".zip" or self.encoding.lower() not in (
            "utf-8",
            "utf8",
        ):
            return _open_binary(self.path)
        suffix = self.path.suffix.lower()
        if suffix in _COMPRESSIONS:
            return pa.input_stream(str(self.path), compression=_COMPRESSIONS[suffix])
        return pa.input_stream(str(self.path))

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        read = pacsv.ReadOptions(block_size=_BLOCK_SIZE, encoding=self.encoding)
        parse = pacsv.ParseOptions(delimiter=self.sep)
        convert = pacsv.ConvertOptions(
            include_columns=columns,
            column_types={c: pa.string() for c in columns},
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        )
        try:
            with self._stream() as stream:
                reader = pacsv.open_csv(
                    stream, read_options=read, parse_options=parse, convert_options=convert
                )
                for batch in reader:
                    yield batch.to_pandas()
        except (pa.ArrowInvalid, UnicodeDecodeError, OSError, EOFError) as err:
            raise self._error(err) from err

    def _error(self, err: Exception) -> DataFileError:
        where = _locate_csv_problem(self.path, self.sep, self.encoding)
        if where:
            return DataFileError(f"{self.name}: {where}")
        return DataFileError(
            f"{self.name}: cannot be read as a CSV file separated by {self.sep!r} "
            f"({err}). Check the file is complete and pass sep= and encoding= if needed."
        )


def _locate_csv_problem(path: Path, sep: str, encoding: str) -> str | None:
    """Find the first malformed line of a CSV file (slow path, only after an error)."""

    class _BadBytes(Exception):
        pass

    state = {"line": 0}

    def lines(handle) -> Iterator[str]:
        for raw in handle:
            state["line"] += 1
            try:
                yield raw.decode(encoding)
            except UnicodeDecodeError as err:
                raise _BadBytes(err) from err

    try:
        with _open_binary(path) as handle:
            reader = csv.reader(lines(handle), delimiter=sep)
            n_fields = None
            for record in reader:
                if not record:
                    continue
                if n_fields is None:
                    n_fields = len(record)
                    continue
                if len(record) != n_fields:
                    return (
                        f"line {reader.line_num}: expected {n_fields} fields separated by "
                        f"{sep!r} (as in the header), found {len(record)}. Fix or remove that "
                        "line (a stray separator or quote), or pass the right sep=."
                    )
    except _BadBytes as err:
        cause = err.__cause__
        pos = getattr(cause, "start", "?")
        return (
            f"line {state['line']}: bytes that are not valid {encoding} (at byte {pos} of the "
            "line). Pass the file's encoding, e.g. encoding='latin-1', or fix that line."
        )
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        return (
            f"line {state['line'] + 1}: the file ends or breaks there ({err}); it is "
            "probably truncated. Download or decompress it again."
        )
    except csv.Error as err:
        return f"line {state['line']}: {err}. Fix that line or pass the right sep=."
    return None


class _ParquetSource(_Source):
    def __init__(self, path: Path, chunksize: int):
        self.path = path
        self.name = path.name
        self.chunksize = chunksize
        try:
            self.file = pq.ParquetFile(path)
        except (pa.ArrowInvalid, OSError) as err:
            raise DataFileError(
                f"{path.name}: cannot be read as Parquet ({err}). Is the file complete? "
                "Write it again, e.g. with DataFrame.to_parquet()."
            ) from err
        self.columns = list(self.file.schema_arrow.names)
        metadata = self.file.schema_arrow.metadata or {}
        self.geo = b"geo" in metadata

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        try:
            for batch in self.file.iter_batches(batch_size=self.chunksize, columns=columns):
                table = pa.Table.from_batches([batch])
                yield table.to_pandas()
        except (pa.ArrowInvalid, OSError) as err:
            raise DataFileError(
                f"{self.name}: cannot be read as Parquet ({err}). Is the file complete?"
            ) from err


def _natural_key(path: Path) -> list[Any]:
    """``part.2`` before ``part.10``, as Dask numbers its partitions."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.as_posix())]


def open_part(part: Any, name: str, chunksize: int) -> _Source:
    """The source of one partition: a Parquet / GeoParquet file, or a (Geo)DataFrame."""
    if isinstance(part, pd.DataFrame):
        return _FrameSource(part, name, chunksize)
    parquet = _ParquetSource(Path(part), chunksize)
    if not parquet.geo:
        return parquet
    try:
        frame = gpd.read_parquet(part)
    except Exception as err:
        raise DataFileError(f"{parquet.name}: cannot be read as GeoParquet ({err}).") from err
    return _FrameSource(frame, parquet.name, chunksize)


class PartsSource(_Source):
    """A partitioned registry read as one source.

    A folder of Parquet or GeoParquet files (in natural name order, ``part.2`` before
    ``part.10``) or the partitions of a Dask frame. ``parts`` are the partitions (file paths,
    or the frame's delayed partitions), ``rows`` their numbers of rows: rows are numbered
    across partitions, in that order.
    """

    def __init__(self, source: Any, chunksize: int):
        self.chunksize = chunksize
        if is_dask_frame(source):
            self.name = f"Dask frame ({source.npartitions} partitions)"
            self.parts = list(source.to_delayed())
            self.names = [f"partition {i}" for i in range(len(self.parts))]
            self.rows = [int(n) for n in source.map_partitions(len).compute()]
            meta = source._meta
            first: _Source = _FrameSource(meta, self.name, chunksize)
        else:
            folder = Path(source)
            self.name = folder.name
            files = sorted(
                (p for p in folder.rglob("*") if p.is_file() and _is_parquet(p)), key=_natural_key
            )
            if not files:
                raise DataFileError(
                    f"{folder.name}: the folder holds no Parquet file (*.parquet, *.pq); a "
                    "partitioned registry is a folder of Parquet or GeoParquet files."
                )
            self.parts = [str(p) for p in files]
            self.names = [str(p.relative_to(folder)) for p in files]
            first = open_part(files[0], files[0].name, chunksize)
            self.rows = []
            for path in files:
                meta_rows, columns = _parquet_shape(path)
                if set(columns) - {"geometry"} != set(first.columns) - {"geometry"}:
                    raise DataFileError(
                        f"{folder.name}: {path.relative_to(folder)} has the columns "
                        f"{_short(columns)}, {files[0].relative_to(folder)} has "
                        f"{_short(first.columns)}; every file of a partitioned registry needs "
                        "the same columns."
                    )
                self.rows.append(meta_rows)
        self.columns = first.columns
        self.has_geometry = first.has_geometry
        self.geometry_crs = first.geometry_crs

    def chunks(self, columns: list[str]) -> Iterator[pd.DataFrame]:
        """The chunks of every partition, in order."""
        for part, name in zip(self.parts, self.names):
            if not isinstance(part, str):  # a delayed partition of a Dask frame
                part = part.compute()
            yield from open_part(part, name, self.chunksize).chunks(columns)


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in _PARQUET_SUFFIXES and not path.name.startswith(("_", "."))


def _parquet_shape(path: Path) -> tuple[int, list[str]]:
    try:
        file = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise DataFileError(
            f"{path.name}: cannot be read as Parquet ({err}). Is the file complete?"
        ) from err
    return file.metadata.num_rows, list(file.schema_arrow.names)


def _short(columns: list[str]) -> str:
    return ", ".join(columns[:8]) + (" …" if len(columns) > 8 else "")


def _open_source(
    source: Any, sep: str | None, encoding: str, chunksize: int
) -> tuple[_Source, str]:
    """Return (source reader, kind) for a path, a folder of Parquet files or a frame."""
    if isinstance(source, pd.DataFrame):
        return _FrameSource(source, "DataFrame", chunksize), "frame"
    if is_dask_frame(source):
        return PartsSource(source, chunksize), "partitioned"
    if not isinstance(source, (str, Path)):
        raise TypeError(
            "'source' needs to be a file path, a folder of Parquet files or a (Geo)DataFrame "
            f"(pandas or Dask); got {type(source).__name__}."
        )
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"Registry file {str(path)!r} does not exist. Check the path (relative paths "
            "are relative to the current directory)."
        )
    if path.is_dir():
        return PartsSource(path, chunksize), "partitioned"
    problem = mismatch(path, encoding)
    if problem:
        raise DataFileError(problem)
    suffixes = [s.lower() for s in path.suffixes]
    last = suffixes[-1] if suffixes else ""
    inner = suffixes[-2] if len(suffixes) > 1 else ""
    if last in _CSV_SUFFIXES or (last in (*_COMPRESSIONS, ".zip") and inner in _CSV_SUFFIXES):
        return _CsvSource(path, sep, encoding), "csv"
    if last == ".zip" and not inner:
        with _open_zip(path) as archive:
            names = _zip_members(archive, path.name)
        if Path(names[0]).suffix.lower() in _CSV_SUFFIXES:
            return _CsvSource(path, sep, encoding), "csv"
    if last in _PARQUET_SUFFIXES:
        parquet = _ParquetSource(path, chunksize)
        if not parquet.geo:
            return parquet, "parquet"
        try:
            frame = gpd.read_parquet(path)
        except Exception as err:
            raise DataFileError(f"{path.name}: cannot be read as GeoParquet ({err}).") from err
        return _FrameSource(frame, path.name, chunksize), "geoparquet"
    import pyogrio

    try:
        frame = pyogrio.read_dataframe(path)
    except Exception as err:
        raise DataFileError(
            f"{path.name}: cannot be read (not CSV or Parquet by its name, and GDAL says: "
            f"{err}). Give a .csv, .csv.gz, .parquet or .gpkg file, or read it yourself "
            "and pass the DataFrame."
        ) from err
    return _FrameSource(frame, path.name, chunksize), "gdal"
