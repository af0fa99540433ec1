"""Interactive Folium maps of clusters, location quotients, local statistics and establishments.

Each function returns a :class:`folium.Map` and takes ``m=`` to add its layers to an
existing map, the way :meth:`geopandas.GeoDataFrame.explore` works. Labels are French by
default (``lang="en"`` for English) and numbers are written for French readers
(``1 234``, ``2,5``).

Everything drawn comes from the documented columns of
:class:`clustermap.ClusterResult` (``clusters``, ``table``, ``units``,
``establishments``); this module imports no statistics code.

Safety: registry text (names, labels, codes) reaches the page only as JSON inside
``<script>`` (``<``, ``>`` and ``&`` written as JSON unicode escapes) and is put into the page
with ``textContent`` by small own scripts, never as HTML, and never through a template
engine (folium and branca render with Jinja2; clustermap's scripts and data are placed as
raw text). Layer names, which Leaflet's layer control shows as HTML and folium's templates
handle, are escaped for both. Offline maps (the default) carry the report's
Content-Security-Policy: only the map's own scripts run.

Geometry is reprojected to WGS84, simplified as a coverage
(:func:`shapely.coverage_simplify`, so neighbouring units keep sharing their edges) and
rounded to 5 decimals (about 1 m).
"""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import shapely

from ..core.display import display_json, display_text
from ..core.options import as_options, take_legacy
from ..core.schema import (
    CLUSTER_ID,
    COMMUNE,
    EMPLOYEES,
    ESTABLISHMENTS,
    LABEL,
    LQ,
    LQ_HIGH,
    LQ_LOW,
    NAME,
    P_VALUE,
    QUADRANT,
    SECTOR,
    STATISTIC,
    UNIT_ID,
    UNIT_NAME,
)
from ..errors import ClustermapWarning, CRSError, SchemaError
from ..stats.inference import adjust_pvalues, check_correction
from . import i18n
from .card import (
    Extras,
    Largest,
    _sector_match,
    _val,
    cluster_card,
    cluster_tooltip,
    units_with_data,
)
from .offline import RawElement, inert_html, make_offline, protect_map, script_json

if TYPE_CHECKING:  # pragma: no cover
    import folium
    import geopandas as gpd

__all__ = [
    "MapOptions",
    "explore_clusters",
    "explore_establishments",
    "explore_local",
    "explore_lq",
]

#: Categorical palette for sectors (ColorBrewer Set1/Dark2/Paired, readable on a light map).
PALETTE = (
    "#e41a1c",
    "#377eb8",
    "#4daf4a",
    "#984ea3",
    "#ff7f00",
    "#a65628",
    "#f781bf",
    "#1b9e77",
    "#d95f02",
    "#7570b3",
    "#e7298a",
    "#66a61e",
    "#e6ab02",
    "#1f78b4",
    "#33a02c",
    "#fb9a99",
    "#b15928",
    "#6a3d9a",
    "#999933",
    "#17becf",
)

#: Fixed colours of local-statistic categories (those of esda's ``Moran_Local.explore``).
LOCAL_COLORS = {
    "HH": "#d7191c",
    "LH": "#abd9e9",
    "LL": "#2c7bb6",
    "HL": "#fdae61",
    "hot": "#d7191c",
    "cold": "#2c7bb6",
    "ns": "#d3d3d3",
}

_LQ_BREAKS = (0.5, 0.8, 1.25, 2.0, 4.0)
_LQ_COLORS = ("#2c7bb6", "#abd9e9", "#f7f7f7", "#fdd49e", "#fc8d59", "#d7301f")
_SEQ_COLORS = {
    3: ("#fee8c8", "#fdbb84", "#e34a33"),
    4: ("#fef0d9", "#fdcc8a", "#fc8d59", "#d7301f"),
    5: ("#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"),
    6: ("#fef0d9", "#fdd49e", "#fdbb84", "#fc8d59", "#e34a33", "#b30000"),
    7: ("#fef0d9", "#fdd49e", "#fdbb84", "#fc8d59", "#ef6548", "#d7301f", "#990000"),
}
_NO_DATA_COLOR = "#e0e0e0"

_ROUND = 5  # decimals of WGS84 coordinates sent to the page (about 1 m)

# ---------------------------------------------------------------------------------------
# JavaScript and CSS shared by every clustermap map (added once per page)
# ---------------------------------------------------------------------------------------

_CSS = """
.cm-title{position:absolute;top:10px;left:50%;transform:translateX(-50%);z-index:1000;
 background:rgba(255,255,255,.92);padding:4px 12px;border-radius:4px;font:600 15px/1.3
 system-ui,sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:60%;text-align:center;
 pointer-events:none}
.cm-legend{background:rgba(255,255,255,.94);padding:6px 9px;border-radius:4px;
 font:12px/1.35 system-ui,sans-serif;box-shadow:0 1px 4px rgba(0,0,0,.3);max-width:280px;
 max-height:45vh;overflow:auto}
.cm-legend-title{font-weight:600;margin-bottom:3px}
.cm-legend-item{display:flex;align-items:center;gap:6px;margin:1px 0}
.cm-legend-swatch{flex:0 0 14px;height:12px;border:1px solid #777}
.cm-legend-note{margin-top:4px;color:#444;font-style:italic}
.cm-fiche{font:12.5px/1.35 system-ui,sans-serif;min-width:240px}
.cm-fiches .cm-fiche+.cm-fiche{border-top:2px solid #bbb;margin-top:8px;padding-top:6px}
.cm-fiche-count{font:600 12px system-ui,sans-serif;color:#555;margin-bottom:4px}
.cm-fiche-title{font-weight:700;font-size:14px;margin-bottom:4px}
.cm-fiche-warn{background:#fff3cd;padding:2px 4px;margin-bottom:4px}
.cm-fiche-table{border-collapse:collapse}
.cm-fiche-table th{text-align:left;font-weight:600;padding:1px 8px 1px 0;vertical-align:top}
.cm-fiche-table td{padding:1px 0}
.cm-fiche-sub{font-weight:600;margin-top:5px}
.cm-fiche ul{margin:2px 0 0 16px;padding:0}
.cm-fs{width:30px;height:30px;background:#fff;border:none;cursor:pointer;padding:0;
 display:flex;align-items:center;justify-content:center}
.leaflet-control-layers-expanded{max-height:45vh;overflow:auto;max-width:330px;
 font:12px/1.35 system-ui,sans-serif}
.cm-count{background:rgba(60,60,60,.8);color:#fff;border-radius:50%;text-align:center;
 font:600 11px/30px system-ui,sans-serif;width:30px;height:30px;border:2px solid #fff}
"""

