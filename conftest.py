"""Root pytest configuration: names available to every doctest."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import clustermap

    doctest_namespace["cm"] = clustermap
    doctest_namespace["np"] = np
    doctest_namespace["pd"] = pd
