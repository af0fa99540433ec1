"""Make folium maps and HTML reports work without internet.

folium loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs: a saved map opened
offline is a blank page. Reports instead embed Leaflet 1.9.4 (JS and CSS, with its images as
``data:`` URIs) read from the installed ``django-js-lib-leaflet`` package, and drop the other
libraries, which clustermap's maps do not use (popups, tooltips, legend, full-screen control
and marker clustering are small own scripts in :mod:`clustermap.maps`).

Also here: JSON that is safe inside ``<script>`` and the Content-Security-Policy that lists
the hash of every inline script of a finished page, so that no other script can run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from typing import Any

_LEAFLET_PACKAGE = "js_lib_leaflet"
_LEAFLET_DIR = ("static", "js_lib_leaflet")


def script_json(obj: Any) -> str:
    """JSON text safe inside an HTML ``<script>`` element.

    ``<``, ``>``, ``&`` and the JS line separators are written as ``\\u`` escapes, so text
    from the registry can never close the script element or open a comment.
    """
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _read_leaflet(*parts: str, binary: bool = False) -> str | bytes:
    try:
        base = resources.files(_LEAFLET_PACKAGE).joinpath(*_LEAFLET_DIR)
        path = base.joinpath(*parts)
        return path.read_bytes() if binary else path.read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError) as err:  # pragma: no cover - dependency
        raise ImportError(
            "Offline HTML reports embed Leaflet from the 'django-js-lib-leaflet' package, "
            "which is missing or incomplete. Install it with "
            "`pip install django-js-lib-leaflet` (it is a dependency of clustermap)."
        ) from err


@lru_cache(maxsize=1)
def leaflet_assets() -> tuple[str, str]:
    """(css, js) of Leaflet 1.9.4, images inlined, source-map comments removed."""
    css = str(_read_leaflet("leaflet.css"))

    def _inline(match: re.Match[str]) -> str:
        data = _read_leaflet("images", match.group(1), binary=True)
        assert isinstance(data, bytes)
        return "url(data:image/png;base64," + base64.b64encode(data).decode("ascii") + ")"

    css = re.sub(r"url\(images/([\w.-]+\.png)\)", _inline, css)
    js = str(_read_leaflet("leaflet.js"))
    js = re.sub(r"//# sourceMappingURL=\S+", "", js)
    # a literal "</script" inside the library would end the inline element early
    js = js.replace("</script", "<\\/script")
    return css, js


def make_offline(m: Any) -> Any:
    """Replace the CDN links of folium map ``m`` by inline Leaflet; return ``m``.

    jQuery, Bootstrap and the awesome-markers assets are dropped: clustermap's layers do
    not use them. Call it before the map is rendered.
    """
    from branca.element import Element

    m.default_js = []
    m.default_css = []
    css, js = leaflet_assets()
    fig = m.get_root()
    fig.header.add_child(
        Element(f"<style>{css}</style>\n<script>{js}</script>"), name="cm_leaflet_inline"
    )
    return m


_SCRIPT_RE = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: str) -> list[str]:
    """``'sha256-...'`` CSP source for every inline ``<script>`` element of ``html``."""
    out = []
    for body in _SCRIPT_RE.findall(html):
        digest = hashlib.sha256(body.encode("utf-8")).digest()
        out.append("'sha256-" + base64.b64encode(digest).decode("ascii") + "'")
    return list(dict.fromkeys(out))


CSP_PLACEHOLDER = "<!--cm-csp-->"


def add_csp(html: str) -> str:
    """Fill the CSP placeholder with a policy allowing only this page's own scripts.

    Scripts: only the inline scripts present now (by hash): no script from elsewhere, no
    inline event handler (``onerror=``) and no injected ``<script>`` can run. Images: the
    page itself, ``data:`` URIs and https tiles. No network requests from scripts.
    """
    hashes = " ".join(inline_script_hashes(html))
    policy = (
        "default-src 'none'; "
        f"script-src {hashes}; "
        "style-src 'unsafe-inline'; "
        "img-src data: https:; "
        "font-src data:; "
        "connect-src 'none'; "
        "base-uri 'none'; "
        "form-action 'none'"
    )
    meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
    return html.replace(CSP_PLACEHOLDER, meta, 1)