_JS = """
var cmUtil = (function () {
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  }
  function fiche(p) {
    var root = el('div', 'cm-fiche');
    root.appendChild(el('div', 'cm-fiche-title', p.t));
    if (p.w) { root.appendChild(el('div', 'cm-fiche-warn', p.w)); }
    var tb = el('table', 'cm-fiche-table');
    (p.r || []).forEach(function (r) {
      var tr = el('tr'); tr.appendChild(el('th', null, r[0])); tr.appendChild(el('td', null, r[1]));
      tb.appendChild(tr);
    });
    root.appendChild(tb);
    var lists = (p.s || []).slice();
    if (p.l && p.l.length) { lists.unshift([p.lt, p.l]); }
    lists.forEach(function (sec) {
      root.appendChild(el('div', 'cm-fiche-sub', sec[0]));
      var ul = el('ul');
      (sec[1] || []).forEach(function (x) { ul.appendChild(el('li', null, x)); });
      root.appendChild(ul);
    });
    return root;
  }
  function tip(text) { return el('div', 'cm-tip', text); }
  // every clickable cluster, for "all the clusters under the click" and the table links
  var pickable = [];
  window.cmFeatures = window.cmFeatures || {};
  function inRing(pt, ring) {
    var x = pt[0], y = pt[1], inside = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if (((yi > y) !== (yj > y)) && (x < (xj - xi) * (y - yi) / (yj - yi) + xi)) {
        inside = !inside;
      }
    }
    return inside;
  }
  function contains(geom, pt) {
    if (!geom) { return false; }
    var polys = geom.type === 'Polygon' ? [geom.coordinates] :
      geom.type === 'MultiPolygon' ? geom.coordinates : [];
    return polys.some(function (rings) {
      var n = 0;
      rings.forEach(function (r) { if (inRing(pt, r)) { n++; } });
      return n % 2 === 1;
    });
  }
  function openFiche(l, latlng, all) {
    var map = l._map;
    if (!map) { return; }
    var here = !all ? [] : pickable.filter(function (e) {
      return map.hasLayer(e.layer) && contains(e.feature.geometry, [latlng.lng, latlng.lat]);
    });
    if (here.indexOf(l._cmEntry) < 0) { here.unshift(l._cmEntry); }
    var box = el('div', 'cm-fiches');
    if (here.length > 1) {
      box.appendChild(el('div', 'cm-fiche-count', here.length + ' clusters'));
    }
    here.forEach(function (e) { box.appendChild(fiche(e.feature.properties.p)); });
    L.popup({maxWidth: 420, maxHeight: 420}).setLatLng(latlng).setContent(box).openOn(map);
  }
  window.cmOpenCluster = function (id) {
    var l = window.cmFeatures[id];
    if (!l || !l._map) { return false; }
    var b = l.getBounds();
    l._map.fitBounds(b, {maxZoom: 12});
    openFiche(l, b.getCenter(), false);
    return true;
  };
  function geojson(target, data, o) {
    var layer = L.geoJson(data, {
      className: o.cls,
      interactive: o.interactive !== false,
      style: function (f) {
        var s = Object.assign({}, o.style);
        if (f.properties && f.properties.c) { s.fillColor = f.properties.c; }
        return s;
      },
      onEachFeature: function (f, l) {
        var p = f.properties || {};
        if (p.t) { l.bindTooltip(function () { return tip(p.t); }, {sticky: true}); }
        if (p.p) {
          l._cmEntry = {feature: f, layer: l};
          pickable.push(l._cmEntry);
          if (p.id) { window.cmFeatures[p.id] = l; }
          l.on('click', function (e) { openFiche(l, e.latlng, true); });
        }
      }
    });
    layer.addTo(target);
    return layer;
  }
  function legend(map, spec) {
    var c = L.control({position: 'bottomright'});
    c.onAdd = function () {
      var d = el('div', 'cm-legend');
      d.appendChild(el('div', 'cm-legend-title', spec.title));
      spec.items.forEach(function (it) {
        var row = el('div', 'cm-legend-item');
        var sw = el('span', 'cm-legend-swatch'); sw.style.background = it[0];
        row.appendChild(sw); row.appendChild(el('span', null, it[1])); d.appendChild(row);
      });
      if (spec.note) { d.appendChild(el('div', 'cm-legend-note', spec.note)); }
      L.DomEvent.disableClickPropagation(d); L.DomEvent.disableScrollPropagation(d);
      return d;
    };
    c.addTo(map);
  }
  function title(map, text) {
    var d = el('div', 'cm-title', text); map.getContainer().appendChild(d);
  }
  function fullscreen(map, label) {
    var c = L.control({position: 'topleft'});
    c.onAdd = function () {
      var box = el('div', 'leaflet-bar');
      var b = el('button', 'cm-fs'); b.type = 'button'; b.title = label;
      var ns = 'http://www.w3.org/2000/svg', svg = document.createElementNS(ns, 'svg');
      var pa = document.createElementNS(ns, 'path');
      svg.setAttribute('viewBox', '0 0 16 16'); svg.setAttribute('width', '16');
      svg.setAttribute('height', '16');
      pa.setAttribute('d', 'M1 6V1h5M10 1h5v5M15 10v5h-5M6 15H1v-5');
      pa.setAttribute('fill', 'none'); pa.setAttribute('stroke', '#333');
      pa.setAttribute('stroke-width', '2'); svg.appendChild(pa); b.appendChild(svg);
      b.setAttribute('aria-label', label); box.appendChild(b);
      L.DomEvent.disableClickPropagation(box);
      b.addEventListener('click', function () {
        var ct = map.getContainer();
        if (document.fullscreenElement) { document.exitFullscreen(); }
        else if (ct.requestFullscreen) { ct.requestFullscreen(); }
      });
      document.addEventListener('fullscreenchange', function () { map.invalidateSize(); });
      return box;
    };
    c.addTo(map);
  }
  function scale(map) { L.control.scale({imperial: false}).addTo(map); }
  function points(target, map, d, o) {
    var renderer = L.canvas({padding: 0.5});
    function marker(i) {
      var mk = L.circleMarker([d.y[i], d.x[i]], {radius: 4, weight: 1, color: '#333',
        fillColor: o.colors[d.c[i]], fillOpacity: 0.85, renderer: renderer});
      mk.bindTooltip(function () { return tip(d.t[i]); });
      return mk;
    }
    var n = d.y.length, i;
    if (!o.cluster) { for (i = 0; i < n; i++) { marker(i).addTo(target); } return; }
    var group = L.layerGroup().addTo(target), cache = {};
    function get(i) { if (!cache[i]) { cache[i] = marker(i); } return cache[i]; }
    function redraw() {
      group.clearLayers();
      var z = map.getZoom(), b = map.getBounds().pad(0.25), cells = {}, keys = [];
      for (i = 0; i < n; i++) {
        if (!b.contains([d.y[i], d.x[i]])) { continue; }
        if (z >= o.maxZoom) { group.addLayer(get(i)); continue; }
        var p = map.project([d.y[i], d.x[i]], z);
        var k = Math.floor(p.x / o.cell) + ':' + Math.floor(p.y / o.cell);
        if (!cells[k]) { cells[k] = []; keys.push(k); }
        cells[k].push(i);
      }
      keys.forEach(function (k) {
        var ids = cells[k];
        if (ids.length === 1) { group.addLayer(get(ids[0])); return; }
        var sy = 0, sx = 0;
        ids.forEach(function (j) { sy += d.y[j]; sx += d.x[j]; });
        var ll = [sy / ids.length, sx / ids.length];
        var icon = L.divIcon({className: '', html: el('div', 'cm-count', ids.length),
                              iconSize: [34, 34]});
        var mk = L.marker(ll, {icon: icon});
        mk.on('click', function () { map.setView(ll, Math.min(z + 2, o.maxZoom)); });
        group.addLayer(mk);
      });
    }
    map.on('zoomend moveend', redraw);
    map.whenReady(redraw);
  }
  return {el: el, fiche: fiche, tip: tip, geojson: geojson, legend: legend, title: title,
          fullscreen: fullscreen, scale: scale, points: points};
})();
"""


@dataclass(frozen=True)
class MapOptions:
    """How a map is drawn; the same options for every ``explore_*`` function.

    ``explore_*(..., map_options={"offline": False})``; the keywords ``tiles=``,
    ``simplify=``, ``offline=`` and ``layer_control=`` of version 0.1 are accepted for one
    release, with a FutureWarning.

    Attributes
    ----------
    tiles : str or folium.TileLayer or None, default "OpenStreetMap"
        Base map (``None`` for a plain background).
    simplify : "auto", float or None, default "auto"
        Display tolerance in metres for coverage simplification ("auto": 1/10000 of the
        extent drawn; ``None``: no simplification). Coordinates are always rounded to 5
        decimals. Only the units drawn are simplified; the data are untouched.
    offline : bool, default True
        Embed Leaflet in the page (new map only), so the map draws without a network, in a
        notebook or a saved file; ``False`` loads Leaflet from a CDN, for smaller files.
        Base-map tiles always come from the network (``tiles=None``: none).
    layer_control : bool, default True
        Add a layer selector.

    Examples
    --------
    >>> MapOptions(offline=False).offline
    False
    """

    tiles: Any = "OpenStreetMap"
    simplify: float | str | None = "auto"
    offline: bool = True
    layer_control: bool = True


