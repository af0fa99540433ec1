"""The floor every layer stands on (private to the package; nothing here is data-specific).

``schema`` (column names and reasons), ``options`` (option objects, the deprecation path,
seeds), ``atomic`` (outputs written in one step), ``display`` (data shown safely), ``geo``
(metric CRS, missing locations, ids), ``numba_cache`` and ``parallel`` (where kernels are
cached, how many threads they use).
"""
