"""Where numba keeps the compiled kernels, and what to do when it cannot write anywhere.

The kernels are compiled with ``cache=True``: the first call compiles them, later processes
load them from disk. numba writes its cache next to the source (``__pycache__``) or, when
the package folder is read-only (a system or container install), in the user's cache
folder. When neither is writable (read-only ``HOME``, no ``HOME``), numba refuses to
decorate a cached function at all (``RuntimeError: cannot cache function ...: no locator
available``). :data:`CACHE` is decided once, at import of the kernel modules:

1. numba finds a writable place by itself (or ``NUMBA_CACHE_DIR`` is set): ``True``;
2. otherwise clustermap points numba at ``$XDG_CACHE_HOME/clustermap/numba`` (or
   ``~/.cache/clustermap/numba``), then at a private folder in the temporary directory,
   with one :class:`~clustermap.errors.ClustermapWarning`: ``True``;
3. otherwise the kernels are compiled in memory for this process only, with one warning:
   ``False``.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from pathlib import Path

import numba
from numba.core import caching

from ..errors import ClustermapWarning

_HERE = str(Path(__file__).parent.parent / "stats" / "_kernels.py")


def _probe() -> None:  # pragma: no cover - never called, only located
    pass


def _numba_finds_a_place(py_file: str) -> bool:
    impl = getattr(caching, "CacheImpl", None) or getattr(caching, "_CacheImpl", None)
    classes = getattr(impl, "_locator_classes", None)
    if not classes or getattr(numba.config, "CACHE_LOCATOR_CLASSES", None):
        # an unknown numba layout, or locators chosen by the user: let numba decide
        return True
    for cls in classes:
        try:
            locator = cls.from_function(_probe, py_file)
        except Exception:
            continue
        if locator is None:
            continue
        try:
            locator.ensure_cache_path()
        except OSError:
            continue
        return True
    return False


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError:
        return False
    return True


def _fallback_folders() -> list[Path]:
    out = []
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        out.append(Path(xdg) / "clustermap" / "numba")
    home = os.environ.get("HOME")
    if home:
        out.append(Path(home) / ".cache" / "clustermap" / "numba")
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    with contextlib.suppress(OSError):  # OSError: no usable temporary folder at all
        out.append(Path(tempfile.gettempdir()) / f"clustermap-numba-{uid}")
    return out


def _decide(py_file: str = _HERE) -> bool:
    if _numba_finds_a_place(py_file):
        return True
    for folder in _fallback_folders():
        if _writable(folder):
            numba.config.CACHE_DIR = str(folder)
            warnings.warn(
                "numba cannot write its cache beside clustermap nor in the user cache folder; "
                f"compiled kernels are cached in {str(folder)!r} instead (set NUMBA_CACHE_DIR "
                "to choose the folder).",
                ClustermapWarning,
                stacklevel=3,
            )
            return True
    warnings.warn(
        "No writable folder for numba's cache (package folder, HOME and the temporary folder "
        "are read-only): clustermap's kernels are compiled for this process only, so every "
        "new process compiles them again. Set NUMBA_CACHE_DIR to a writable folder.",
        ClustermapWarning,
        stacklevel=3,
    )
    return False


CACHE: bool = _decide()