_MAP_LEGACY = {k: f"map_options.{k}" for k in ("tiles", "simplify", "offline", "layer_control")}


def _map_options(func: str, map_options: Any, map_kwds: dict[str, Any]) -> tuple:
    """Resolve ``map_options``; the old keywords are taken out of ``map_kwds``."""
    legacy = {k: map_kwds.pop(k) for k in list(map_kwds) if k in _MAP_LEGACY}
    moved = take_legacy(func, legacy, _MAP_LEGACY, stacklevel=4).get("map_options", {})
    mo = as_options(MapOptions, map_options, "map_options", moved)
    return mo.tiles, mo.simplify, mo.offline, mo.layer_control


def _folium() -> Any:
    try:
        import folium
    except ImportError as err:  # pragma: no cover - dependency
        raise ImportError(
            "clustermap maps need folium and branca. Install them with "
            "`pip install folium branca` (they are dependencies of clustermap)."
        ) from err
    return folium


def _add_helpers(m: folium.Map) -> None:
    fig = m.get_root()
    if "cm_helpers" not in fig.header._children:
        fig.header.add_child(
            RawElement(f"<style>{_CSS}</style>\n<script>{_JS}</script>"), name="cm_helpers"
        )


_CALL_CLASS: list[Any] = []


def _call_class() -> Any:
    if not _CALL_CLASS:
        from branca.element import Element

        class _Call(Element):
            """``cmUtil.<func>(<parent>[, <map>], <json args>)`` in the page script.

            Rendered without any template: the JSON arguments carry registry text, which
            must reach the page as data and never be parsed by Jinja2 (branca's
            ``MacroElement`` parses its output a second time).
            """

            def __init__(self, func: str, args: tuple[str, ...], with_map: bool) -> None:
                super().__init__()
                self._name = "cm_call"
                self.func, self.args, self.with_map = func, args, with_map

            @property
            def code(self) -> str:
                parent = self._parent
                names = [parent.get_name()]
                if self.with_map:
                    root = parent
                    while root is not None and type(root).__name__ != "Map":
                        root = getattr(root, "_parent", None)
                    names.append((root or parent).get_name())
                return f"cmUtil.{self.func}({', '.join([*names, *self.args])});"

            def render(self, **kwargs: Any) -> str:
                figure = self.get_root()
                figure.script.add_child(RawElement(self.code), name=self.get_name())
                return ""

        _CALL_CLASS.append(_Call)
    return _CALL_CLASS[0]


def _js_call(parent: Any, func: str, *args: Any, with_map: bool = False) -> Any:
    """Add ``cmUtil.func(parent, [map,] *args)`` to the page; args are sent as safe JSON."""
    el = _call_class()(func, tuple(script_json(display_json(a)) for a in args), with_map)
    parent.add_child(el)
    return el


# ---------------------------------------------------------------------------------------
# geometry
# ---------------------------------------------------------------------------------------


def _units_frame(units: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Units indexed by unit id (as str), in WGS84."""
    import geopandas as gpd

    if not isinstance(units, gpd.GeoDataFrame):
        raise SchemaError(
            f"units must be a GeoDataFrame of polygons indexed by unit id; got "
            f"{type(units).__name__}."
        )
    out = units
    if UNIT_ID in out.columns:
        out = out.set_index(UNIT_ID)
    out = out[~out.geometry.isna()].copy()
    out.index = out.index.astype(str)
    if out.crs is None:
        minx, miny, maxx, maxy = out.total_bounds if len(out) else (0, 0, 0, 0)
        if -180 <= minx <= maxx <= 180 and -90 <= miny <= maxy <= 90:
            out = out.set_crs(4326)
        else:
            raise CRSError(
                "The units have no CRS and their coordinates are not longitude/latitude "
                f"(bounds {minx:.0f}, {miny:.0f}, {maxx:.0f}, {maxy:.0f}). Set it first, e.g. "
                "units.set_crs(2154) for Lambert-93."
            )
    if not out.crs.equals("EPSG:4326"):
        out = out.to_crs(4326)
    return out


def _tolerance(bounds: Sequence[float], simplify: Any) -> float:
    """Simplification tolerance in degrees (``simplify`` in metres, or "auto")."""
    if simplify is None or simplify is False:
        return 0.0
    if isinstance(simplify, str):
        if simplify != "auto":
            raise ValueError(
                f"simplify must be 'auto', a tolerance in metres or None; {simplify!r} was given."
            )
        minx, miny, maxx, maxy = bounds
        extent_deg = max(maxx - minx, maxy - miny, 1e-6)
        return float(extent_deg * 1e-4)
    value = float(simplify)
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"simplify must be a tolerance >= 0 in metres; {simplify!r} was given.")
    return value / 111_320.0


def _round(geoms: np.ndarray) -> np.ndarray:
    return shapely.transform(geoms, lambda c: np.round(c, _ROUND))


def _simplify_coverage(geoms: np.ndarray, tol: float) -> np.ndarray:
    """Coverage-simplify polygons (no gaps open between neighbours) and round."""
    geoms = np.asarray(geoms, dtype=object)
    if tol > 0 and len(geoms):
        polygonal = shapely.get_type_id(geoms)
        ok = np.isin(polygonal, (3, 6))  # Polygon, MultiPolygon
        simplified = geoms.copy()
        if ok.any():
            simplified[ok] = shapely.coverage_simplify(geoms[ok], tol)
        geoms = simplified
    return _round(geoms)


def _display_units(units: gpd.GeoDataFrame, simplify: Any) -> pd.Series:
    """Simplified, rounded unit polygons in WGS84 (Series of shapely geometries by unit id)."""
    tol = _tolerance(units.total_bounds, simplify)
    geoms = _simplify_coverage(units.geometry.to_numpy(), tol)
    return pd.Series(geoms, index=units.index)


def _geojson(geoms: Iterable[Any], props: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    feats = []
    for g, p in zip(geoms, props):
        if g is None or shapely.is_empty(g):
            continue
        feats.append(
            {
                "type": "Feature",
                "geometry": shapely.geometry.mapping(g),
                "properties": p or {},
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def _bounds(geoms: Iterable[Any]) -> list[list[float]] | None:
    arr = np.asarray([g for g in geoms if g is not None and not shapely.is_empty(g)], dtype=object)
    if not len(arr):
        return None
    minx, miny, maxx, maxy = shapely.total_bounds(arr)
    return [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def _context_outlines(units: gpd.GeoDataFrame, tol: float) -> tuple[np.ndarray, list[str]]:
    """Outlines of groups of units: départements for French commune codes, else the whole.

    The groups are dissolved from the full-resolution units, then simplified together as a
    coverage (so neighbouring départements keep a common border).
    """
    ids = units.index.astype(str)
    french = ids.str.fullmatch(r"(\d{5}|2[AB]\d{3})").mean() > 0.9 if len(ids) else False
    if french:
        keys = np.where(ids.str.startswith("97"), ids.str[:3], ids.str[:2])
    else:
        keys = np.array(["all"] * len(ids))
    geoms = units.geometry.to_numpy()
    merged, names = [], []
    for key in pd.unique(keys):
        part = geoms[keys == key]
        part = part[~shapely.is_empty(part)]
        if not len(part):
            continue
        try:
            union = shapely.coverage_union_all(part)
        except shapely.errors.GEOSException:  # pragma: no cover - not a clean coverage
            union = shapely.union_all(part)
        merged.append(union)
        names.append(str(key))
    polys = np.asarray(merged, dtype=object)
    polygonal = np.isin(shapely.get_type_id(polys), (3, 6)) if len(polys) else polys
    if len(polys) and polygonal.all():
        polys = _simplify_coverage(polys, tol)
    elif len(polys):  # pragma: no cover - odd geometry types after union
        polys = _round(shapely.simplify(polys, tol))
    return _round(shapely.boundary(polys)), names


# ---------------------------------------------------------------------------------------
# map furniture
# ---------------------------------------------------------------------------------------


def _new_map(
    bounds: list[list[float]] | None,
    *,
    tiles: Any,
    title: str | None,
    lang: str,
    offline: bool,
    map_kwds: dict[str, Any],
) -> folium.Map:
    folium = _folium()
    kwds = {"tiles": tiles, "control_scale": False, "zoom_start": 6}
    if bounds is not None:
        kwds["location"] = [
            (bounds[0][0] + bounds[1][0]) / 2,
            (bounds[0][1] + bounds[1][1]) / 2,
        ]
    kwds.update(map_kwds)
    m = folium.Map(**kwds)
    if offline:
        make_offline(m)
        protect_map(m)
    _add_helpers(m)
    _js_call(m, "scale")
    _js_call(m, "fullscreen", i18n.t("fullscreen", lang))
    if title:
        _js_call(m, "title", title)
    if bounds is not None:
        m.fit_bounds(bounds)
    return m


def _add_legend(m: folium.Map, title: str, items: list[tuple[str, str]], note: str | None) -> None:
    spec = {"title": title, "items": [list(i) for i in items], "note": note}
    _js_call(m, "legend", spec)


def _finish(m: folium.Map, layer_control: bool) -> folium.Map:
    """Keep exactly one LayerControl, last among the map's children."""
    folium = _folium()
    existing = [k for k, v in m._children.items() if isinstance(v, folium.LayerControl)]
    for k in existing:
        del m._children[k]
    if layer_control or existing:
        folium.LayerControl(collapsed=True).add_to(m)
    return m


def _unique_layer_name(m: folium.Map, name: str) -> str:
    folium = _folium()
    used = {
        getattr(v, "layer_name", None)
        for v in m._children.values()
        if isinstance(v, folium.map.Layer)
    }
    out, i = name, 2
    while out in used:
        out, i = f"{name} ({i})", i + 1
    return out


def _feature_group(m: folium.Map, name: str, show: bool = True) -> Any:
    folium = _folium()
    # Leaflet's layer control writes layer names as HTML, and folium's templates parse them
    # again: escape registry text for both
    fg = folium.FeatureGroup(name=_unique_layer_name(m, inert_html(display_text(name))), show=show)
    fg.add_to(m)
    return fg


def _add_geojson(
    group: Any, data: dict[str, Any], *, cls: str, style: dict[str, Any], **opts: Any
) -> None:
    o = {"cls": cls, "style": style, **opts}
    _js_call(group, "geojson", data, o)


def _color_of(index: int) -> str:
    """The palette, then distinct generated colours (golden-angle hues, two lightnesses).

    Examples
    --------
    >>> _color_of(0), _color_of(19) != _color_of(20), len({_color_of(i) for i in range(60)})
    ('#e41a1c', True, 60)
    """
    if index < len(PALETTE):
        return PALETTE[index]
    import colorsys

    k = index - len(PALETTE)
    hue = (k * 0.618033988749895 + 0.11) % 1.0
    light = 0.38 if k % 2 else 0.55
    r, g, b = colorsys.hls_to_rgb(hue, light, 0.65)
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}"


