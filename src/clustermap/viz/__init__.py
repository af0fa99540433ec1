"""clustermap.viz."""
