"""``cellkin fit --population``: the population tables and figures through the safe output
folder, covariates from the subject table, and one-line errors (exit code 2) for bad options.

Reference: the library call the command stands for (``cellkin.fit_population`` on the same
tables with the same seed), whose tables the files must reproduce.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin._output import verify_manifest
from cellkin.cli import main

TABLES = ("fixed_effects", "random_effects", "residual_error", "individual", "metrics",
          "diagnostics", "trajectory", "failures")  # fmt: skip
FIGURES = ["gof.png", "npde.png", "trajectories.png", "vpc.png"]


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    out = tmp_path_factory.mktemp("population") / "pop"
    argv = ["fit", "--example", "--population", "--covariate", "cmax=dose_level", "-o",
            str(out), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_the_tables_are_those_of_the_library_fit(written):
    study = cellkin.load_example()
    fit = cellkin.fit_population(
        study.kinetics, covariates={"cmax": ["dose_level"]}, subjects_table=study.subjects,
        progress=False,
    )  # fmt: skip
    fixed = pd.read_csv(written / "fixed_effects.csv", keep_default_na=False, na_values=[""])
    np.testing.assert_allclose(fixed["estimate"], fit.fixed_effects["estimate"], rtol=1e-12)
    assert "dose_level[DL3]" in set(fixed["term"])
    metrics = pd.read_csv(written / "metrics.csv")
    assert list(metrics["subject"]) == list(fit.subjects)
    np.testing.assert_allclose(metrics["cmax"], fit.metrics()["cmax"], rtol=1e-12)
    for name in TABLES:
        assert (written / f"{name}.csv").is_file(), name
    assert len(pd.read_csv(written / "individual.csv")) == len(fit.individual)
    assert len(pd.read_csv(written / "trajectory.csv")) == len(fit.trajectory)


def test_figures_and_manifest(written):
    figures = sorted(p.name for p in (written / "plots").glob("*.png"))
    assert figures == FIGURES
    assert all((written / "plots" / f).read_bytes()[:4] == b"\x89PNG" for f in figures)
    assert verify_manifest(written / "cellkin-manifest.json") == []
    manifest = json.loads((written / "cellkin-manifest.json").read_text())
    assert "--population" in manifest["command"]


def test_an_existing_output_needs_overwrite(written, capsys):
    argv = ["fit", "--example", "--population", "-o", str(written), "--no-progress"]
    assert main(argv) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--covariate", "cmax=height"], "no column `height` in the subject table"),
        (["--covariate", "speed=dose_level"], "--covariate: 'speed' not a parameter of stein2019"),
        (["--covariate", "cmax"], "write PARAM=COLUMN"),
        (
            ["--random", "cmax,nope"],
            "--random: 'nope' not a parameter of stein2019; its "
            "parameters: cmax, tmax, foldx, alpha, fb, beta",
        ),
        (["--checkpoint", "x.jsonl"], "--checkpoint is for per-subject fits"),
    ],
)
def test_bad_population_options_are_one_line_and_exit_code_2(extra, message, tmp_path, capsys):
    argv = ["fit", "--example", "--population", "-o", str(tmp_path / "o"), "--no-progress"]
    assert main([*argv, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cellkin: error: ") and message in err[0], err


def test_population_options_need_population_and_a_subject_table(tmp_path, capsys):
    kinetics = tmp_path / "k.csv"
    cellkin.load_example().kinetics.to_csv(kinetics, index=False)
    assert main(["fit", str(kinetics), "--covariate", "cmax=dose_level"]) == 2
    assert main(["fit", str(kinetics), "--population", "--covariate", "cmax=dose_level"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "--covariate needs --population" in err[0]
    assert "--covariate needs the subject table: give --subjects FILE" in err[1]


def test_covariates_are_read_from_a_subject_table_file(tmp_path, capsys):
    study = cellkin.load_example()
    kinetics, subjects = tmp_path / "k.csv", tmp_path / "s.csv"
    study.kinetics.to_csv(kinetics, index=False)
    study.subjects.drop(columns="dose_level").to_csv(subjects, index=False)
    argv = ["fit", str(kinetics), "--population", "--subjects", str(subjects), "--covariate",
            "cmax=dose_level", "-o", str(tmp_path / "o"), "--no-progress"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "covariate `dose_level`: no column `dose_level` in the subject table" in err
    assert "'dose', 'dose_unit'" in err  # the columns it has, read by read_subjects
