"""The ``cellkin`` command line, run in-process through ``cellkin.cli.main``."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import cellkin
from cellkin import models
from cellkin.cli import main
from cellkin.simulate import virtual_population


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cellkin {cellkin.__version__}"
    assert main([]) == 0
    assert "examples:" in capsys.readouterr().out


def test_module_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "cellkin", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.startswith("cellkin ")


def test_validate_example_prints_a_summary_of_every_table(capsys):
    assert main(["validate", "--example"]) == 0
    out = capsys.readouterr().out
    for table in ("kinetics", "subjects", "lesions", "adverse_events"):
        assert f"\n{table}: " in out
    assert "synthetic" in out
    assert "qpcr" in out and "flow" in out


def test_validate_files_and_exclusions(tmp_path, capsys):
    study = cellkin.load_example()
    path = tmp_path / "kinetics.csv"
    study.kinetics.to_csv(path, index=False)
    assert main(["validate", "--kinetics", str(path), "--exclude-before", "-1"]) == 0
    out = capsys.readouterr().out
    assert str(path) in out and "kinetics:" in out


def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, capsys):
    path = tmp_path / "broken.csv"
    pd.DataFrame({"subject": ["A"], "time": ["D7"], "value": [1.0]}).to_csv(path, index=False)
    assert main(["validate", "--kinetics", str(path)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("cellkin: error: ") and "broken.csv" in lines[0]
    assert "Traceback" not in captured.err
    assert main(["--verbose", "validate", "--kinetics", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate"], "nothing to validate"),
        (["simulate", "--seed", "1", "--times", "1,x"], "--times"),
        (["simulate", "--seed", "1", "-o", "out.txt"], "unsupported output extension"),
    ],
)
def test_cli_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_simulate_writes_noise_free_levels_of_the_seeded_population(tmp_path):
    out, params_out = tmp_path / "sim.parquet", tmp_path / "params.csv"
    argv = ["simulate", "--n", "7", "--seed", "4", "--times", "1,9,28", "-o", str(out)]
    assert main([*argv, "--params-output", str(params_out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 21
    population = virtual_population("stein2019", 7, seed=4)
    pd.testing.assert_frame_equal(pd.read_csv(params_out), population)
    expected = models.get("stein2019").simulate_many([1, 9, 28], population).ravel()
    np.testing.assert_allclose(table["value"], expected, rtol=1e-12)


def test_simulate_with_lloq_gives_a_kinetics_table(tmp_path):
    out = tmp_path / "trial.csv"
    argv = ["simulate", "--n", "5", "--seed", "2", "--lloq", "50", "-o", str(out)]
    assert main(argv) == 0
    trial = cellkin.read_kinetics(out)
    assert trial["subject"].nunique() == 5
    assert trial["blq"].any()


def test_nca_on_the_example_writes_one_row_per_subject_and_assay(tmp_path, capsys):
    out = tmp_path / "nca.csv"
    assert main(["nca", "--example", "-o", str(out), "--auc-method", "linup-logdown"]) == 0
    table = pd.read_csv(out)
    kinetics = cellkin.load_example().kinetics
    assert len(table) == kinetics.groupby(["subject", "assay"]).ngroups
    assert (table["auc_method"] == "linup-logdown").all()
    printed = capsys.readouterr().out
    assert "dose_level" in printed and "auc_0_28" in printed


def test_nca_on_a_file_in_long_form(tmp_path):
    source, out = tmp_path / "k.csv", tmp_path / "long.csv"
    cellkin.load_example().kinetics.to_csv(source, index=False)
    assert main(["nca", str(source), "--long", "--intervals", "0-28", "-o", str(out)]) == 0
    long = pd.read_csv(out)
    assert {"metric", "value", "unit", "pptestcd", "exclude_reason"} <= set(long.columns)
    assert "auc_0_28" in set(long["metric"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nca"], "either a kinetics FILE or --example"),
        (["nca", "--example", "--intervals", "0:28"], "START-END"),
    ],
)
def test_nca_cli_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
