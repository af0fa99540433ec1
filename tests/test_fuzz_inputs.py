"""Property-based tests: generated registries and count files never raise anything but the
documented errors, and every row is either kept or rejected with a reason."""

from __future__ import annotations

import string
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import clustermap as cm
from clustermap.errors import ClustermapError

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
COLUMNS = [
    "siret",
    "activitePrincipaleEtablissement",
    "codeCommuneEtablissement",
    "longitude",
    "latitude",
    "etatAdministratifEtablissement",
    "denominationUsuelleEtablissement",
]
TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12)
PLAUSIBLE = st.sampled_from(
    ["25.62A", "2562A", "99.99Z", "", "A", "F", "74081", "1001", "2A004", "6.5", "46.0", "x"]
)
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


def _column(n):
    return st.one_of(
        st.lists(FLOATS, min_size=n, max_size=n),
        st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n),
        st.lists(st.one_of(TEXT, PLAUSIBLE, st.none()), min_size=n, max_size=n),
        st.lists(
            st.one_of(TEXT, FLOATS, st.integers(-(2**70), 2**70), st.none()), min_size=n, max_size=n
        ),
    )


@st.composite
def frames(draw):
    n = draw(st.integers(0, 12))
    extra = draw(st.lists(st.sampled_from(COLUMNS), max_size=len(COLUMNS), unique=True))
    # mostly frames that hold what a registry needs, so the row checks are reached
    core = COLUMNS[:2] + COLUMNS[3:5] if draw(st.integers(0, 4)) else []
    cols = list(dict.fromkeys([*core, *extra]))
    data = {c: draw(_column(n)) for c in cols}
    frame = pd.DataFrame(data, index=range(n))
    return frame


def _check(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            reg = call()
        except ClustermapError:
            return None
    summary = reg.summary_dict()
    assert summary["kept"] + sum(summary["rejects"].values()) == summary["rows"]
    assert len(reg.establishments) == summary["kept"]
    return reg


@SETTINGS
@given(frames())
def test_generated_frames_raise_only_documented_errors(frame):
    reg = _check(lambda: cm.read_registry(frame))
    if reg is not None:
        assert reg.summary_dict()["rows"] == len(frame)


CELL = st.one_of(
    PLAUSIBLE,
    st.text(alphabet=string.printable + "éà\u00a0\u202e\x00", max_size=10),
)


@st.composite
def csv_bytes(draw):
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    header = draw(
        st.lists(st.sampled_from([*COLUMNS, "x", "y", "naf", ""]), min_size=1, max_size=8)
    )
    if draw(st.integers(0, 3)):
        header = list(dict.fromkeys([*COLUMNS[:2], *COLUMNS[3:5], *header]))
    n = draw(st.integers(0, 8))
    rows = [draw(st.lists(CELL, min_size=0, max_size=len(header) + 2)) for _ in range(n)]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(sep.join(r) for r in [header, *rows]) + draw(st.sampled_from(["", newline]))
    encoding = draw(st.sampled_from(["utf-8", "latin-1", "utf-16"]))
    data = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        data += draw(st.binary(max_size=20))
    return data


@SETTINGS
@given(data=csv_bytes(), suffix=st.sampled_from([".csv", ".csv.gz", ".zip", ".txt"]))
def test_generated_csv_files_raise_only_documented_errors(tmp_path, data, suffix):
    path = tmp_path / f"fuzz{suffix}"
    path.write_bytes(data)  # named .csv.gz or .zip without being one: must be diagnosed too
    _check(lambda: cm.read_registry(path))


@SETTINGS
@given(data=csv_bytes(), suffix=st.sampled_from([".csv", ".csv.gz"]))
def test_generated_count_files_raise_only_documented_errors(tmp_path, data, suffix):
    path = tmp_path / f"counts{suffix}"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            tables = cm.read_counts(path)
        except ClustermapError:
            return
    assert np.isfinite(tables.establishments.to_numpy()).all()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "is empty"),
        (b"unit,sector,establishments\n", "no data rows"),
        ("unit;sector;establishments\n1;Épi;2\n".encode("latin-1"), "encoding='latin-1'"),
    ],
)
def test_count_file_errors_name_the_file_and_the_fix(tmp_path, data, message):
    path = tmp_path / "c.csv"
    path.write_bytes(data)
    with pytest.raises(cm.errors.DataFileError, match=message) as err:
        cm.read_counts(path)
    assert "'c.csv'" in str(err.value)
