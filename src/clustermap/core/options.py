"""Option objects: settings validated once, frozen, and stored with the results.

Public functions keep their everyday arguments in their signature and group the rest in a
small frozen dataclass (as geopandas groups ``*_kwds``). :func:`take_legacy` lets the old
spellings of a moved or renamed argument keep working for one release, with a
:class:`FutureWarning` that names the new spelling.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from ..errors import SchemaError

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["as_options", "keyword_only", "resolve_seed", "take_legacy"]


def as_options(cls: type, value: Any, name: str, moved: Mapping[str, Any] | None = None) -> Any:
    """``value`` as an instance of the frozen dataclass ``cls`` (None: the defaults).

    A mapping is accepted as keyword arguments; unknown keys raise a :class:`TypeError`
    naming the valid ones. ``moved`` (fields given through the old keywords, see
    :func:`take_legacy`) replace the corresponding fields.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> @dataclass(frozen=True)
    ... class Opts:
    ...     k: int = 3
    >>> as_options(Opts, {"k": 5}, "options"), as_options(Opts, None, "options")
    (Opts(k=5), Opts(k=3))
    """
    out = _as_instance(cls, value, name)
    return dataclasses.replace(out, **moved) if moved else out


def _as_instance(cls: type, value: Any, name: str) -> Any:
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


def keyword_only(n_data: int, old_order: Sequence[str]) -> Callable[[F], F]:
    """Make the arguments after the first ``n_data`` keyword-only, softly.

    For one release, a call that still passes them by position works: they are bound in
    their former order ``old_order`` and a :class:`FutureWarning` names each one, so a
    positional slip (``local_getis_ord(y, g, 99)`` setting ``star=99``) is visible.

    Examples
    --------
    >>> import warnings
    >>> @keyword_only(1, ["k"])
    ... def f(x, *, k=2):
    ...     return x * k
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     f(3, 5)
    15
    >>> print(w[0].message)
    f(): pass k=5 by keyword; positional arguments after the first 1 go in the next release.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > n_data:
                extra = args[n_data:]
                if len(extra) > len(old_order):
                    raise TypeError(
                        f"{func.__name__}() takes {n_data + len(old_order)} positional "
                        f"arguments at most but {len(args)} were given"
                    )
                shown = []
                for name, value in zip(old_order, extra):
                    if name in kwargs:
                        raise TypeError(f"{func.__name__}() got multiple values for {name!r}")
                    kwargs[name] = value
                    shown.append(f"{name}={value!r}")
                warnings.warn(
                    f"{func.__name__}(): pass {', '.join(shown)} by keyword; positional "
                    f"arguments after the first {n_data} go in the next release.",
                    FutureWarning,
                    stacklevel=2,
                )
                args = args[:n_data]
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def resolve_seed(random_state: Any) -> int:
    """The integer seed a run uses: ``random_state`` itself, or one drawn for ``None``.

    Results store this seed, so a run made with ``random_state=None`` can be reproduced.
    A NumPy Generator or RandomState gives one draw of it.

    Examples
    --------
    >>> resolve_seed(7), 0 <= resolve_seed(None) < 2**63
    (7, True)
    """
    if random_state is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise SchemaError(f"random_state must be a non-negative integer; got {random_state}.")
        return int(random_state)
    raise SchemaError(
        "random_state must be None, a non-negative int or a numpy Generator; got "
        f"{type(random_state).__name__}."
    )
