"""Excel sheets as labs send them: title rows above the header, formulas without results.

:func:`read_excel` reads one sheet with pandas (openpyxl for ``.xlsx``/``.xlsm``), finds the
header row (title rows such as "Central lab export, printed 2024-05-01" above it are skipped
and noted; ``skiprows`` says where it is instead), and refuses a workbook whose cells hold
formulas without saved results. Such a file was written by a program that does not compute
formulas (a script, a LIMS export template); pandas reads those cells as empty, which would
silently turn measurements into missing values. Excel or LibreOffice computes and saves them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from cellkin._validation import Context
from cellkin.io._layout import header_row
from cellkin.io._notes import Notes

__all__ = ["read_excel"]


def read_excel(
    ctx: Context, path: Path, sheet_name: int | str, options: dict[str, Any], notes: Notes
) -> pd.DataFrame:
    """One sheet as a table, header row detected (or ``options["skiprows"]``)."""
    with pd.ExcelFile(path) as book:
        names = book.sheet_names
        ok = (
            sheet_name in names
            if isinstance(sheet_name, str)
            else isinstance(sheet_name, int) and 0 <= sheet_name < len(names)
        )
        if not ok:
            raise ctx.error(
                f"no sheet {sheet_name!r}; the workbook has sheets "
                f"{', '.join(repr(n) for n in names)}. Pass `sheet_name=` with one of them "
                "(a name or a 0-based position)."
            )
        raw = book.parse(sheet_name, header=None, na_values=["."], dtype=object)
    skip = options.get("skiprows")
    skip = header_row(raw.head(40).fillna("").to_numpy().tolist()) if skip is None else int(skip)
    if skip:
        notes.add("layout", "", 0, f"header on sheet row {skip + 1} ({skip} title row(s) "
                  "skipped)")  # fmt: skip
    header = [f"Unnamed: {k}" if pd.isna(c) else str(c) for k, c in enumerate(raw.iloc[skip])]
    frame = raw.iloc[skip + 1 :].reset_index(drop=True)
    frame.columns = header
    frame = frame.loc[:, [not (h.startswith("Unnamed: ") and frame[h].isna().all())
                          for h in header]]  # fmt: skip
    frame = frame.infer_objects()
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        _check_formulas(ctx, path, sheet_name, names, skip, header)
    return frame


def _check_formulas(
    ctx: Context, path: Path, sheet: int | str, names: list[str], skip: int, columns: list[str]
) -> None:
    """Refuse formula cells that have no saved (cached) result."""
    import openpyxl

    title = sheet if isinstance(sheet, str) else names[sheet]
    formulas = openpyxl.load_workbook(path, read_only=True, data_only=False)
    values = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        # read every row: a read-only sheet closes its file only when fully iterated
        rows_f = list(formulas[title].iter_rows())
        rows_v = list(values[title].iter_rows(values_only=True))
        lacking = []
        for k, (cells, cached) in enumerate(zip(rows_f, rows_v, strict=False)):
            for j, cell in enumerate(cells):
                text = cell.value
                if isinstance(text, str) and text.startswith("=") and cached[j] is None:
                    lacking.append((k, j, cell.coordinate))
    finally:
        formulas.close()
        values.close()
    lacking = [item for item in lacking if item[0] > skip]
    if not lacking:
        return
    k, j, where = lacking[0]
    column = columns[j] if j < len(columns) else f"column {j + 1}"
    raise ctx.error(
        f"column `{column}` has {len(lacking)} formula cell(s) without a saved result, first "
        f"at row {k - skip} (cell {where}): the workbook was saved by a program that does not "
        "compute formulas, so these cells read as empty. Open the file in Excel (or "
        "LibreOffice), let it calculate, save it, and read it again."
    )
