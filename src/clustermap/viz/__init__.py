"""What people see: maps, the cluster card, the offline report.

``maps`` (interactive folium maps), ``card`` (the cluster card shared by map and report),
``report`` (the standalone HTML report), ``i18n`` (French and English wording) and
``offline`` (the page's own assets and security policy). Data reach pages as data, never as
templates.
"""
