"""Reading a partitioned registry on a Dask cluster, one task per partition.

Each worker validates its partitions with the code of :func:`clustermap.read_registry`,
numbering the rows from the partition's offset in the whole source (file sizes come from
the Parquet footers), and keeps the rows it kept. Only what concerns the whole source comes
back: the rejects and repairs, one 8-byte hash of each row's id (duplicated ids are a
property of the whole source: the first row wins, whichever partition holds it), the
projections used and the size-band counts. The kept rows that duplicate an earlier id are
then dropped where they are, and the establishments stay on the workers as a
``dask_geopandas.GeoDataFrame``: the reject report equals the single-machine one, row for
row.
"""

from __future__ import annotations

import operator
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd
from pyproj import CRS

from ..core.distributed import captured, replay
from ..core.schema import ESTABLISHMENT_ID
from ..errors import DataFileError
from .registry import (
    Registry,
    band_counts,
    duplicated_rows,
    finish_frame,
    output_crs_of,
    registry_notes,
    repeated_hashes,
    sorted_rows,
)
from .sources import PartsSource, open_part
from .validate import _concat, _Context, validate_chunks


def _validate_part(part, name, offset, columns, ctx, chunksize) -> tuple[pd.DataFrame, dict]:
    """One partition, on a worker: its kept rows (they stay there) and its report."""

    def run() -> tuple[pd.DataFrame, dict]:
        chunks = open_part(part, name, chunksize).chunks(columns)
        kept, rejects, repairs, hashes, n = validate_chunks(chunks, offset, ctx)
        kept = pd.concat(kept, ignore_index=True) if kept else pd.DataFrame()
        epsg = np.unique(kept["_epsg"]) if "_epsg" in kept else np.array([], dtype=np.int64)
        report = {
            "rejects": _concat(rejects),
            "repairs": _concat(repairs),
            "hash": np.concatenate(hashes) if hashes else np.array([], dtype=np.uint64),
            "epsg": epsg,
            "bands": band_counts(kept, ctx),
            "n_rows": n,
            "n_kept": len(kept),
        }
        return kept, report

    (kept, report), caught = captured(run)
    report["warnings"] = caught
    return kept, report


def _rows_at(kept: pd.DataFrame, positions: np.ndarray) -> pd.DataFrame:
    """The kept rows of a partition at the given source positions (``_pos`` and id only)."""
    if not len(kept):
        return pd.DataFrame({"_pos": np.array([], dtype=np.int64), ESTABLISHMENT_ID: []})
    return kept.loc[np.isin(kept["_pos"].to_numpy(), positions), ["_pos", ESTABLISHMENT_ID]]


def _finish_part(kept: pd.DataFrame, drop: np.ndarray, ctx: _Context, crs: Any, start: int):
    """The establishments of one partition, indexed from ``start`` as in the single read."""
    if len(kept) and drop.size:
        kept = kept.loc[~np.isin(kept["_pos"].to_numpy(), drop)]
    frame = finish_frame(kept, ctx, crs)
    frame.index = pd.RangeIndex(start, start + len(frame))
    return frame


def read_partitioned(
    reader: PartsSource, columns: list[str], ctx: _Context, client: Any, *, output_crs: Any
) -> Registry:
    """:func:`clustermap.read_registry` of a partitioned source on ``client``'s workers."""
    import dask.dataframe as dd
    import dask_geopandas  # noqa: F401 - registers the GeoDataFrame collection

    offsets = np.concatenate([[0], np.cumsum(reader.rows)[:-1]]).astype(np.int64)
    ends = offsets + np.asarray(reader.rows, dtype=np.int64)
    parts = [p if isinstance(p, str) else client.compute(p) for p in reader.parts]
    checked = [
        client.submit(
            _validate_part, part, name, int(off), columns, ctx, reader.chunksize, pure=False
        )
        for part, name, off in zip(parts, reader.names, offsets)
    ]
    kept = [client.submit(operator.itemgetter(0), f, pure=False) for f in checked]
    reports = client.gather([client.submit(operator.itemgetter(1), f) for f in checked])
    del checked, parts
    replay([r["warnings"] for r in reports], stacklevel=3)
    for report, name, expected in zip(reports, reader.names, reader.rows):
        if report["n_rows"] != expected:  # the footer and the data disagree
            raise DataFileError(
                f"{name}: {report['n_rows']:,} rows read, the Parquet footer announces "
                f"{expected:,}. Is the file complete? Write it again."
            )

    candidates = repeated_hashes([r.pop("hash") for r in reports])
    rows = [_rows_at(pd.DataFrame(), candidates)]
    if candidates.size and "id" in ctx.spec:  # the kept rows among them, from their workers
        for k, a, b in zip(kept, offsets, ends):
            here = candidates[(candidates >= a) & (candidates < b)]
            if here.size:
                rows.append(client.submit(_rows_at, k, here))
        rows = [r if isinstance(r, pd.DataFrame) else r.result() for r in rows]
    drop, rejects, repairs = duplicated_rows(
        pd.concat(rows, ignore_index=True),
        _concat([r["rejects"] for r in reports]),
        _concat([r["repairs"] for r in reports]),
        candidates,
        ctx,
    )
    codes = np.unique(np.concatenate([r["epsg"] for r in reports]))
    crs = output_crs_of(ctx, codes, output_crs)
    counts: dict[str, Counter] = {"status": Counter(), "unknown": Counter()}
    for report in reports:
        for key in counts:
            counts[key].update(report["bands"][key])
    notes = registry_notes({k: dict(v) for k, v in counts.items()}, ctx, reader.name)

    # the kept rows of each partition, less its duplicates, indexed as in the single read
    drops = [drop[(drop >= a) & (drop < b)] for a, b in zip(offsets, ends)]
    sizes = [r["n_kept"] - d.size for r, d in zip(reports, drops)]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    finished = [
        client.submit(_finish_part, k, d, ctx, crs, int(s), pure=False)
        for k, d, s in zip(kept, drops, starts)
    ]
    # the columns and dtypes of the partitions, from one that kept rows
    meta = client.submit(lambda frame: frame.iloc[:0], finished[int(np.argmax(sizes))]).result()
    establishments = client.persist(dd.from_delayed(finished, meta=meta, verify_meta=False))
    return Registry(
        establishments=establishments,
        rejects=sorted_rows(rejects),
        repairs=sorted_rows(repairs),
        source=reader.name,
        crs=CRS.from_user_input(crs) if crs is not None else None,  # type: ignore[arg-type]
        nomenclature=ctx.nomenclature,
        employee_rule=ctx.employee_rule,
        n_rows=int(sum(reader.rows)),
        format=ctx.fmt,
        notes={**notes, "partitions": len(reader.parts)},
    )
