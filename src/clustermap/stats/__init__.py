"""Statistics on units × sectors tables and on points.

``lq`` (location quotients, intervals, empirical Bayes), ``inference`` (multiple testing),
``autocorrelation`` (local Moran, Getis-Ord, Geary over one permutation engine in
``_permutation`` and the numba kernels of ``_kernels``; global Moran), ``distance`` (Kd and
M, kernels in ``_distance_kernels``). The method notes are in docs/methods.md.
"""
