"""cellkin.io: NONMEM and CDISC kinetics tables, write_nonmem round trips, clinical readers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cellkin.errors import DataError
from cellkin.io import (
    read_adverse_events,
    read_kinetics,
    read_kinetics_with_exclusions,
    read_lesions,
    read_subjects,
    reading_notes,
    write_nonmem,
)

CANONICAL = ["subject", "time", "value", "assay", "unit", "lloq", "blq"]


def test_read_nonmem_with_cmt_mapping(tmp_path, write_csv, nonmem_frame):
    path = write_csv(tmp_path, nonmem_frame(), "nm.csv")
    kin, excl = read_kinetics_with_exclusions(path, mapping={"cmt": {1: "qpcr", 2: "flow"}})
    assert kin.attrs["cellkin"]["convention"] == "nonmem"
    assert kin["subject"].tolist() == ["1", "1", "1", "1", "2", "2"]
    assert kin["assay"].tolist() == ["qpcr", "qpcr", "qpcr", "flow", "qpcr", "qpcr"]
    assert kin["unit"].tolist() == ["copies/ug"] * 3 + ["cells/uL"] + ["copies/ug"] * 2
    # CENS=1: DV holds the LLOQ, the value is not a measurement
    assert kin["blq"].tolist() == [False, False, True, False, False, True]
    assert np.isnan(kin.loc[2, "value"]) and kin.loc[2, "lloq"] == 10.0
    assert excl["source_row"].tolist() == [1, 6, 8]
    assert excl["reason"].tolist() == [
        "dose record (EVID=1)",
        "dose record (EVID=1)",
        "no observation (MDV=1)",
    ]


def test_read_nonmem_cmt_names_and_lower_case_headers(nonmem_frame):
    frame = nonmem_frame().rename(columns=str.lower)
    frame["cmt"] = frame["cmt"].map({1: "QPCR", 2: "flow"})
    kin = read_kinetics(frame)
    assert set(kin["assay"]) == {"qpcr", "flow"}


def test_read_nonmem_mdv1_with_blq_flag_is_a_sample(nonmem_frame):
    frame = nonmem_frame().rename(columns={"CENS": "BLQ"})
    frame.loc[8, ["DV", "MDV"]] = [".", 1]  # BLQ row flagged MDV=1 (M1-style dataset)
    kin = read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}})
    assert kin.iloc[-1][["subject", "time", "blq"]].tolist() == ["2", 28.0, True]


def test_read_nonmem_hours_via_time_unit(nonmem_frame):
    frame = nonmem_frame().assign(TIME=lambda f: f["TIME"] * 24)
    kin = read_kinetics(frame, mapping={"cmt": {1: "qpcr", 2: "flow"}, "time_unit": "h"})
    assert kin["time"].max() == 28.0


def test_read_cdisc_converts_hours_to_days(tmp_path, adpc_frame):
    path = tmp_path / "adpc.parquet"
    adpc_frame().to_parquet(path)
    kin = read_kinetics(path)
    assert kin.attrs["cellkin"]["convention"] == "cdisc"
    assert kin["subject"].tolist() == ["KD-001", "KD-001", "KD-001", "KD-002", "KD-002"]
    assert kin["time"].tolist() == [0.0, 7.0, 7.0, 3.0, 28.0]
    assert kin["assay"].tolist() == ["qpcr", "qpcr", "flow", "qpcr", "qpcr"]
    assert kin["unit"].tolist() == ["copies/ug"] * 2 + ["cells/uL"] + ["copies/ug"] * 2
    assert kin["blq"].tolist() == [False, False, False, False, True]
    assert kin.columns[-1] == "STUDYID"  # extra columns are kept
    assert reading_notes(kin).query("step == 'time'")["note"].tolist() == [
        "`AFRLT` converted from hours to days (divided by 24; unit from column `AFRLTU`)"
    ]


def test_read_cdisc_time_unit_from_mapping_and_paramcd_override(adpc_frame):
    frame = adpc_frame().drop(columns="AFRLTU")
    frame.loc[2, "PARAMCD"] = "CARTCD8"
    kin = read_kinetics(frame, mapping={"time_unit": "h", "paramcd": {"cartcd8": "flow"}})
    assert kin["assay"].tolist() == ["qpcr", "qpcr", "flow", "qpcr", "qpcr"]


def test_write_nonmem_round_trip_without_subjects(tmp_path, kinetics_frame):
    kin = read_kinetics(kinetics_frame())
    path = tmp_path / "nm.csv"
    written = write_nonmem(kin, path)
    assert list(written.columns[:12]) == [
        "ID", "TIME", "DV", "MDV", "EVID", "AMT", "CMT", "CENS", "LLOQ", "ASSAY", "UNIT", "USUBJID",
    ]  # fmt: skip
    assert written["CMT"].tolist()[:10] == [1] * 5 + [2] * 5
    back, excl = read_kinetics_with_exclusions(path)
    pd.testing.assert_frame_equal(back, kin)
    assert excl.empty


def test_write_nonmem_round_trip_with_subjects(tmp_path, kinetics_frame):
    frame = kinetics_frame()
    frame.loc[10, "time"] = -2.0  # a pre-infusion baseline sample of S02
    kin = read_kinetics(frame)
    subjects = pd.DataFrame(
        {"subject": ["S01", "S02"], "dose": [1e6, 5e6], "dose_level": [1, 2], "bor": ["PR", "PD"]}
    )
    path = tmp_path / "nm.csv"
    written = write_nonmem(kin, path, subjects=subjects)
    lines = path.read_text().splitlines()
    assert lines[0].startswith("ID,TIME,DV,MDV,EVID,AMT,CMT,CENS,LLOQ,ASSAY,UNIT,USUBJID")
    # dose record first, '.' for missing, then the covariates DOSE and DOSE_LEVEL
    assert lines[1] == "1,0.0,.,1,1,1000000.0,1,0,.,.,.,S01,1000000.0,1"
    assert "BOR" not in written.columns  # outcomes are not covariates
    s02 = written[written["USUBJID"] == "S02"]
    assert s02["EVID"].tolist()[:2] == [0, 1]  # day -2 sample, then the dose at 0
    blq = written[written["CENS"] == 1]
    assert (blq["DV"] == blq["LLOQ"]).all() and (blq["MDV"] == 0).all()
    back, excl = read_kinetics_with_exclusions(path)
    pd.testing.assert_frame_equal(back[CANONICAL], kin[CANONICAL])
    assert excl["reason"].tolist() == ["dose record (EVID=1)"] * 2


def test_write_nonmem_refuses_covariates_named_like_nonmem_columns(tmp_path, kinetics_frame):
    subjects = pd.DataFrame({"subject": ["S01", "S02"], "dose": [1e6, 2e6], "time": [1, 2]})
    with pytest.raises(DataError, match=r"write_nonmem: subjects column `time` would overwrite"):
        write_nonmem(kinetics_frame(), tmp_path / "nm.csv", subjects=subjects)


def test_write_nonmem_needs_every_subject(tmp_path, kinetics_frame):
    subjects = pd.DataFrame({"subject": ["S01"], "dose": [1e6]})
    with pytest.raises(DataError, match=r"write_nonmem: 1 subject.* no row in `subjects`.*'S02'"):
        write_nonmem(kinetics_frame(), tmp_path / "nm.csv", subjects=subjects)


def test_read_subjects(subjects_frame):
    subjects = read_subjects(subjects_frame())
    assert list(subjects.columns) == [
        "subject", "dose", "bor", "crs_grade", "dlt", "pfs_days", "pfs_event", "ldh",
    ]  # fmt: skip
    assert subjects["bor"].tolist()[:2] == ["PR", "PD"] and pd.isna(subjects.loc[2, "bor"])
    assert subjects["crs_grade"].dtype == "Int64"
    assert subjects["dlt"].tolist() == [False, True, False]
    assert subjects["pfs_event"].dtype == bool


def test_read_lesions(lesions_frame):
    lesions = read_lesions(lesions_frame())
    assert lesions["kind"].tolist() == ["target", "nontarget", "target", "nontarget"]
    assert lesions["status"].tolist()[3] == "unequivocal_progression"
    assert lesions["nodal"].dtype == bool


def test_read_adverse_events(ae_frame):
    ae = read_adverse_events(ae_frame())
    assert ae["grade"].tolist() == [2, 3, 1]
    assert ae["serious"].tolist() == [True, False, False]
    assert ae["related"].all()
    assert pd.isna(ae.loc[1, "end_day"])
