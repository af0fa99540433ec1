"""clustermap.core."""
