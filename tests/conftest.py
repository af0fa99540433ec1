"""Shared test fixtures.

Tests that need the real data in ``../shared/datasets`` (beside the project folder) use the
``shared_datasets`` fixture, which skips with a clear reason when the folder is absent
(a user's fresh clone has no ``../shared``). Set ``CLUSTERMAP_SHARED_DATASETS`` to point
elsewhere.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _shared_dir() -> Path:
    env = os.environ.get("CLUSTERMAP_SHARED_DATASETS")
    if env:
        return Path(env)
    return ROOT.parent / "shared" / "datasets"


SHARED = _shared_dir()


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Path of ../shared/datasets; skips the test when it is not there."""
    if not SHARED.is_dir():
        pytest.skip(
            f"needs the shared datasets folder ({SHARED}); it is not there "
            "(set CLUSTERMAP_SHARED_DATASETS to its path to run this test)"
        )
    return SHARED


def shared_file(*parts: str) -> Path:
    """Path of a file in ../shared/datasets; skips the calling test when it is absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {'/'.join(parts)} from the shared datasets folder, absent here")
    return path


@functools.cache
def _v2(what: str, include_closed: bool = True):
    import warnings

    import pandas as pd

    import clustermap as cm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", cm.errors.ClustermapWarning)
        if what == "registry":
            options = {"include_closed": True} if include_closed else None
            return cm.read_registry(
                shared_file("synthetic_france_v2", "registry.csv.gz"), options=options
            )
        if what == "communes":
            return cm.read_units(
                shared_file("france_boundaries", "communes_2018_simplified.parquet"),
                unit_id="code_insee",
                name="nom",
            )
    return pd.read_csv(
        shared_file("synthetic_france_v2", "answer_key.csv"), dtype=str, keep_default_na=False
    )


def v2_registry(*, include_closed: bool = True):
    """synthetic_france_v2's registry (read once per test process; do not modify it)."""
    return _v2("registry", include_closed)


def v2_communes():
    """The 2018 commune polygons (read once per test process; do not modify them)."""
    return _v2("communes")


def v2_answer_key():
    """synthetic_france_v2's answer key (read once per test process)."""
    return _v2("key")
