"""French and English labels for maps, the report and the command line.

French is the default: the people who open the maps are French local-government staff.
Numbers are formatted for the chosen language: ``1 234`` and ``2,5`` in French (with a
no-break space as thousands separator), ``1,234`` and ``2.5`` in English.
"""

from __future__ import annotations

import math
from typing import Any

LANGS = ("fr", "en")

# key -> (french, english)
_LABELS: dict[str, tuple[str, str]] = {
    # fiche / tooltips
    "cluster": ("Cluster", "Cluster"),
    "clusters": ("Clusters", "Clusters"),
    "sector": ("Secteur", "Sector"),
    "sector_code": ("Code du secteur", "Sector code"),
    "place": ("Lieu", "Place"),
    "main_communes": ("Principales communes", "Main places"),
    "n_units": ("Nombre de communes", "Number of units"),
    "establishments": ("Établissements", "Establishments"),
    "employees": ("Salariés (estimation)", "Employees (estimate)"),
    "employees_range": ("fourchette", "range"),
    "lq": ("Quotient de localisation", "Location quotient"),
    "lq_short": ("QL", "LQ"),
    "lq_interval": ("intervalle à 95 %", "95% interval"),
    "lq_employees": ("Quotient de localisation (emplois)", "Location quotient (jobs)"),
    "share_of_sector": ("Part du secteur national", "Share of the national sector"),
    "focus": ("Poids du secteur dans la zone", "Sector's weight in the area"),
    "stars": ("Étoiles (Observatoire européen)", "Stars (European Cluster Observatory)"),
    "strong_cluster": ("Cluster fort", "Strong cluster"),
    "strong_cluster_p90": ("Cluster fort (P90)", "Strong cluster (P90)"),
    "p_value": ("Valeur p", "p-value"),
    "strength": ("Score", "Score"),
    "artefact": (
        "Secteur sujet aux artefacts du registre",
        "Sector prone to registry artefacts",
    ),
    "artefact_note": (
        "Secteur sujet aux artefacts du registre (sièges sociaux 70.10Z, holdings 64.20Z, "
        "travail temporaire 78) : la concentration peut refléter des adresses "
        "administratives plutôt qu'une activité productive sur place.",
        "Sector prone to registry artefacts (head offices 70.10Z, holdings 64.20Z, temporary "
        "work 78): the concentration may reflect administrative addresses rather than "
        "productive activity on site.",
    ),
    "largest": ("Principaux établissements", "Largest establishments"),
    "yes": ("oui", "yes"),
    "no": ("non", "no"),
    "unknown": ("inconnu", "unknown"),
    "no_data": ("pas de donnée", "no data"),
    "name": ("Nom", "Name"),
    "unit": ("Commune", "Unit"),
    "unit_id": ("Code", "Code"),
    "statistic": ("Statistique locale", "Local statistic"),
    "quadrant": ("Type", "Type"),
    # map furniture
    "fullscreen": ("Plein écran", "Full screen"),
    "context": ("Limites (contexte)", "Boundaries (context)"),
    "legend_clusters": ("Clusters détectés, par secteur", "Detected clusters, by sector"),
    "legend_lq": ("Quotient de localisation", "Location quotient"),
    "legend_lq_note": (
        "1 = même part qu'au niveau national ; 2 = deux fois plus",
        "1 = same share as nationally; 2 = twice as much",
    ),
    "legend_local": ("Autocorrélation locale", "Local autocorrelation"),
    "legend_establishments": ("Établissements, par secteur", "Establishments, by sector"),
    "title_clusters": ("Clusters d'entreprises", "Business clusters"),
    "title_lq": ("Quotient de localisation : {sector}", "Location quotient: {sector}"),
    "title_local": ("Autocorrélation locale : {sector}", "Local autocorrelation: {sector}"),
    "title_establishments": ("Établissements", "Establishments"),
    "establishments_layer": ("Établissements : {sector}", "Establishments: {sector}"),
    "units_layer": ("Communes", "Units"),
    "HH": ("Cluster (fort entouré de fort)", "Cluster (high among high)"),
    "LL": ("Creux (faible entouré de faible)", "Cold area (low among low)"),
    "HL": ("Isolé fort (fort entouré de faible)", "Outlier (high among low)"),
    "LH": ("Isolé faible (faible entouré de fort)", "Outlier (low among high)"),
    "hot": ("Point chaud", "Hot spot"),
    "cold": ("Point froid", "Cold spot"),
    "ns": ("Non significatif", "Not significant"),
    "significance_note": (
        "Seuil {alpha}, correction : {correction}",
        "Threshold {alpha}, correction: {correction}",
    ),
    "none": ("aucune", "none"),
    # report
    "report_title": (
        "Rapport clustermap : clusters d'entreprises",
        "clustermap report: business clusters",
    ),
    "what_was_analysed": ("Ce qui a été analysé", "What was analysed"),
    "source": ("Fichier source", "Source file"),
    "date": ("Date du rapport", "Report date"),
    "rows_read": ("Lignes lues", "Rows read"),
    "kept": ("Établissements retenus", "Establishments kept"),
    "dropped": ("Lignes écartées", "Rows dropped"),
    "reason": ("Motif", "Reason"),
    "repaired": ("Lignes corrigées et conservées", "Rows repaired and kept"),
    "count": ("Nombre", "Count"),
    "parameters": ("Paramètres", "Parameters"),
    "parameter": ("Paramètre", "Parameter"),
    "value": ("Valeur", "Value"),
    "technical": (
        "Paramètres techniques (tous, tels qu'utilisés)",
        "Technical parameters (all, as used)",
    ),
    "cluster_table": ("Tableau des clusters", "Table of clusters"),
    "sort_hint": (
        "Cliquez sur un en-tête de colonne pour trier (les nombres du plus grand au plus "
        "petit d'abord), sur une ligne pour voir le cluster sur la carte.",
        "Click a column header to sort (numbers largest first), a row to see the cluster on "
        "the map.",
    ),
    "map": ("Carte", "Map"),
    "map_note": (
        "Le fond de carte (tuiles OpenStreetMap) demande une connexion internet ; sans "
        "connexion, les clusters s'affichent sur un fond uni avec les limites des "
        "départements (ou le contour de la zone étudiée). Cochez ou décochez les secteurs "
        "dans le sélecteur de couches (en haut à droite) ; cliquez sur une zone pour ouvrir "
        "sa fiche.",
        "The base map (OpenStreetMap tiles) needs an internet connection; without one, the "
        "clusters show on a plain background with the outlines of the areas. Tick or untick "
        "sectors in the layer selector (top right); click an area to open its summary.",
    ),
    "leading_clusters": ("Principaux clusters", "Leading clusters"),
    "method": ("Méthode et limites", "Method and limits"),
    "no_clusters": ("Aucun cluster détecté.", "No cluster detected."),
    "traded_clusters": ("Clusters exportateurs", "Traded clusters"),
    "codes_in_cluster": (
        "Activités du cluster (celles qui en font l'excès d'abord)",
        "Activities in the cluster (those driving its excess first)",
    ),
    "more_codes": ("… et {n} autres codes", "… and {n} more codes"),
    "alone": ("un cluster à lui seul", "a cluster on its own"),
    "your_territory": ("Votre territoire", "Your territory"),
    "portfolio": ("Les clusters de votre territoire", "Your territory's clusters"),
    "portfolio_note": (
        "Les clusters qui touchent le territoire, les exportateurs d'abord, puis les secteurs "
        "où le territoire est nettement spécialisé sans former de cluster. Les chiffres du "
        "cluster (QL, part du secteur national) portent sur tout le cluster ; la colonne "
        "« dans le territoire » compte ses établissements situés dans le territoire. Le rang "
        "compare le territoire aux autres territoires du même type (QL du secteur).",
        "The clusters touching the territory, traded ones first, then the sectors in which "
        "the territory is clearly specialised without forming a cluster. The cluster's figures "
        "(LQ, share of the national sector) are for the whole cluster; 'in the territory' "
        "counts its establishments inside the territory. The rank compares the territory with "
        "the other territories of the same kind (LQ of the sector).",
    ),
    "kind_cluster": ("cluster", "cluster"),
    "kind_specialisation": ("spécialisation", "specialisation"),
    "kind": ("Type", "Kind"),
    "in_territory": ("Établissements dans le territoire", "Establishments in the territory"),
    "rank_peers": ("Rang parmi les territoires comparables", "Rank among similar territories"),
    "related_short": ("Secteurs liés", "Related sectors"),
    "who_to_call": ("Qui contacter", "Whom to call"),
    "firms_note": (
        "Établissements du cluster situés dans le territoire, les plus grands d'abord. Un "
        "établissement soumis au secret statistique (diffusion partielle dans SIRENE) est "
        "compté mais pas nommé : {n} ne sont pas listés.",
        "Establishments of the cluster inside the territory, largest first. An establishment "
        "under statistical secrecy (partial diffusion in SIRENE) is counted but not named: "
        "{n} are not listed.",
    ),
    "firm_name": ("Nom", "Name"),
    "siret": ("SIRET", "SIRET"),
    "commune": ("Commune", "Commune"),
    "address": ("Adresse", "Address"),
    "size_band": ("Tranche d'effectif", "Size band"),
    "naf": ("Code NAF", "NAF code"),
    "activity": ("Activité", "Activity"),
    "download_csv": ("Télécharger ce tableau (CSV)", "Download this table (CSV)"),
    "more_columns": ("Plus / moins de colonnes", "More / fewer columns"),
    "no_firms": (
        "Aucun établissement nommé (données agrégées, ou tous sous secret statistique).",
        "No establishment named (aggregated data, or all under statistical secrecy).",
    ),
    "territory_summary": (
        "{units} communes ou unités, {est} établissements ; {n} cluster(s) touchent le territoire.",
        "{units} communes or units, {est} establishments; {n} cluster(s) touch the territory.",
    ),
    "related_sectors": (
        "Secteurs liés (leurs concentrations se trouvent aux mêmes endroits)",
        "Related sectors (their concentrations are found in the same places)",
    ),
    "cluster_here": ("un de leurs clusters est ici", "one of their clusters is here"),
    "linkage": ("Secteurs liés", "Related sectors"),
    # trends
    "trends": ("Dynamique", "Trends"),
    "trends_note": (
        "Chaque cluster est suivi sur les mêmes communes de {first} à {last}. Sa tendance "
        "compare sa spécialisation (QL) au début et à la fin : le registre entier grossit "
        "avec le temps, donc les nombres bruts grossissent aussi pour un cluster stable. "
        "Nouveau : absent au début, nettement plus spécialisé à la fin ; en croissance / en "
        "recul : spécialisation nettement plus forte / plus faible ; disparu : plus détecté "
        "et nettement moins spécialisé ; intermittent : détecté à certaines dates seulement. "
        "Les points pleins marquent les dates où il est détecté.",
        "Each cluster is followed over the same places from {first} to {last}. Its trend "
        "compares its specialisation (LQ) at the start and at the end: the whole registry "
        "grows over time, so raw counts grow for a stable cluster too. New: absent at the "
        "start, clearly more specialised at the end; growing / shrinking: clearly stronger / "
        "weaker specialisation; disappeared: no longer detected and clearly less "
        "specialised; intermittent: detected at some dates only. Filled dots mark the dates "
        "where it was detected.",
    ),
    "no_trends": ("Aucun cluster à suivre.", "No cluster to follow."),
    "trend": ("Tendance", "Trend"),
    "trend_new": ("nouveau", "new"),
    "trend_growing": ("en croissance", "growing"),
    "trend_stable": ("stable", "stable"),
    "trend_shrinking": ("en recul", "shrinking"),
    "trend_disappeared": ("disparu", "disappeared"),
    "trend_intermittent": ("intermittent", "intermittent"),
    "lq_series": ("QL de {first} à {last}", "LQ from {first} to {last}"),
    "growth_vs_national": (
        "Croissance (du secteur en France)",
        "Growth (of the sector nationally)",
    ),
    "national_short": ("France", "national"),
    "lq_first_last": ("QL début → fin", "LQ start → end"),
    "cmp_chart": (
        "Spécialisation et évolution des clusters suivis",
        "Specialisation and change of the followed clusters",
    ),
    "cmp_chart_territory": (
        "Spécialisation et évolution des secteurs de {name}",
        "Specialisation and change of the sectors of {name}",
    ),
    "cmp_note": (
        "En haut : secteurs spécialisés (QL > 1). À droite : secteurs qui ont crû plus vite "
        "qu'en France. Taille : établissements à la dernière date. Survoler une bulle pour "
        "son nom.",
        "Top: specialised sectors (LQ > 1). Right: sectors that grew faster than nationally. "
        "Size: establishments at the last date. Hover a bubble for its name.",
    ),
    "cmp_x": (
        "Croissance relative à celle du secteur en France",
        "Growth relative to the sector's national growth",
    ),
    "cmp_y": ("Quotient de localisation (échelle log)", "Location quotient (log scale)"),
    "cmp_top_right": ("spécialisés et en progression", "specialised and gaining"),
    "cmp_top_left": ("spécialisés mais en perte de vitesse", "specialised but losing ground"),
    "linkage_note": (
        "Chaque trait relie deux secteurs dont les concentrations locales se trouvent aux "
        "mêmes endroits (plus le trait est épais, plus le lien est fort) : des industries "
        "liées, au sens de Porter, qui gagneraient à se connaître.",
        "Each line links two sectors whose local concentrations are found in the same "
        "places (the thicker, the stronger): related industries, in Porter's sense, that "
        "would gain from knowing each other.",
    ),
    "local_clusters": ("Clusters de proximité", "Local clusters"),
    "types_note": (
        "Les clusters exportateurs (secteurs qui vendent hors du territoire et se concentrent "
        "en peu d'endroits) viennent en premier, classés par spécialisation et part du "
        "secteur national, bornes basses de leur intervalle de confiance ; les clusters de "
        "proximité (secteurs présents partout, comme le commerce ou le bâtiment) suivent "
        "dans leur propre tableau.",
        "Traded clusters (industries that sell beyond their region and concentrate in a few "
        "places) come first, ranked by specialisation and share of the national industry, "
        "lower bounds of their confidence intervals; local clusters (industries present "
        "everywhere, such as retail or building) follow in their own table.",
    ),
    "n_clusters": ("Nombre de clusters", "Number of clusters"),
    "n_sectors": ("Secteurs concernés", "Sectors involved"),
    "n_units_total": (
        "Unités spatiales avec des établissements",
        "Spatial units with establishments",
    ),
    "rank": ("Rang", "Rank"),
    "generated_by": ("Produit par clustermap {version}", "Made with clustermap {version}"),
    "not_given": ("non précisé", "not given"),
}

