"""Cluster detection as a short composition of steps users can call on their own.

``options`` (DetectionOptions), ``window`` (the exact Poisson window test), ``regions``
(connected regions and their floors), ``profile`` and ``scores`` (cluster rows, CMP flags,
ECO stars), ``result`` (ClusterResult), ``pipeline`` (detect_clusters).
"""
