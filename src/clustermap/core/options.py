"""Option objects: settings validated once, frozen, and stored with the results.

Public functions keep their everyday arguments in their signature and group the rest in a
small frozen dataclass (as geopandas groups ``*_kwds``). :func:`take_legacy` lets the old
spellings of a moved or renamed argument keep working for one release, with a
:class:`FutureWarning` that names the new spelling.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

__all__ = ["as_options", "take_legacy"]


def as_options(cls: type, value: Any, name: str) -> Any:
    """``value`` as an instance of the frozen dataclass ``cls`` (None: the defaults).

    A mapping is accepted as keyword arguments; unknown keys raise a :class:`TypeError`
    naming the valid ones.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     k: int = 3
    >>> as_options(Opts, {"k": 5}, "options"), as_options(Opts, None, "options")
    (Opts(k=5), Opts(k=3))
    """
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(value) - fields)
        if unknown:
            raise TypeError(
                f"{name}: unknown option(s) {unknown}; the options of {cls.__name__} are "
                f"{sorted(fields)}."
            )
        return cls(**value)
    raise TypeError(
        f"{name} must be a {cls.__name__} or a dict of its fields; got {type(value).__name__}."
    )


def take_legacy(
    func: str,
    legacy: dict[str, Any],
    moved: Mapping[str, str],
    *,
    stacklevel: int = 3,
) -> dict[str, dict[str, Any]]:
    """Sort the old keyword arguments of ``func`` into their new groups, with a FutureWarning.

    Parameters
    ----------
    func : str
        Name of the public function, for the messages.
    legacy : dict
        The ``**legacy`` keyword arguments the function received.
    moved : mapping
        Old keyword -> ``"group.field"`` (the new place: ``"columns.x"``,
        ``"options.swapped"``) or ``"name"`` for a plain rename.

    Returns
    -------
    dict
        Group -> {field: value}; plain renames are under the group ``""``.

    Raises
    ------
    TypeError
        For a keyword that never existed (as Python does for an unknown keyword).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     take_legacy("f", {"tiles": None}, {"tiles": "map_options.tiles"})
    {'map_options': {'tiles': None}}
    >>> print(w[0].message)
    f(tiles=...) is now f(map_options={'tiles': ...}); the old spelling goes in the next release.
    """
    out: dict[str, dict[str, Any]] = {}
    for key, value in legacy.items():
        if key not in moved:
            raise TypeError(f"{func}() got an unexpected keyword argument {key!r}")
        group, _, field = moved[key].rpartition(".")
        new = f"{group}={{{field!r}: ...}}" if group else f"{field}=..."
        warnings.warn(
            f"{func}({key}=...) is now {func}({new}); the old spelling goes in the next release.",
            FutureWarning,
            stacklevel=stacklevel,
        )
        out.setdefault(group, {})[field] = value
    return out