_METHOD_NOTE = {
    "fr": [
        "Un cluster est ici une zone de communes voisines où un secteur d'activité est "
        "nettement plus présent qu'en moyenne nationale. Pour chaque commune et chaque "
        "secteur, le quotient de localisation (QL) compare la part du secteur dans la "
        "commune à sa part nationale : un QL de 2 signifie deux fois plus d'établissements "
        "du secteur que si l'activité était répartie comme en France entière.",
        "Pour chaque commune et chaque secteur, un test exact vérifie si la commune et ses "
        "voisines comptent nettement plus d'établissements du secteur qu'attendu compte tenu "
        "de toute leur activité. Ce test tient compte de la dispersion réelle des données : "
        "les établissements d'un secteur se regroupent dans certaines communes plus que le "
        "hasard pur ne le voudrait, pour des raisons qui ne font pas un cluster ; cette "
        "dispersion est mesurée pour chaque secteur (loi binomiale négative) et le test "
        "l'intègre, ce qui évite de prendre ces écarts pour des clusters, surtout dans les "
        "grandes villes. Le taux de fausses découvertes est "
        "contrôlé sur l'ensemble des communes du secteur (procédure de Benjamini-Hochberg). "
        "Les communes spécialisées et significatives voisines forment une zone, retenue si "
        "elle compte assez d'établissements et un QL nettement supérieur à 1. Chaque cluster "
        "reçoit un intervalle de confiance à 95 % sur son QL, une valeur p, des étoiles "
        "selon la méthode de l'Observatoire européen des clusters et un indicateur de "
        "« cluster fort » inspiré du U.S. Cluster Mapping Project ; l'indicateur Gi* "
        "(tests de permutation) est donné en complément.",
        "Classement : comme le U.S. Cluster Mapping Project et l'Observatoire européen des "
        "clusters, le rapport distingue les secteurs exportateurs (qui vendent hors de leur "
        "territoire et se concentrent en peu d'endroits) des secteurs de proximité (présents "
        "partout en proportion de la population). Le type de chaque code NAF vient des "
        "catégories de clusters de clustermap (définitions américaines de référence, "
        "adaptées à la France). Les clusters exportateurs sont listés en premier, classés "
        "par le produit de deux bornes basses : celle du QL (spécialisation) et celle de la "
        "part du secteur national située dans la zone ; la taille n'est qu'un seuil "
        "minimal, pas le critère de tri, pour qu'une vallée très spécialisée passe devant "
        "un secteur banal d'une grande ville.",
        "Limites : les effectifs salariés sont estimés à partir des tranches d'effectif du "
        "registre (d'où une fourchette) ; un établissement est compté à l'adresse déclarée, "
        "ce qui peut gonfler les communes qui accueillent des sièges sociaux ou des agences "
        "d'intérim ; le découpage communal influe sur les résultats (une petite "
        "spécialisation peut disparaître dans une grande ville). Un cluster statistique "
        "n'est pas forcément une filière organisée : ces résultats sont un point de départ "
        "pour une analyse de terrain, pas une conclusion.",
    ],
    "en": [
        "A cluster here is an area of neighbouring units where an industry is clearly more "
        "present than on average nationally. For each unit and industry, the location "
        "quotient (LQ) compares the industry's share in the unit with its national share: "
        "an LQ of 2 means twice as many establishments as if the industry were spread like "
        "the whole country.",
        "For each unit and industry, an exact test checks whether the unit and its "
        "neighbours hold clearly more establishments of the industry than expected from all "
        "their activity. The test allows for the real dispersion of the data: an industry's "
        "establishments bunch in some places more than pure chance would have it, for "
        "reasons that make no cluster; that dispersion is measured for each industry "
        "(negative binomial model) and built into the test, so such bunching, above all in "
        "large cities, is not taken for a cluster. The false discovery rate is controlled "
        "over the units of the "
        "industry (Benjamini-Hochberg). Neighbouring specialised and significant units form "
        "an area, kept when it has enough establishments and an LQ clearly above 1. Each "
        "cluster gets a 95% confidence interval on its LQ, a p-value, European Cluster "
        "Observatory stars and a 'strong cluster' flag after the U.S. Cluster Mapping "
        "Project; the Gi* statistic (permutation tests) is given as a second view.",
        "Ranking: like the U.S. Cluster Mapping Project and the European Cluster Observatory, "
        "the report tells traded industries (that sell beyond their region and concentrate "
        "in a few places) from local ones (present everywhere in proportion to population). "
        "Each NAF code's type comes from clustermap's cluster categories (the U.S. benchmark "
        "definitions, adapted to France). Traded clusters are listed first, ranked by the "
        "product of two lower bounds: that of the LQ (specialisation) and that of the share "
        "of the national industry located in the area; size is only a floor, not the sort "
        "key, so a highly specialised valley comes before an ordinary industry of a large "
        "city.",
        "Limits: employees are estimated from the registry's size bands (hence a range); an "
        "establishment is counted at its declared address, which can inflate places hosting "
        "head offices or temporary-work agencies; the zoning affects results (a small "
        "specialisation can vanish inside a large city). A statistical cluster is not "
        "necessarily an organised industry: these results are a starting point for field "
        "work, not a conclusion.",
    ],
}

