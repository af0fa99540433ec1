"""clustermap.detect."""
