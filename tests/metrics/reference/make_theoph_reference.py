"""Produce the Theoph NCA reference values used by ``tests/metrics/test_nca.py``.

Data: R's ``datasets::Theoph`` (Boeckmann, Sheiner & Beal, NONMEM Users Guide Part V, 1994;
12 subjects, single oral dose), exported to ``theoph.csv`` with::

    Rscript -e 'd <- as.data.frame(datasets::Theoph); d$Subject <- as.character(d$Subject);
                write.csv(d[, c("Subject","Time","conc","Dose")], "theoph.csv", row.names=FALSE)'

Reference: ``pynca`` 1.2.3 (PyPI), a Python port of the R package NonCompart (Bae KS,
Kim H; validated against Phoenix WinNonlin, Kim H et al. Transl Clin Pharmacol
2018;26(1):10-15, doi:10.12793/tcp.2018.26.1.10), an implementation independent of cellkin.
Its λz rule (adjusted R² within 1e-4 of the best, most points, starting after Tmax for
extravascular dosing) is PKNCA's. Run from this folder: ``python make_theoph_reference.py``.
"""

import pandas as pd
from pynca.tools import tblNCA

# pynca column -> cellkin column
COLUMNS = {
    "Cmax": "cmax",
    "Tmax": "tmax",
    "Clast": "clast",
    "Tlast": "tlast",
    "AUClast": "auc_last",
    "Lambda_z": "lambda_z",
    "Rsq_adjusted": "r2_adj",
    "No_points_lambda_z": "n_points_lambda_z",
    "HL_Lambda_z": "half_life",
    "AUCINF_obs": "auc_inf",
    "AUC_%Extrap_obs": "auc_pct_extrap",
}

data = pd.read_csv("theoph.csv", dtype={"Subject": str})
frames = []
for down, method in (("Linear", "linear"), ("Log", "linup-logdown")):
    result = tblNCA(
        data,
        key=["Subject"],
        colTime="Time",
        colConc="conc",
        dose=320,
        adm="Extravascular",
        down=down,
        timeUnit="h",
        concUnit="mg/L",
    )
    table = result.iloc[1:][["Subject", *COLUMNS]].rename(columns=COLUMNS)  # row 0: units
    table = table.rename(columns={"Subject": "subject"}).astype(
        {c: float for c in COLUMNS.values()}
    )
    table.insert(1, "auc_method", method)
    frames.append(table)
pd.concat(frames).to_csv("theoph_pynca.csv", index=False, float_format="%.12g")
