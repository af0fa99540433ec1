"""Files whose content does not match their name get the right diagnosis (magic bytes)."""

from __future__ import annotations

import gzip
import io
import zipfile

import pandas as pd
import pytest

import clustermap as cm
from clustermap.io.sniff import mismatch, sniff

BODY = (
    "siret,activitePrincipaleEtablissement,codeCommuneEtablissement,longitude,latitude\n"
    "00000000000018,25.62A,74081,6.5,46.0\n"
)


def _xlsx_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:  # the parts every .xlsx holds
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buf.getvalue()


def _parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pd.DataFrame({"a": [1]}).to_parquet(buf)
    return buf.getvalue()


CASES = {
    "gzip": (gzip.compress(BODY.encode()), "gzip-compressed file", "rename it to end in .csv.gz"),
    "parquet": (_parquet_bytes(), "Parquet file", "rename it to end in .parquet"),
    "xlsx": (_xlsx_bytes(), "Excel workbook", "save the sheet as CSV"),
    "program": (b"\x7fELF\x02\x01\x01" + bytes(100), "a program", "not the data file"),
    "html": (b"<!DOCTYPE html><html><body>404</body></html>", "web page", "download"),
    "utf-16": (BODY.encode("utf-16"), "UTF-16", "encoding='utf-16'"),
}


@pytest.mark.parametrize("kind", list(CASES))
def test_a_file_named_csv_is_diagnosed_from_its_bytes(tmp_path, kind):
    data, what, fix = CASES[kind]
    path = tmp_path / "etablissements.csv"
    path.write_bytes(data)
    assert sniff(path) == kind
    for read in (cm.read_registry, cm.read_counts):
        with pytest.raises(cm.errors.DataFileError) as err:
            read(path)
        message = str(err.value)
        assert "etablissements.csv is" in message and what in message and fix in message
        assert "not valid utf-8" not in message


def test_right_names_and_declared_encodings_pass(tmp_path):
    plain = tmp_path / "a.csv"
    plain.write_text(BODY, encoding="utf-8")
    packed = tmp_path / "a.csv.gz"
    packed.write_bytes(gzip.compress(BODY.encode()))
    wide = tmp_path / "a16.csv"
    wide.write_bytes(BODY.encode("utf-16"))
    assert mismatch(plain) is None and mismatch(packed) is None
    assert mismatch(wide, "utf-16") is None and "UTF-16" in mismatch(wide)
    assert len(cm.read_registry(packed).establishments) == 1


def test_the_command_line_names_the_file_and_what_it_is(tmp_path, capsys):
    from clustermap.cli import main

    path = tmp_path / "registre.csv"
    path.write_bytes(gzip.compress(BODY.encode()))
    code = main(["detect", str(path), "--out", str(tmp_path / "r.html"), "--lang", "en"])
    err = capsys.readouterr().err
    assert code == 2
    assert "registre.csv is a gzip-compressed file" in err and ".csv.gz" in err
