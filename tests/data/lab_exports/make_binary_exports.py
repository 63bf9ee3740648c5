"""Write the binary lab exports of this folder (run once; the files are committed).

* ``canonical.csv.gz|.bz2|.xz|.zip``: the table of ``clean/canonical.csv`` as a laboratory
  sends it compressed (the issue #17 files refused as "binary data");
* ``wide_with_title.xlsx``: the wide table of ``wide_visits.csv`` below three title rows, as a
  study spreadsheet lays it out;
* ``formulas_no_cache.xlsx``: value cells that are formulas without saved results, as openpyxl
  (or a LIMS template) writes them: Excel never computed them.

Run from this folder: ``python make_binary_exports.py``.
"""

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

import openpyxl

HERE = Path(__file__).parent
TABLE = (
    b"subject,time,value,assay,unit,lloq\n"
    b"P01,7,15230,qpcr,copies/ug,50\nP01,14,4120,qpcr,copies/ug,50\n"
)


def compressed() -> None:
    (HERE / "canonical.csv.gz").write_bytes(gzip.compress(TABLE, mtime=0))
    (HERE / "canonical.csv.bz2").write_bytes(bz2.compress(TABLE))
    (HERE / "canonical.csv.xz").write_bytes(lzma.compress(TABLE))
    with zipfile.ZipFile(HERE / "canonical.csv.zip", "w") as archive:
        archive.writestr(zipfile.ZipInfo("canonical.csv", (2024, 5, 1, 0, 0, 0)), TABLE)


def wide_with_title() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["KD-025 CAR-T transgene by qPCR"])
    sheet.append(["Exported 2024-05-01; values in copies/ug gDNA"])
    sheet.append([])
    for line in (HERE / "wide_visits.csv").read_text().splitlines():
        cells = line.split(",")
        sheet.append([float(c) if c.replace(".", "").isdigit() else (c or None) for c in cells])
    book.save(HERE / "wide_with_title.xlsx")


def formulas() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["subject", "time", "raw", "value", "assay", "unit", "lloq"])
    for k, (time, raw) in enumerate(((7, 15230), (14, 4120), (28, 880)), start=2):
        sheet.append(["P01", time, raw, f"=C{k}*1", "qpcr", "copies/ug", 50])
    book.save(HERE / "formulas_no_cache.xlsx")


if __name__ == "__main__":
    compressed()
    wide_with_title()
    formulas()
