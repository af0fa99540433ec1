"""Progress bars for the long steps (tqdm), on stderr, silent when asked or not interactive.

``set_progress(False)`` (or ``CLUSTERMAP_PROGRESS=0``, or ``clustermap ... --quiet``) silences
them; ``set_progress(True)`` forces them; by default (``None``) they show in a terminal and
in Jupyter, and never where stderr is a file or a pipe (doctests, CI logs).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

__all__ = ["bar", "progress_enabled", "progress_setting", "set_progress"]

_STATE: dict[str, bool | None] = {"enabled": None}


def set_progress(enabled: bool | None) -> None:
    """Show (True), hide (False) or decide automatically (None) the progress bars.

    Examples
    --------
    >>> set_progress(False); progress_enabled()
    False
    >>> set_progress(None)
    """
    if enabled is not None and not isinstance(enabled, bool):
        raise ValueError(f"set_progress takes True, False or None; got {enabled!r}.")
    _STATE["enabled"] = enabled


def progress_setting() -> bool | None:
    """The value last given to :func:`set_progress` (None: automatic)."""
    return _STATE["enabled"]


def progress_enabled() -> bool:
    """Whether progress bars are shown now (see the module documentation)."""
    if _STATE["enabled"] is not None:
        return bool(_STATE["enabled"])
    env = os.environ.get("CLUSTERMAP_PROGRESS")
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "off", "")
    if "ipykernel" in sys.modules:  # a notebook: tqdm draws a widget or text
        return True
    stream = sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def bar(
    iterable: Iterable[Any] | None = None,
    *,
    total: int | None = None,
    desc: str = "",
    unit: str = "it",
) -> Any:
    """A tqdm bar on stderr (a silent one when progress is off); use as tqdm.

    Examples
    --------
    >>> set_progress(False)
    >>> sum(bar(range(3), desc="counting"))
    3
    >>> set_progress(None)
    """
    from tqdm.auto import tqdm

    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        disable=not progress_enabled(),
        file=sys.stderr,
        leave=False,
        mininterval=0.5,
        dynamic_ncols=True,
    )