# registry reject reasons (clustermap._schema REASON_* values) in words
_REASONS: dict[str, tuple[str, str]] = {
    "missing_coordinates": ("coordonnées manquantes", "missing coordinates"),
    "coordinates_out_of_bounds": ("coordonnées hors zone", "coordinates out of bounds"),
    "swapped_lat_lon": ("latitude et longitude inversées", "latitude and longitude swapped"),
    "zero_stripped_commune": (
        "code commune sans son zéro initial (1001 → 01001)",
        "commune code that lost its leading zero (1001 → 01001)",
    ),
    "invalid_sector_code": ("code d'activité invalide", "invalid sector code"),
    "other_nomenclature": ("autre nomenclature d'activité", "other activity nomenclature"),
    "duplicated_id": ("identifiant en double", "duplicated identifier"),
    "closed_establishments": ("établissements fermés", "closed establishments"),
    "outside_units": ("hors des unités spatiales", "outside the spatial units"),
}

NBSP = "\u00a0"


def check_lang(lang: str) -> str:
    """Return ``lang`` if supported, else raise a ValueError naming the choices."""
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}; {lang!r} was given.")
    return lang


def t(key: str, lang: str = "fr", **fmt: Any) -> str:
    """Label ``key`` in ``lang`` (``str.format`` with ``fmt`` when given)."""
    fr, en = _LABELS[key]
    text = fr if lang == "fr" else en
    return text.format(**fmt) if fmt else text


