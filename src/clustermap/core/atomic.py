"""Atomic file writes: a unique temporary file in the target folder, then one rename.

Readers never see a half-written file, concurrent writers of one path never share a
temporary file (the last rename wins, each file complete), and an interrupted write
(an exception, Ctrl-C) leaves no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a fresh temporary path beside ``path``; move it onto ``path`` on success.

    The temporary name keeps ``path``'s suffix (writers that pick a format by extension
    still work) and is not created: the writer creates it. On any exception, including
    ``KeyboardInterrupt``, the temporary file is removed and the target is left as it was.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('done', ['out.txt'])
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{secrets.token_hex(6)}.tmp{path.suffix}")
    try:
        yield tmp
        if tmp.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; return the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: Any) -> Any:
    """Copy of ``frame`` whose text cells cannot run as spreadsheet formulas.

    A text cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    (and is not a number) gets a leading apostrophe, the OWASP advice for CSV files that
    spreadsheets open.

    >>> import pandas as pd
    >>> neutralise_formulas(pd.DataFrame({"n": ["=1+1", "-3.5", "Bar", "@SUM(A1)"]}))["n"].tolist()
    ["'=1+1", '-3.5', 'Bar', "'@SUM(A1)"]
    """
    import pandas as pd

    out = frame.copy()
    for col in out.columns:
        if out[col].dtype == object or pd.api.types.is_string_dtype(out[col].dtype):
            out[col] = out[col].map(_neutralise_cell)
    return out


def _neutralise_cell(value: Any) -> Any:
    if not isinstance(value, str) or not value.startswith(_FORMULA_START):
        return value
    try:
        float(value)
    except ValueError:
        return "'" + value
    return value
