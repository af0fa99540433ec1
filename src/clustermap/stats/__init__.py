"""clustermap.stats."""