def reason(code: str, lang: str = "fr") -> str:
    """Reject reason in words (the code itself when unknown)."""
    pair = _REASONS.get(str(code))
    if pair is None:
        return str(code).replace("_", " ")
    return pair[0] if lang == "fr" else pair[1]


#: the settings a reader of the report needs, in words: key -> (fr, en, kind)
PARAMETER_LABELS = {
    "level": ("Niveau de la nomenclature analysé", "Level of the nomenclature analysed", "text"),
    "alpha": (
        "Part de fausses découvertes tolérée, par secteur",
        "False discovery rate allowed, per sector",
        "pct",
    ),
    "min_unit_lq": ("QL minimal d'une commune retenue", "Minimum LQ of a unit kept", "num"),
    "min_lq": ("QL minimal d'un cluster", "Minimum LQ of a cluster", "num"),
    "min_establishments": (
        "Nombre minimal d'établissements d'un cluster",
        "Minimum establishments of a cluster",
        "int",
    ),
    "graph": ("Voisinage des communes", "Neighbours of the units", "text"),
    "permutations": ("Permutations de l'indicateur Gi*", "Permutations of Gi*", "int"),
    "random_state": (
        "Graine aléatoire (reproductibilité)",
        "Random seed (reproducibility)",
        "text",
    ),
}


