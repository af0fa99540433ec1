"""Text from input files made safe to *show*: on a terminal, in a page, in a map.

Escaping (HTML, JSON) keeps registry text from being interpreted; this module keeps it from
misleading the reader: control characters (terminal escape sequences, bells, NUL) become
spaces, Unicode bidirectional controls (which can reorder what is shown, "Trojan Source")
are removed, and very long values are cut for display with an ellipsis. The data
themselves (tables, exports) are left untouched.
"""

from __future__ import annotations

import re
from typing import Any

#: Longest text shown for one value (names, labels, places) before it is cut with "…".
MAX_DISPLAY = 300

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_BIDI = re.compile(r"[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def display_text(value: Any, max_len: int = MAX_DISPLAY) -> str:
    r"""``value`` as text safe to show: no control or bidi characters, at most ``max_len``.

    >>> display_text("Bar\x1b[31m rouge\u202e")
    'Bar [31m rouge'
    >>> display_text("x" * 500)[-3:], len(display_text("x" * 500))
    ('xx…', 300)
    """
    text = _BIDI.sub("", _CONTROL.sub(" ", str(value)))
    if len(text) > max_len:
        text = text[: max_len - 1] + "…"
    return text


def display_json(obj: Any, max_len: int = MAX_DISPLAY) -> Any:
    r"""Every string inside ``obj`` (dicts, lists, tuples) passed through :func:`display_text`.

    >>> display_json({"t": "a\u202eb", "n": [1, "c\x07"]})
    {'t': 'ab', 'n': [1, 'c ']}
    """
    if isinstance(obj, str):
        return display_text(obj, max_len)
    if isinstance(obj, dict):
        return {k: display_json(v, max_len) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        if all(type(v) in (int, float) for v in obj):  # coordinates: nothing to show
            return obj
        return [display_json(v, max_len) for v in obj]
    return obj


def format_ids(ids: Any, limit: int = 5) -> str:
    """``'a', 'b', ... (12 in all)``: the first ids of a list, for error messages."""
    ids = list(ids)
    shown = ", ".join(repr(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")
