"""Shared test fixtures.

Tests that need the real data in ``../shared/datasets`` (beside the project folder) use the
``shared_datasets`` fixture, which skips with a clear reason when the folder is absent
(a user's fresh clone has no ``../shared``). Set ``CLUSTERMAP_SHARED_DATASETS`` to point
elsewhere.
"""

from __future__ import annotations

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