def parameter_rows(params: dict[str, Any], lang: str = "fr") -> list[tuple[str, str]]:
    """(label, value) of the settings a reader needs, in the report's language.

    Examples
    --------
    >>> for label, value in parameter_rows({"alpha": 0.05, "min_lq": 1.5, "timings": {}}, "en"):
    ...     print(f"{label}: {value}")
    False discovery rate allowed, per sector: 5%
    Minimum LQ of a cluster: 1.5
    """
    out = []
    for key, (fr, en, kind) in PARAMETER_LABELS.items():
        if key not in params or params[key] is None:
            continue
        value = params[key]
        if kind == "pct":
            text = fmt_pct(value, lang, 2)
        elif kind == "num":
            text = fmt_num(value, lang)
        elif kind == "int":
            text = fmt_int(value, lang)
        else:
            text = str(value)
        out.append((fr if lang == "fr" else en, text))
    return out


def method_note(lang: str = "fr") -> list[str]:
    """Plain-language paragraphs on method and limits."""
    return list(_METHOD_NOTE[lang])


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(math.isnan(value))
    except (TypeError, ValueError):
        return False


def fmt_int(value: Any, lang: str = "fr") -> str:
    """Whole number with thousands separators: ``1 234`` (fr) or ``1,234`` (en)."""
    if _missing(value):
        return "–"
    text = f"{round(float(value)):,d}"
    return text.replace(",", NBSP) if lang == "fr" else text


