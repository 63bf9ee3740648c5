"""Any assay label works in fits (issue #17): lab exports name assays "CAR-T qPCR" or
"CD19 CAR (flow)"; before #17 every such fit failed with lmfit's KeyError "'sigma_car-t qpcr'
is not a valid Parameters name". The parameter keeps the label; only lmfit's internal name is
sanitised, so the estimates equal those of the same data under the label "qpcr"."""

from __future__ import annotations

import pytest

import cellkin
from cellkin import fit
from cellkin.io import read_kinetics


@pytest.mark.filterwarnings("ignore::cellkin.errors.IdentifiabilityWarning")
@pytest.mark.parametrize("label", ["CAR-T qPCR", "CD19 CAR+ (flow) 2"])
def test_a_lab_assay_label_fits_like_qpcr(label):
    study = cellkin.load_example()
    qpcr = study.kinetics[study.kinetics["assay"] == "qpcr"]
    richest = qpcr[~qpcr["blq"]].groupby("subject").size().idxmax()  # not refused as too sparse
    one = qpcr[qpcr["subject"] == richest]
    lab = one.drop(columns="assay").rename(columns={"value": "Result"}).assign(Analyte=label)
    kinetics = read_kinetics(lab)
    assay = label.casefold()
    assert set(kinetics["assay"]) == {assay}
    labelled = fit(kinetics, "stein2019", assays=[assay], n_starts=1, seed=0)
    plain = fit(one, "stein2019", assays=["qpcr"], n_starts=1, seed=0)
    assert labelled.success
    assert f"sigma_{assay}" in labelled.estimates
    assert labelled.estimates[f"sigma_{assay}"] == pytest.approx(
        plain.estimates["sigma_qpcr"], rel=1e-6
    )
    assert labelled.estimates["cmax"] == pytest.approx(plain.estimates["cmax"], rel=1e-6)