def _css_token(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", str(text))


# ---------------------------------------------------------------------------------------
# clusters
# ---------------------------------------------------------------------------------------


def _unit_names(units: gpd.GeoDataFrame) -> pd.Series:
    for col in (UNIT_NAME, "nom", "libelle", COMMUNE):
        if col in units.columns:
            return units[col].astype(str)
    return pd.Series(units.index.astype(str), index=units.index)


def _cluster_geometries(
    clusters: pd.DataFrame, display: pd.Series | None, tol: float
) -> tuple[list[Any], list[list[str]]]:
    """Cluster regions as the union of their (simplified) units; members found."""
    geoms, members = [], []
    fallback = None
    for pos, (_, row) in enumerate(clusters.iterrows()):
        ids = [str(i) for i in (_val(row, "unit_ids") or [])]
        found = [i for i in ids if display is not None and i in display.index]
        if found and len(found) == len(ids):
            parts = display.loc[found].to_numpy()
            try:
                geom = shapely.coverage_union_all(parts)
            except shapely.errors.GEOSException:  # pragma: no cover
                geom = shapely.union_all(parts)
            geoms.append(geom)
            members.append(found)
            continue
        if fallback is None:
            fallback = _cluster_geoms_wgs84(clusters)
        g = fallback[pos]
        if g is not None and tol > 0:
            g = shapely.simplify(g, tol, preserve_topology=True)
        geoms.append(None if g is None else _round(np.asarray([g], dtype=object))[0])
        members.append(found)
    return geoms, members


def _cluster_geoms_wgs84(clusters: Any) -> list[Any]:
    import geopandas as gpd

    if not isinstance(clusters, gpd.GeoDataFrame) or clusters.geometry.name not in clusters:
        return [None] * len(clusters)
    gs = clusters.geometry
    if gs.crs is not None and not gs.crs.equals("EPSG:4326"):
        gs = gs.to_crs(4326)
    return list(gs.to_numpy())


def _drawn_units(clusters: pd.DataFrame, units: Any, simplify: Any) -> tuple[Any, float]:
    """The units the clusters cover, simplified for display, and the tolerance used.

    Only the units drawn are simplified (as a coverage of their own: edges shared by two
    drawn units stay shared); the tolerance follows the extent of what is drawn.
    """
    if units is None:
        return None, 0.0
    member_ids = list(
        dict.fromkeys(
            str(u)
            for ids in clusters.get("unit_ids", pd.Series(dtype=object))
            if ids is not None
            for u in ids
            if str(u) in units.index
        )
    )
    drawn = units.loc[member_ids]
    tol = _tolerance(drawn.total_bounds if len(drawn) else units.total_bounds, simplify)
    return pd.Series(_simplify_coverage(drawn.geometry.to_numpy(), tol), index=drawn.index), tol


def _add_outline(m: Any, geom: Any, name: str) -> None:
    """A thick dark outline (a territory) as its own layer, not clickable; None: nothing."""
    if geom is None:
        return
    _add_geojson(
        _feature_group(m, name),
        _geojson([geom.boundary], [None]),
        cls="cm-territory",
        style={"color": "#111111", "weight": 3, "opacity": 0.9, "fill": False},
        interactive=False,
    )


def _focus(units: Any, focus: Any, bounds: Any) -> tuple[Any, Any]:
    """The outline of the ``focus`` units and the bounds to open on (else ``bounds``)."""
    if focus is None or units is None:
        return None, bounds
    inside = units.loc[units.index.intersection(pd.Index([str(f) for f in focus]))]
    if not len(inside):
        return None, bounds
    minx, miny, maxx, maxy = inside.total_bounds
    outline = shapely.union_all(inside.geometry.to_numpy())
    return outline, [[float(miny), float(minx)], [float(maxy), float(maxx)]]


def explore_clusters(
    result: Any,
    *,
    m: folium.Map | None = None,
    sectors: Sequence[str] | None = None,
    color_by: str = SECTOR,
    lang: str = "fr",
    title: str | None = None,
    show_units: bool = True,
    context: bool = False,
    largest: int = 5,
    map_options: MapOptions | Mapping[str, Any] | None = None,
    focus: Sequence[str] | None = None,
    **map_kwds: Any,
) -> folium.Map:
    """Map the detected cluster regions, one toggleable layer per sector.

    Each cluster is drawn as the union of its units, coloured by sector (or by the column
    ``color_by``), with the outlines of the units it covers. Clicking a cluster opens its
    "fiche": sector, main communes, establishments, employees with the size-band range, LQ
    with its 95 % interval, share of the national sector, focus, stars, strong-cluster
    flag, p-value and the largest establishments by name.

    Parameters
    ----------
    result : ClusterResult
        Output of :func:`clustermap.detect_clusters`.
    m : folium.Map, optional
        Existing map to add the layers to (as :meth:`geopandas.GeoDataFrame.explore`).
    sectors : sequence of str, optional
        Only these sector codes (default: every sector with a cluster).
    color_by : str, default "sector"
        Column of ``result.clusters`` giving the layers and colours (e.g. a group column).
    lang : {"fr", "en"}, default "fr"
        Language of labels and number formatting.
    title : str, optional
        Title shown on the map (default "Clusters d'entreprises").
    show_units : bool, default True
        Draw the outlines of the units each cluster covers.
    context : bool, default False
        Draw light outlines of groups of units (départements for French commune codes), a
        background that needs no internet.
    largest : int, default 5
        Number of establishments listed by name in each fiche.
    map_options : MapOptions or dict, optional
        Base map, simplification, offline page, layer selector (:class:`MapOptions`).
    focus : sequence of str, optional
        Unit ids of a territory: the map opens on them and draws their outline.
    **map_kwds
        Passed to :class:`folium.Map` when a new map is made.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame(
    ...     {"name": ["Cluses", "Scionzier"]},
    ...     geometry=[box(6.55, 46.05, 6.60, 46.10), box(6.60, 46.05, 6.65, 46.10)],
    ...     index=pd.Index(["74081", "74264"], name="unit_id"), crs=4326)
    >>> clusters = gpd.GeoDataFrame({
    ...     "cluster_id": ["25.62A-1"], "sector": ["25.62A"], "sector_label": ["Décolletage"],
    ...     "place": ["Cluses, Scionzier"], "unit_ids": [["74081", "74264"]], "n_units": [2],
    ...     "establishments": [1234], "lq": [2.5], "lq_low": [2.1], "lq_high": [3.0]},
    ...     geometry=[box(6.55, 46.05, 6.65, 46.10)], crs=4326)
    >>> result = cm.ClusterResult(clusters=clusters, table=pd.DataFrame(), units=units)
    >>> m = cm.explore_clusters(result)
    >>> page = m.get_root().render()
    >>> "Quotient de localisation" in page and "1 234".replace(" ", chr(160)) in page
    True
    >>> "25.62A — Décolletage" in page   # the layer of the sector
    True
    """
    tiles, simplify, offline, layer_control = _map_options(
        "explore_clusters", map_options, map_kwds
    )
    i18n.check_lang(lang)
    clusters = result.clusters
    if color_by not in clusters.columns:
        raise SchemaError(
            f"color_by={color_by!r} is not a column of result.clusters; columns are "
            f"{list(clusters.columns)}."
        )
    if sectors is not None:
        wanted = {str(s) for s in sectors}
        unknown = wanted - set(clusters[SECTOR].astype(str))
        if unknown:
            raise ValueError(
                f"sectors {sorted(unknown)} have no cluster in this result; sectors with "
                f"clusters are {sorted(set(clusters[SECTOR].astype(str)))}."
            )
        clusters = clusters[clusters[SECTOR].astype(str).isin(wanted)]

    units = _units_frame(result.units) if result.units is not None and len(result.units) else None
    display, tol = _drawn_units(clusters, units, simplify)
    geoms, members = _cluster_geometries(clusters, display, tol)
    if units is not None and tol == 0.0 and len(geoms):
        tol = _tolerance(shapely.total_bounds(np.asarray(geoms, dtype=object)), simplify)

    bounds = _bounds(geoms)
    if bounds is None and units is not None:  # no cluster: the units that hold data
        with_data = units.loc[units.index.intersection(units_with_data(result))]
        minx, miny, maxx, maxy = (with_data if len(with_data) else units).total_bounds
        bounds = [[float(miny), float(minx)], [float(maxy), float(maxx)]]
    territory, bounds = _focus(units, focus, bounds)
    if bounds is None:
        warnings.warn(
            "No cluster has a geometry to draw: the map is empty.", ClustermapWarning, stacklevel=2
        )
    if m is None:
        m = _new_map(
            bounds,
            tiles=tiles,
            title=title if title is not None else i18n.t("title_clusters", lang),
            lang=lang,
            offline=offline,
            map_kwds=map_kwds,
        )

    _add_outline(m, territory, i18n.t("your_territory", lang))
    if context and units is not None:
        # background lines: coarser than the clusters they frame
        ctx_tol = 3 * (tol if tol > 0 else _tolerance(units.total_bounds, simplify))
        lines, _ = _context_outlines(units, ctx_tol)
        fg = _feature_group(m, i18n.t("context", lang))
        _add_geojson(
            fg,
            _geojson(lines, [None] * len(lines)),
            cls="cm-context",
            style={"color": "#555555", "weight": 1, "opacity": 0.7, "fill": False},
            interactive=False,
        )

    keys = clusters[color_by].astype(str)
    order = list(dict.fromkeys(keys))
    labels = {}
    if color_by == SECTOR and "sector_label" in clusters.columns:
        for code, lab in zip(keys, clusters["sector_label"]):
            labels.setdefault(code, f"{code} — {lab}" if pd.notna(lab) else code)
    legend_items = []
    clusters_list = list(clusters.iterrows())
    largest_of = Largest(result)
    extras = Extras(result)
    for li, key in enumerate(order):
        color = _color_of(li)
        name = labels.get(key, key)
        legend_items.append((color, name))
        rows = [i for i, k in enumerate(keys) if k == key]
        fg = _feature_group(m, name)
        props = []
        for i in rows:
            row = clusters_list[i][1]
            props.append(
                {
                    "t": cluster_tooltip(row, lang),
                    "p": cluster_card(row, lang, largest_of(row, largest, lang), extras(row, lang)),
                    "id": str(_val(row, CLUSTER_ID)),
                }
            )
        _add_geojson(
            fg,
            _geojson([geoms[i] for i in rows], props),
            cls=f"cm-cluster cm-layer-{_css_token(key)}",
            style={"color": color, "weight": 2, "fillColor": color, "fillOpacity": 0.45},
        )
        if show_units and display is not None:
            ids = list(dict.fromkeys(u for i in rows for u in members[i]))
            if ids:
                _add_geojson(
                    fg,
                    _geojson(display.loc[ids].to_numpy(), [None] * len(ids)),
                    cls="cm-unit",
                    style={"color": color, "weight": 0.6, "opacity": 0.8, "fill": False},
                    interactive=False,
                )
    if legend_items:
        _add_legend(m, i18n.t("legend_clusters", lang), legend_items, None)
    return _finish(m, layer_control)


# ---------------------------------------------------------------------------------------
# LQ choropleth
# ---------------------------------------------------------------------------------------


def _sector_rows(table: pd.DataFrame, sector: str | None) -> tuple[pd.DataFrame, str]:
    if SECTOR not in table.columns or UNIT_ID not in table.columns:
        raise SchemaError(
            f"The table needs columns {UNIT_ID!r} and {SECTOR!r}; it has {list(table.columns)}."
        )
    codes = table[SECTOR].astype(str)
    available = sorted(codes.unique())
    if sector is None:
        if len(available) != 1:
            raise ValueError(
                f"Say which sector to map with sector=...; the table holds {len(available)} "
                f"sectors: {available[:20]}{' ...' if len(available) > 20 else ''}."
            )
        sector = available[0]
    sector = str(sector)
    if sector not in set(available):
        raise ValueError(
            f"Sector {sector!r} is not in the table; sectors are "
            f"{available[:20]}{' ...' if len(available) > 20 else ''}."
        )
    rows = table.loc[codes == sector].copy()
    rows[UNIT_ID] = rows[UNIT_ID].astype(str)
    return rows.drop_duplicates(UNIT_ID).set_index(UNIT_ID), sector


def _sector_label(result: Any, sector: str) -> str:
    clusters = getattr(result, "clusters", None)
    if clusters is not None and "sector_label" in clusters.columns:
        hit = clusters.loc[clusters[SECTOR].astype(str) == sector, "sector_label"]
        if len(hit) and pd.notna(hit.iloc[0]):
            return f"{sector} — {hit.iloc[0]}"
    sectors = getattr(result, "sectors", None)
    if sectors is not None:
        for col in ("sector_label", "label"):
            if col in sectors.columns:
                frame = sectors.set_index(SECTOR) if SECTOR in sectors.columns else sectors
                if sector in frame.index.astype(str):
                    lab = frame[col].loc[frame.index.astype(str) == sector].iloc[0]
                    return f"{sector} — {lab}"
    return sector


def _classify(values: pd.Series, scheme: str, k: int) -> tuple[np.ndarray, list[float]]:
    """Class index of each value (-1 for missing) and the upper bounds, via mapclassify."""
    import mapclassify

    valid = values.notna() & np.isfinite(values.astype(float))
    y = values[valid].astype(float).to_numpy()
    idx = np.full(len(values), -1, dtype=int)
    if not len(y):
        return idx, []
    if scheme.lower() == "lq":
        # fixed classes, upper bounds included as in mapclassify: (-inf, 0.5], (0.5, 0.8] ...
        classifier = mapclassify.UserDefined(y, bins=[*_LQ_BREAKS, np.inf])
        idx[valid.to_numpy()] = classifier.yb
        return idx, [float(b) for b in classifier.bins]
    classifier = mapclassify.classify(y, scheme=scheme, k=k)
    idx[valid.to_numpy()] = classifier.yb
    return idx, [float(b) for b in classifier.bins]


def _class_labels(bins: list[float], lang: str, fixed: bool) -> list[str]:
    f = i18n.fmt_num
    out = []
    for i, hi in enumerate(bins):
        if i == 0:
            out.append(f"≤ {f(hi, lang)}")
        elif fixed and i == len(bins) - 1:
            out.append(f"> {f(bins[i - 1], lang)}")
        else:
            out.append(f"{f(bins[i - 1], lang)} – {f(hi, lang)}")
    return out


def explore_lq(
    result: Any,
    sector: str | None = None,
    *,
    m: folium.Map | None = None,
    scheme: str = "lq",
    k: int = 5,
    lang: str = "fr",
    title: str | None = None,
    map_options: MapOptions | Mapping[str, Any] | None = None,
    **map_kwds: Any,
) -> folium.Map:
    """Choropleth of the location quotient of one sector, with a legend in words.

    Parameters
    ----------
    result : ClusterResult
        Its ``table`` (``unit_id``, ``sector``, ``lq``, ``lq_low``, ``lq_high``,
        ``establishments``) and ``units`` are used.
    sector : str, optional
        Sector code (needed when the table holds several sectors).
    m : folium.Map, optional
        Existing map to add the layer to.
    scheme : str, default "lq"
        ``"lq"``: fixed classes meaningful for an LQ (< 0,5, 0,5–0,8, 0,8–1,25, 1,25–2,
        2–4, ≥ 4) with a blue–white–red palette centred on 1. Any other value is a
        :func:`mapclassify.classify` scheme (``"quantiles"``, ``"fisherjenks"`` ...) with
        ``k`` classes.
    k : int, default 5
        Number of classes for mapclassify schemes (3 to 7).
    lang : {"fr", "en"}, default "fr"
    title : str, optional
    map_options : MapOptions or dict, optional
        Base map, simplification, offline page, layer selector (:class:`MapOptions`).
    **map_kwds
        Passed to :class:`folium.Map`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"name": ["A", "B", "C"]},
    ...     geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)],
    ...     index=pd.Index(["a", "b", "c"], name="unit_id"), crs=4326)
    >>> table = pd.DataFrame({"unit_id": ["a", "b", "c"], "sector": "10", "lq": [0.4, 1.0, 2.5],
    ...     "lq_low": [0.2, 0.7, 1.9], "lq_high": [0.8, 1.4, 3.2], "establishments": [2, 10, 30]})
    >>> result = cm.ClusterResult(clusters=gpd.GeoDataFrame(), table=table, units=units)
    >>> page = cm.explore_lq(result, "10").get_root().render()
    >>> all(s in page for s in ["0,8 – 1,25", "1,25 – 2", "QL 2,5 [1,9 – 3,2]"])
    True
    """
    tiles, simplify, offline, layer_control = _map_options("explore_lq", map_options, map_kwds)
    i18n.check_lang(lang)
    if scheme.lower() != "lq" and not 3 <= int(k) <= 7:
        raise ValueError(f"k must be between 3 and 7; {k!r} was given.")
    rows, sector = _sector_rows(result.table, sector)
    if LQ not in rows.columns:
        raise SchemaError(f"The table has no {LQ!r} column; columns are {list(rows.columns)}.")
    units = _units_frame(result.units)
    display = _display_units(units, simplify)
    names = _unit_names(units)
    label = _sector_label(result, sector)
    lq = pd.to_numeric(rows[LQ].reindex(units.index), errors="coerce")
    idx, bins = _classify(lq, scheme, k)
    fixed = scheme.lower() == "lq"
    colors = _LQ_COLORS if fixed else _SEQ_COLORS.get(len(bins), _SEQ_COLORS[7])
    f_num = i18n.fmt_num
    props = []
    for uid, cls in zip(units.index, idx):
        text = f"{names.loc[uid]} ({uid})"
        if uid in rows.index:
            r = rows.loc[uid]
            text += f" — {i18n.t('lq_short', lang)} {f_num(r.get(LQ), lang)}"
            if LQ_LOW in r.index and LQ_HIGH in r.index:
                text += f" [{f_num(r[LQ_LOW], lang)} – {f_num(r[LQ_HIGH], lang)}]"
            if ESTABLISHMENTS in r.index:
                word = i18n.t("establishments", lang).lower()
                text += f" ; {i18n.fmt_int(r[ESTABLISHMENTS], lang)} {word}"
        else:
            text += f" — {i18n.t('no_data', lang)}"
        props.append({"t": text, "c": colors[cls] if cls >= 0 else _NO_DATA_COLOR})
    bounds = _bounds(display.to_numpy())
    if m is None:
        m = _new_map(
            bounds,
            tiles=tiles,
            title=title if title is not None else i18n.t("title_lq", lang, sector=label),
            lang=lang,
            offline=offline,
            map_kwds=map_kwds,
        )
    fg = _feature_group(m, f"{i18n.t('lq_short', lang)} {label}")
    _add_geojson(
        fg,
        _geojson(display.to_numpy(), props),
        cls=f"cm-lq cm-layer-{_css_token(sector)}",
        style={"color": "#666666", "weight": 0.5, "fillOpacity": 0.75},
    )
    items = list(zip(colors, _class_labels(bins, lang, fixed)))
    if (idx < 0).any():
        items.append((_NO_DATA_COLOR, i18n.t("no_data", lang)))
    _add_legend(
        m,
        f"{i18n.t('legend_lq', lang)} — {label}",
        items,
        i18n.t("legend_lq_note", lang),
    )
    return _finish(m, layer_control)


# ---------------------------------------------------------------------------------------
# local statistics
# ---------------------------------------------------------------------------------------

_QUADRANT_CODES = {1: "HH", 2: "LH", 3: "LL", 4: "HL"}  # esda's q codes


def _normalise_label(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "ns"
    if isinstance(value, int | np.integer) and int(value) in _QUADRANT_CODES:
        return _QUADRANT_CODES[int(value)]
    text = str(value).strip().lower().replace("_", "-").replace(" ", "-")
    table = {
        "hh": "HH",
        "high-high": "HH",
        "ll": "LL",
        "low-low": "LL",
        "hl": "HL",
        "high-low": "HL",
        "lh": "LH",
        "low-high": "LH",
        "hot": "hot",
        "hot-spot": "hot",
        "hotspot": "hot",
        "cold": "cold",
        "cold-spot": "cold",
        "coldspot": "cold",
    }
    if text in table:
        return table[text]
    if text in {"1", "2", "3", "4"}:
        return _QUADRANT_CODES[int(text)]
    return "ns"


def _pick_column(frame: pd.DataFrame, sector: str | None, what: str) -> tuple[pd.Series, str]:
    cols = [str(c) for c in frame.columns]
    if sector is None:
        if len(cols) != 1:
            raise ValueError(
                f"Say which sector to map with sector=...; the {what} holds {len(cols)} "
                f"sectors: {cols[:20]}{' ...' if len(cols) > 20 else ''}."
            )
        sector = cols[0]
    if str(sector) not in cols:
        raise ValueError(
            f"Sector {sector!r} is not in the {what}; sectors are "
            f"{cols[:20]}{' ...' if len(cols) > 20 else ''}."
        )
    series = frame.iloc[:, cols.index(str(sector))]
    series.index = series.index.astype(str)
    return series, str(sector)


def _base_category(labels: Any, quadrants: Any, greater: Any, lesser: Any) -> list[str]:
    """HH/LH/LL/HL from the quadrant when known, else the label; hot/cold from the tails."""
    out = []
    n = len(labels)
    for i in range(n):
        cat = _normalise_label(quadrants[i]) if quadrants is not None else "ns"
        if cat == "ns":
            cat = _normalise_label(labels[i])
        if cat == "ns" and greater is not None and lesser is not None:
            g, lo = greater[i], lesser[i]
            if pd.notna(g) and pd.notna(lo):
                cat = "hot" if g <= lo else "cold"
        out.append(cat)
    return out


def _local_frame(
    local: Any, sector: str | None, alpha: float, correction: str | None
) -> tuple[pd.DataFrame, str]:
    """Unit id -> statistic, p_value, category (HH/LH/LL/HL/hot/cold/ns), significant."""
    if isinstance(local, pd.DataFrame):
        rows, sector = _sector_rows(local, sector)
        if P_VALUE not in rows.columns or (LABEL not in rows and QUADRANT not in rows):
            raise SchemaError(
                f"A local-statistics table needs columns {P_VALUE!r} and {LABEL!r} (or "
                f"{QUADRANT!r}); it has {list(rows.columns)}."
            )
        # a ClusterResult table keeps the local statistic's own p-value apart from the
        # p-value of the window test: map the local statistic's
        pcol = "statistic_p_value" if "statistic_p_value" in rows.columns else P_VALUE
        p = pd.to_numeric(rows[pcol], errors="coerce").to_numpy(dtype=float)
        sig = adjust_pvalues(p, correction=correction) <= alpha
        cats = _base_category(
            rows[LABEL].to_numpy() if LABEL in rows else [None] * len(rows),
            rows[QUADRANT].to_numpy() if QUADRANT in rows else None,
            rows["p_greater"].to_numpy() if "p_greater" in rows else None,
            rows["p_lesser"].to_numpy() if "p_lesser" in rows else None,
        )
        out = pd.DataFrame(
            {STATISTIC: rows.get(STATISTIC, np.nan), P_VALUE: p, LABEL: cats, "significant": sig},
            index=rows.index,
        )
        return out, sector
    for attr in (P_VALUE, LABEL):
        if not hasattr(local, attr):
            raise SchemaError(
                "explore_local needs a LocalResult (attributes statistic, p_value, label), "
                "a ClusterResult or a tidy table; got an object of type "
                f"{type(local).__name__} without {attr!r}."
            )
    what = "local result"
    labels, sector = _pick_column(local.label, sector, what)
    pvals, _ = _pick_column(local.p_value, sector, what)

    def _opt(name: str) -> Any:
        frame = getattr(local, name, None)
        return None if frame is None else _pick_column(frame, sector, what)[0].to_numpy()

    stat = _opt(STATISTIC)
    if callable(getattr(local, "significant", None)):
        sig, _ = _pick_column(local.significant(alpha=alpha, correction=correction), sector, what)
        sig = sig.astype(bool).to_numpy()
    else:
        sig = adjust_pvalues(pvals.to_numpy(dtype=float), correction=correction) <= alpha
    cats = _base_category(labels.to_numpy(), _opt(QUADRANT), _opt("p_greater"), _opt("p_lesser"))
    out = pd.DataFrame(
        {
            STATISTIC: stat if stat is not None else np.nan,
            P_VALUE: pvals.to_numpy(),
            LABEL: cats,
            "significant": sig,
        },
        index=labels.index,
    )
    return out, sector


def explore_local(
    local: Any,
    units: gpd.GeoDataFrame | None = None,
    sector: str | None = None,
    *,
    alpha: float = 0.05,
    correction: str | None = "fdr_bh",
    m: folium.Map | None = None,
    lang: str = "fr",
    title: str | None = None,
    map_options: MapOptions | Mapping[str, Any] | None = None,
    **map_kwds: Any,
) -> folium.Map:
    """Map local Moran quadrants (HH/LL/HL/LH) or Gi* hot and cold spots of one sector.

    Units that are not significant at ``alpha`` (after ``correction``) are grey.

    Parameters
    ----------
    local : LocalResult, ClusterResult or pandas.DataFrame
        A :class:`clustermap.LocalResult` (``statistic``, ``p_value`` and ``label``
        DataFrames of units × sectors; its ``significant(alpha, correction)`` decides
        significance), a ClusterResult (its ``table``, whose ``statistic_p_value`` is used
        when present) or a tidy table with columns ``unit_id``, ``sector``, ``p_value``,
        ``label`` (or ``quadrant``) and optionally ``statistic``. Labels may be
        ``HH``/``LL``/``HL``/``LH``, esda's codes 1-4, ``High-High`` ..., ``hot``/``cold``.
    units : geopandas.GeoDataFrame, optional
        Unit polygons indexed by unit id (taken from the ClusterResult when omitted).
    sector : str, optional
        Sector to map (needed when several are present).
    alpha : float, default 0.05
        Significance level.
    correction : {"fdr_bh", "fdr_by", "bonferroni", "holm", None}, default "fdr_bh"
        Multiple-testing correction across the sector's units (a LocalResult applies its
        own :meth:`~clustermap.LocalResult.significant`, which also offers "fdr_by").
        Moran units are coloured by their scatter-plot quadrant (``quadrant``) when known,
        Gi* units by the tail of their test, and grey when not significant.
    m : folium.Map, optional
    lang : {"fr", "en"}, default "fr"
    title : str, optional
    map_options : MapOptions or dict, optional
        Base map, simplification, offline page, layer selector (:class:`MapOptions`).
    **map_kwds
        Passed to :class:`folium.Map`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import geopandas as gpd
    >>> from shapely.geometry import box
    >>> units = gpd.GeoDataFrame({"name": ["A", "B", "C"]},
    ...     geometry=[box(0, 0, 1, 1), box(1, 0, 2, 1), box(2, 0, 3, 1)],
    ...     index=pd.Index(["a", "b", "c"], name="unit_id"), crs=4326)
    >>> table = pd.DataFrame({"unit_id": ["a", "b", "c"], "sector": "10",
    ...     "p_value": [0.001, 0.2, 0.01], "label": ["HH", "HH", "LL"]})
    >>> page = cm.explore_local(table, units, correction=None).get_root().render()
    >>> "Cluster (fort entouré de fort)" in page and "Non significatif" in page
    True
    """
    tiles, simplify, offline, layer_control = _map_options("explore_local", map_options, map_kwds)
    i18n.check_lang(lang)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1; {alpha!r} was given.")
    if hasattr(local, "table") and hasattr(local, "units") and hasattr(local, "clusters"):
        if units is None:
            units = local.units
        local = local.table
    if units is None:
        raise ValueError("explore_local needs the unit polygons: pass units=...")
    correction = check_correction(correction)
    frame, sector = _local_frame(local, sector, alpha, correction)
    units_w = _units_frame(units)
    display = _display_units(units_w, simplify)
    names = _unit_names(units_w)
    frame = frame.reindex(units_w.index)
    cat = np.where(frame["significant"].fillna(False).astype(bool), frame[LABEL].fillna("ns"), "ns")
    is_gi = bool(np.isin(frame[LABEL].dropna().to_numpy(), ["hot", "cold"]).any())
    present = ["hot", "cold", "ns"] if is_gi else ["HH", "LH", "LL", "HL", "ns"]
    props = []
    for uid, c, p in zip(units_w.index, cat, frame[P_VALUE]):
        text = f"{names.loc[uid]} ({uid}) — {i18n.t(c, lang)}"
        if pd.notna(p):
            text += f" ; p = {i18n.fmt_p(p, lang)}"
        props.append({"t": text, "c": LOCAL_COLORS[c]})
    bounds = _bounds(display.to_numpy())
    if m is None:
        m = _new_map(
            bounds,
            tiles=tiles,
            title=title if title is not None else i18n.t("title_local", lang, sector=sector),
            lang=lang,
            offline=offline,
            map_kwds=map_kwds,
        )
    stat_name = "Gi*" if is_gi else "LISA"
    fg = _feature_group(m, f"{stat_name} {sector}")
    _add_geojson(
        fg,
        _geojson(display.to_numpy(), props),
        cls=f"cm-local cm-layer-{_css_token(sector)}",
        style={"color": "#666666", "weight": 0.5, "fillOpacity": 0.75},
    )
    corr = correction if correction else i18n.t("none", lang)
    note = i18n.t("significance_note", lang, alpha=i18n.fmt_num(alpha, lang, 3), correction=corr)
    counts = pd.Series(cat).value_counts()
    items = [
        (LOCAL_COLORS[c], f"{i18n.t(c, lang)} ({i18n.fmt_int(counts.get(c, 0), lang)})")
        for c in present
    ]
    _add_legend(m, f"{i18n.t('legend_local', lang)} ({stat_name}) — {sector}", items, note)
    return _finish(m, layer_control)


# ---------------------------------------------------------------------------------------
# establishments
# ---------------------------------------------------------------------------------------


def explore_establishments(
    data: Any,
    *,
    sectors: Sequence[str] | None = None,
    m: folium.Map | None = None,
    cluster_above: int = 2000,
    max_points: int = 200_000,
    lang: str = "fr",
    title: str | None = None,
    map_options: MapOptions | Mapping[str, Any] | None = None,
    **map_kwds: Any,
) -> folium.Map:
    """Establishments as points coloured by sector, grouped into counts when numerous.

    Parameters
    ----------
    data : ClusterResult or geopandas.GeoDataFrame
        A result (its ``establishments``) or a GeoDataFrame of points with a ``sector``
        column and optionally ``name`` and ``employees``.
    sectors : sequence of str, optional
        Only establishments of these sector codes.
    m : folium.Map, optional
    cluster_above : int, default 2000
        Above this many points, nearby points are grouped into numbered circles (a small
        own script, no external plugin) that split up when zooming in.
    max_points : int, default 200000
        Refuse to embed more points than this (filter with ``sectors=`` instead).
    lang : {"fr", "en"}, default "fr"
    title : str, optional
    map_options : MapOptions or dict, optional
        Base map, simplification, offline page, layer selector (:class:`MapOptions`).
    **map_kwds
        Passed to :class:`folium.Map`.

    Returns
    -------
    folium.Map

    Examples
    --------
    >>> import geopandas as gpd
    >>> pts = gpd.GeoDataFrame({"sector": ["25.62A", "25.62A", "10.71C"],
    ...     "name": ["<b>Usinage</b>", "Décolletage Dupont", "Boulangerie"],
    ...     "employees": [12, 3, 1]},
    ...     geometry=gpd.points_from_xy([6.58, 6.61, 6.60], [46.06, 46.07, 46.08]), crs=4326)
    >>> page = cm.explore_establishments(pts).get_root().render()
    >>> "<b>Usinage" in page   # names travel as escaped JSON, shown with textContent
    False
    >>> "Décolletage Dupont" in page
    True
    """
    tiles, _simplify, offline, layer_control = _map_options(
        "explore_establishments", map_options, map_kwds
    )
    import geopandas as gpd

    i18n.check_lang(lang)
    est = data.establishments if hasattr(data, "establishments") else data
    if est is None:
        raise ValueError(
            "This result has no establishments (pre-aggregated input): there are no points to map."
        )
    if not isinstance(est, gpd.GeoDataFrame):
        raise SchemaError(f"establishments must be a GeoDataFrame; got {type(est).__name__}.")
    if SECTOR not in est.columns:
        raise SchemaError(
            f"establishments need a {SECTOR!r} column; columns are {list(est.columns)}."
        )
    if sectors is not None:
        wanted = [str(s) for s in sectors]
        mask = np.zeros(len(est), dtype=bool)
        for code in wanted:
            mask |= _sector_match(est[SECTOR], code)
        est = est.loc[mask]
    est = est[~est.geometry.isna() & ~est.geometry.is_empty]
    if len(est) > max_points:
        raise ValueError(
            f"{len(est)} establishments is more than max_points={max_points}: the page would "
            "be too heavy. Choose some sectors with sectors=[...] or raise max_points."
        )
    if est.crs is None:
        raise CRSError("The establishments have no CRS; set it first, e.g. .set_crs(4326).")
    if not est.crs.equals("EPSG:4326"):
        est = est.to_crs(4326)
    pts = est.geometry.representative_point()
    codes = est[SECTOR].astype(str)
    order = sorted(codes.unique())
    palette = {c: _color_of(i) for i, c in enumerate(order)}
    xs = np.round(pts.x.to_numpy(), _ROUND)
    ys = np.round(pts.y.to_numpy(), _ROUND)
    bounds = _bounds(pts.to_numpy()) if len(pts) else None
    if m is None:
        m = _new_map(
            bounds,
            tiles=tiles,
            title=title if title is not None else i18n.t("title_establishments", lang),
            lang=lang,
            offline=offline,
            map_kwds=map_kwds,
        )
    total = len(est)
    names = est[NAME].astype(str).to_numpy() if NAME in est.columns else None
    emps = est[EMPLOYEES].to_numpy() if EMPLOYEES in est.columns else None
    codes_arr = codes.to_numpy()
    for code in order:
        sel = np.flatnonzero(codes_arr == code)
        tips = []
        for i in sel:
            text = names[i] if names is not None else code
            text = f"{text} — {code}"
            if emps is not None and pd.notna(emps[i]):
                text += f" — {i18n.t('employees', lang)} : {i18n.fmt_int(emps[i], lang)}"
            tips.append(text if lang == "fr" else text.replace(" : ", ": "))
        spec = {
            "x": xs[sel].tolist(),
            "y": ys[sel].tolist(),
            "c": [0] * len(sel),
            "t": tips,
        }
        opts = {
            "colors": [palette[code]],
            "cluster": bool(total > cluster_above),
            "cell": 60,
            "maxZoom": 15,
        }
        fg = _feature_group(m, i18n.t("establishments_layer", lang, sector=code))
        _js_call(fg, "points", spec, opts, with_map=True)
    if order:
        _add_legend(
            m,
            i18n.t("legend_establishments", lang),
            [(palette[c], c) for c in order],
            None,
        )
    return _finish(m, layer_control)