def fmt_num(value: Any, lang: str = "fr", digits: int = 2) -> str:
    """Decimal number: ``2,5`` (fr) or ``2.5`` (en), trailing zeros dropped."""
    if _missing(value):
        return "–"
    value = float(value)
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    text = f"{value:,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    if text in ("-0", ""):
        text = "0"
    if lang == "fr":
        text = text.replace(",", NBSP).replace(".", ",")
    return text


def fmt_pct(value: Any, lang: str = "fr", digits: int = 1) -> str:
    """Share in [0, 1] as a percentage: ``12,5 %`` (fr) or ``12.5%`` (en)."""
    if _missing(value):
        return "–"
    num = fmt_num(100 * float(value), lang, digits)
    return f"{num}{NBSP}%" if lang == "fr" else f"{num}%"


def fmt_p(value: Any, lang: str = "fr") -> str:
    """p-value: 3 significant digits, ``< 0,001`` below 0.001."""
    if _missing(value):
        return "–"
    value = float(value)
    if value < 0.001:
        return f"<{NBSP}0,001" if lang == "fr" else "< 0.001"
    return fmt_num(value, lang, 3)


def fmt_bool(value: Any, lang: str = "fr") -> str:
    """``oui``/``non`` (fr) or ``yes``/``no`` (en); ``inconnu`` when missing."""
    if _missing(value):
        return t("unknown", lang)
    return t("yes" if bool(value) else "no", lang)


def fmt_stars(value: Any) -> str:
    """Stars as ``★★☆`` (0-3)."""
    if _missing(value):
        return "–"
    n = max(0, min(3, int(value)))
    return "★" * n + "☆" * (3 - n)
