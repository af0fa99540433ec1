"""Make folium maps and HTML reports work without internet.

folium loads Leaflet, jQuery, Bootstrap and Font Awesome from CDNs: a saved map opened
offline is a blank page. Reports instead embed Leaflet 1.9.4 (JS and CSS, with its images as
``data:`` URIs) read from the installed ``django-js-lib-leaflet`` package, and drop the other
libraries, which clustermap's maps do not use (popups, tooltips, legend, full-screen control
and marker clustering are small own scripts in :mod:`clustermap.maps`).

Also here: JSON that is safe inside ``<script>``, :class:`RawElement` (text placed in a page
verbatim, never parsed as a template) and the Content-Security-Policy that lists the hashes
of the scripts clustermap itself writes, so that no other script can run.

Why raw elements: branca renders every element through Jinja2, and its ``MacroElement``
wraps each rendered piece in a *new* template that is parsed again. Text from a registry
that reached such a piece (``{{ ... }}``) would be evaluated as code. clustermap therefore
puts its scripts and data into pages through :class:`RawElement` only, and the few strings
that must go through folium's own elements (layer names) through :func:`inert_html`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources
from typing import Any

from branca.element import Element

_LEAFLET_PACKAGE = "js_lib_leaflet"


class RawElement(Element):
    """A branca element whose text is written to the page as it is, never as a template.

    >>> from branca.element import Figure
    >>> fig = Figure()
    >>> _ = fig.header.add_child(RawElement("<b>{{ 7*7 }}</b>"))
    >>> "<b>{{ 7*7 }}</b>" in fig.render()
    True
    """

    def __init__(self, text: str) -> None:
        super().__init__()
        self._name = "RawElement"
        self.text = str(text)

    def render(self, **kwargs: Any) -> str:
        """The text as given, never parsed as a template."""
        return self.text


def inert_html(text: Any) -> str:
    """Text escaped for HTML *and* inert in a Jinja2 template (``{`` and ``}`` as entities).

    For the strings that must pass through folium's own templates (layer names, which
    Leaflet's layer control shows as HTML).

    >>> inert_html("Bar {{7*7}} <b>")
    'Bar &#123;&#123;7*7&#125;&#125; &lt;b&gt;'
    """
    import html

    return html.escape(str(text)).replace("{", "&#123;").replace("}", "&#125;")


_LEAFLET_DIR = ("static", "js_lib_leaflet")


def script_json(obj: Any) -> str:
    r"""JSON text safe inside an HTML ``<script>`` element.

    ``<``, ``>``, ``&`` and the JS line separators are written as ``\u`` escapes, so text
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
    m.default_js = []
    m.default_css = []
    css, js = leaflet_assets()
    fig = m.get_root()
    fig.header.add_child(
        RawElement(f"<style>{css}</style>\n<script>{js}</script>"), name="cm_leaflet_inline"
    )
    return m


SCRIPT_RE = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def inline_script_hashes(html: str) -> list[str]:
    """``'sha256-...'`` CSP source for every inline ``<script>`` element of ``html``.

    Use it on fragments that clustermap writes itself (a map's header), never on a page
    that holds registry text.
    """
    return script_hashes(SCRIPT_RE.findall(html))


def script_hashes(bodies: Iterable[str]) -> list[str]:
    """``'sha256-...'`` CSP source of each script body, duplicates removed."""
    out = []
    for body in bodies:
        digest = hashlib.sha256(body.encode("utf-8")).digest()
        out.append("'sha256-" + base64.b64encode(digest).decode("ascii") + "'")
    return list(dict.fromkeys(out))


CSP_PLACEHOLDER = "<!--cm-csp-->"


def csp_meta(scripts: Iterable[str]) -> str:
    """The ``<meta>`` element of a policy allowing only the given inline script bodies.

    Scripts: only those bodies (by hash): no script from elsewhere, no inline event handler
    (``onerror=``) and no ``<script>`` that ever got into the page through data can run.
    Images: the page itself, ``data:`` URIs and https tiles. No network requests from
    scripts.
    """
    hashes = " ".join(script_hashes(scripts))
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
    return f'<meta http-equiv="Content-Security-Policy" content="{policy}">'


def add_csp(html: str, scripts: Iterable[str]) -> str:
    """Fill the CSP placeholder of ``html`` with :func:`csp_meta` of ``scripts``.

    ``scripts`` are the bodies of the inline scripts the caller wrote itself; the finished
    page is never scanned for scripts, so one that got in with data stays blocked.
    """
    return html.replace(CSP_PLACEHOLDER, csp_meta(scripts), 1)


class _CSPMeta(RawElement):
    """First header element of an offline folium map: the policy of its own scripts."""

    def __init__(self) -> None:
        super().__init__("")
        self._name = "cm_csp"

    def render(self, **kwargs: Any) -> str:
        fig = self.get_root()
        scripts: list[str] = []
        for child in fig.header._children.values():
            if child is not self:
                scripts.extend(SCRIPT_RE.findall(child.render(**kwargs)))
        # Figure's template: "<script>\n    {{ script }}\n</script>"
        scripts.append("\n    " + fig.script.render(**kwargs) + "\n")
        return csp_meta(scripts)


def protect_map(m: Any) -> Any:
    """Give offline folium map ``m`` the report's Content-Security-Policy; return ``m``.

    The policy is computed when the map is rendered, from the map's own header scripts and
    its script section (where registry text travels only as JSON).
    """
    fig = m.get_root()
    if "cm_csp" not in fig.header._children:
        fig.header.add_child(_CSPMeta(), name="cm_csp")
        fig.header._children.move_to_end("cm_csp", last=False)
    return m
